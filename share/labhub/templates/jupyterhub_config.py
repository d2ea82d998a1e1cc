# jupyterhub_config.py written by `labhub init`, mounted into the hub container. Every setting of
# configure() can be changed with a LABHUB_* variable in .env; lines you add after it win over it.
import os

import labhub

c = get_config()  # noqa: F821

# with LABHUB_ACME_DOMAIN in .env the hub obtains and renews its own certificate from the ACME CA
# and keeps it, with its account key, in data/acme/ (kept across down and up)
acme = bool(os.environ.get("LABHUB_ACME_DOMAIN"))
labhub.configure(
    c,
    data_dir="/srv/jupyterhub/data",
    ssl_cert=None if acme else "/srv/jupyterhub/ssl/labhub.crt",
    ssl_key=None if acme else "/srv/jupyterhub/ssl/labhub.key",
)
# the challenge port answers only the CA and redirects the rest to HTTPS: it listens on every
# address even while the hub itself stays on loopback (dummy login), so the first start is validated
c.LabAcme.challenge_ip = "0.0.0.0"

# host networking puts the hub's API and the proxy's API on the host's loopback: ports from .env
c.JupyterHub.hub_port = int(os.environ.get("HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('PROXY_API_PORT', '8001')}"

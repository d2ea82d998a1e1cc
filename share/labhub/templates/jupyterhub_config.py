# jupyterhub_config.py written by `labhub init`, mounted into the hub container. Every setting of
# configure() can be changed with a LABHUB_* variable in .env; lines you add after it win over it.
import os

import labhub

c = get_config()  # noqa: F821

labhub.configure(
    c,
    data_dir="/srv/jupyterhub/data",
    ssl_cert="/srv/jupyterhub/ssl/labhub.crt",
    ssl_key="/srv/jupyterhub/ssl/labhub.key",
)

# host networking puts the hub's API and the proxy's API on the host's loopback: ports from .env
c.JupyterHub.hub_port = int(os.environ.get("HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('PROXY_API_PORT', '8001')}"

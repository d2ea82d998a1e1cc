# A lab whose kernels run on a Spark cluster through Jupyter Enterprise Gateway:
# the labs (JupyterLab, files, the user's installs) stay in containers on this machine,
# every kernel starts on the gateway, which submits Spark jobs as its own account
# (KERNEL_USERNAME names the user but proves nothing: docs/gateway.md).
import os

import labhub

c = get_config()  # noqa: F821

labhub.configure(
    c,
    lab_root="/srv/labhub",
    data_dir=os.environ.get("LABHUB_DATA_DIR", "/srv/jupyterhub/data"),
    gateway_url=os.environ.get("LABHUB_GATEWAY_URL", "https://eg.lab.example:8888"),
    gateway_auth_token=os.environ.get("LABHUB_GATEWAY_AUTH_TOKEN", ""),
    gateway_connect_timeout=5,
    gateway_request_timeout=120,  # a YARN kernel can take a minute to get its containers
)

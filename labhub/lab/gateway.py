"""Remote kernels through Jupyter Enterprise Gateway: the lab environment that sends kernels there (pure).

Jupyter Server has a gateway client built in (nb2kg is obsolete): a lab whose
environment names a gateway lists and starts its kernels there, for example on a
Spark cluster, instead of in the user's container.
"""

from __future__ import annotations


def gateway_environment(
    *,
    url: str,
    username: str,
    auth_token: str = "",
    request_timeout: float = 0.0,
    connect_timeout: float = 0.0,
    validate_cert: bool = True,
    ca_file: str = "",
) -> dict[str, str]:
    """The single-user environment that sends every kernel of ``username`` to the gateway at ``url``.

    ``KERNEL_USERNAME`` travels with each kernel request, so the cluster runs the
    kernel as that user (Enterprise Gateway's impersonation). Empty when ``url`` is.
    """
    if not url:
        return {}
    env = {
        "JUPYTER_GATEWAY_URL": url.rstrip("/"),
        "JUPYTER_GATEWAY_VALIDATE_CERT": "true" if validate_cert else "false",
        "KERNEL_USERNAME": username,
    }
    if auth_token:
        env["JUPYTER_GATEWAY_AUTH_TOKEN"] = auth_token
    if request_timeout:
        env["JUPYTER_GATEWAY_REQUEST_TIMEOUT"] = f"{request_timeout:g}"
    if connect_timeout:
        env["JUPYTER_GATEWAY_CONNECT_TIMEOUT"] = f"{connect_timeout:g}"
    if ca_file:
        env["JUPYTER_GATEWAY_CA_CERTS"] = ca_file
    return env

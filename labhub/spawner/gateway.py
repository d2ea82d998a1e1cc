"""Remote kernels through Jupyter Enterprise Gateway: settings and the lab environment they become.

Jupyter Server has a gateway client built in (nb2kg is obsolete): a lab whose
environment names a gateway lists and starts its kernels there, for example on a
Spark cluster, instead of in the user's container.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Float, Unicode, validate
from traitlets.config import LoggingConfigurable

from labhub.hub.options import DEFAULT_GATEWAY_CONNECT_TIMEOUT, DEFAULT_GATEWAY_REQUEST_TIMEOUT


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


class GatewaySettingsMixin(LoggingConfigurable):
    """Spawner settings that point every lab at an Enterprise Gateway."""

    gateway_url = Unicode(
        config=True,
        help="""Base URL of a Jupyter Enterprise Gateway (``https://eg.lab.example:8888``).
        When set, every lab lists and starts its kernels there (e.g. PySpark on the
        cluster) instead of inside the user's container. Empty: local kernels.""",
    )
    gateway_auth_token = Unicode(
        config=True,
        help="""Token the labs send to the gateway. It reaches each lab in its environment
        (that is how Jupyter Server reads it), so the lab's user can see it: give the
        gateway a token meant for lab users, not an admin secret.""",
    )
    gateway_request_timeout = Float(
        DEFAULT_GATEWAY_REQUEST_TIMEOUT,
        config=True,
        help="""Seconds a lab waits for one gateway request. Starting a kernel on a busy
        cluster can take a while; a gateway that is down is reported after
        ``gateway_connect_timeout``, not this.""",
    )
    gateway_connect_timeout = Float(
        DEFAULT_GATEWAY_CONNECT_TIMEOUT,
        config=True,
        help="Seconds a lab waits to connect to the gateway before saying it is unreachable.",
    )
    gateway_validate_cert = Bool(
        True,
        config=True,
        help="Verify the gateway's TLS certificate (turn off only for a test gateway).",
    )
    gateway_ca_file = Unicode(
        config=True,
        help="CA bundle, inside the lab image, that signed the gateway's certificate.",
    )

    @validate("gateway_url")
    def _valid_url(self, proposal: Any) -> str:
        url = proposal.value
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"gateway_url must start with http:// or https://, not {url!r}.")
        return url

    def lab_gateway_environment(self, username: str) -> dict[str, str]:
        return gateway_environment(
            url=self.gateway_url,
            username=username,
            auth_token=self.gateway_auth_token,
            request_timeout=self.gateway_request_timeout,
            connect_timeout=self.gateway_connect_timeout,
            validate_cert=self.gateway_validate_cert,
            ca_file=self.gateway_ca_file,
        )

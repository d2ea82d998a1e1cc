"""Remote kernels through Jupyter Enterprise Gateway: the lab environment that sends kernels there (pure).

Jupyter Server has a gateway client built in (nb2kg is obsolete): a lab whose
environment names a gateway lists and starts its kernels there, for example on a
Spark cluster, instead of in the user's container.

What a lab sends is not proof of who sent it: the lab's user can change
``KERNEL_USERNAME`` and can read the gateway token (docs/gateway.md). labhub only
makes sure that what it sends itself is a plain name the shipped launchers accept.
"""

from __future__ import annotations

import re

#: A username the shipped kernel launchers accept (the same pattern is in their run.sh):
#: no blank, quote or ``$`` to split or expand, and no leading ``-`` to read as an option.
KERNEL_USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")


class GatewayUsernameError(ValueError):
    """A hub username the kernel launchers would refuse; the message is one sentence."""


def kernel_username(username: str) -> str:
    """``username`` as ``KERNEL_USERNAME``, or GatewayUsernameError when it is not a plain name."""
    if not KERNEL_USERNAME_PATTERN.fullmatch(username):
        raise GatewayUsernameError(
            f"The username {username!r} cannot run kernels on the Spark gateway (1 to 64 "
            "letters, digits, '_', '.', '@' or '-', not '-' first); ask the lab admin."
        )
    return username


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

    ``KERNEL_USERNAME`` travels with each kernel request; it names the user, it does
    not prove who asks (the lab's user can send any value). Empty when ``url`` is;
    GatewayUsernameError for a username the launchers would refuse.
    """
    if not url:
        return {}
    env = {
        "JUPYTER_GATEWAY_URL": url.rstrip("/"),
        "JUPYTER_GATEWAY_VALIDATE_CERT": "true" if validate_cert else "false",
        "KERNEL_USERNAME": kernel_username(username),
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

"""Why a lab stopped, read from who asked the hub to stop it.

JupyterHub tells a spawner only *that* it stops. The request that asked for it is
on the call stack of ``stop()``: a logout, a user's own stop button, the idle culler
(a service) or an admin through the API. No request at all is the hub stopping
its labs as it shuts down. A lab found dead by ``poll()`` is recorded as ``died``
there, not here.
"""

from __future__ import annotations

import sys
from typing import Any

#: Services whose name contains this stop labs for idleness (configure() names its culler idle-culler).
CULLER_WORD = "cull"


def reason_for(handler_class: str, requester_kind: str, requester_name: str, owner: str) -> str:
    """The stop reason for a request of ``handler_class`` made by a user or a service."""
    if handler_class == "LogoutHandler":
        return "logout"
    if requester_kind == "service":
        return "cull" if CULLER_WORD in requester_name.lower() else "admin"
    if requester_kind == "user" and requester_name == owner:
        return "user"
    return "admin"


def _find_handler(frame: Any) -> Any:
    from tornado.web import RequestHandler

    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, RequestHandler):
            return candidate
        frame = frame.f_back
    return None


def stop_reason(owner: str) -> str:
    """Why the lab of ``owner`` is being stopped right now (call from the spawner's ``stop()``)."""
    handler = _find_handler(sys._getframe(1))
    if handler is None:
        return "hub restart"
    requester = getattr(handler, "_jupyterhub_user", None)
    return reason_for(
        type(handler).__name__,
        getattr(requester, "kind", ""),
        getattr(requester, "name", ""),
        owner,
    )

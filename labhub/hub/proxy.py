"""LabProxy: configurable-http-proxy, plus the lab's duties at hub start, whatever the authenticator.

JupyterHub builds its proxy at every start, after loading the config and before it
loads users or binds its own port, and for any authenticator. That makes the proxy
class the one plugin point where the lab's start-up can run for a hub that logs
people in with JupyterHub's ``dummy``, an OAuthenticator or a class of its own:
the lab settings are checked (a wrong one stops the hub in one sentence), the labs'
network the hub binds to is created, and the warm pool starts filling.
:func:`labhub.configure` selects it (the entry point ``lab`` names it too); the
proxy itself is JupyterHub's own, unchanged.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.proxy import ConfigurableHTTPProxy

from labhub.hub.startup import run_hub_startup


class LabProxy(ConfigurableHTTPProxy):
    """JupyterHub's configurable-http-proxy that runs :func:`~labhub.hub.startup.run_hub_startup`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        app = kwargs.get("app") or self.parent
        if app is not None:
            run_hub_startup(app, self)

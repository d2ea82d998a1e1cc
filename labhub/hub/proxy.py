"""LabProxy: configurable-http-proxy, plus the lab's duties at hub start, whatever the authenticator.

JupyterHub builds its proxy at every start, after loading the config and before it
loads users or binds its own port, and for any authenticator. That makes the proxy
class the one plugin point where the lab's start-up can run for a hub that logs
people in with JupyterHub's ``dummy``, an OAuthenticator or a class of its own:
the lab settings are checked (a wrong one stops the hub in one sentence), the labs'
network the hub binds to is created, and the warm pool starts filling.
:func:`labhub.configure` selects it (the entry point ``lab`` names it too); the
proxy itself is JupyterHub's own, unchanged.

With ``LabAcme.domain`` set (configure's ``acme_domain``), the proxy also keeps its
certificate: the first one is on disk before configurable-http-proxy starts, and a
renewed one is served by restarting configurable-http-proxy, which reads its
certificate only at start, and putting the hub's routes back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jupyterhub.proxy import ConfigurableHTTPProxy

from labhub.hub.startup import refuse_to_start, run_hub_startup, url_port


class LabProxy(ConfigurableHTTPProxy):
    """JupyterHub's configurable-http-proxy that runs :func:`~labhub.hub.startup.run_hub_startup`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        app = kwargs.get("app") or self.parent
        self._keeper = None
        self._keeping = None
        if app is not None:
            # first: a hub refused for want of a certificate has started no lab and no pool
            self._keeper = _certificate_keeper(app)
            run_hub_startup(app, self)

    async def start(self) -> None:
        await super().start()
        if self._keeper is not None and self._keeping is None:
            self._keeping = asyncio.ensure_future(self._keeper.keep(self.serve_new_certificate))

    def stop(self) -> None:
        if self._keeping is not None:
            self._keeping.cancel()
            self._keeping = None
        if self._keeper is not None:
            self._keeper.stop()
        super().stop()

    async def serve_new_certificate(self) -> None:
        """Restart configurable-http-proxy on the renewed certificate, then put every route back.

        Labs keep running; new connections are refused from the old process's exit
        until the new one listens (logged in seconds), and open websockets reconnect.
        """
        began = time.monotonic()
        self.log.info("labhub: restarting the proxy to serve the renewed certificate")
        if self._check_running_callback is not None:
            self._check_running_callback.stop()
        old = self.proxy_process
        refused_from = time.monotonic()
        if old.poll() is None:
            self._terminate()
        while old.poll() is None:  # the port is free once the old process is gone
            await asyncio.sleep(0.02)
        self._remove_process_files()
        await self.start()
        listening = time.monotonic()
        await self.restore_routes()
        self.log.info(
            "labhub: the proxy serves the renewed certificate; new connections were refused "
            "for %.2f s, routes were back %.2f s later (%.2f s in all)",
            listening - refused_from,
            time.monotonic() - listening,
            time.monotonic() - began,
        )


def _certificate_keeper(app: Any) -> Any:
    """The started keeper of the hub's ACME certificate; None without ``LabAcme.domain``.

    Runs before configurable-http-proxy starts, so the hub never serves without a
    certificate; one that cannot be obtained stops the hub in one sentence.
    """
    from labhub.certs.keeper import AcmeStartError, CertificateKeeper, acme_settings

    settings = acme_settings(app.config)
    if settings is None:
        return None
    port = url_port(getattr(app, "bind_url", "")) or getattr(app, "port", None)
    keeper = CertificateKeeper(settings, app.log, getattr(app, "ip", ""), port)
    try:
        keeper.start()
    except AcmeStartError as err:
        keeper.stop()
        refuse_to_start(app.log, str(err))
    return keeper

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
certificate: the first one is on disk before configurable-http-proxy starts. Node's
HTTPS server can take a new certificate while it runs, but configurable-http-proxy
reads its own only at start; a small preload script (``labhub/certs/reload_certificate.js``)
makes it read the renewed one on SIGUSR2, so no connection is refused and no route is
lost. When the served certificate does not change (another proxy command, a path the
preload cannot take), the proxy is restarted instead and the hub's routes put back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from jupyterhub.objects import Server
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
        preload = self._preload_env()
        saved = {name: os.environ.get(name) for name in preload or {}}
        # configurable-http-proxy gets a copy of the hub's environment as it starts: nothing else
        # lets a plugin add a variable, so these are set for that moment and restored at once
        os.environ.update(preload or {})
        try:
            await super().start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        if self._keeper is not None and self._keeping is None:
            self._keeping = asyncio.ensure_future(self._keeper.keep(self.serve_new_certificate))

    def stop(self) -> None:
        if self._keeping is not None:
            self._keeping.cancel()
            self._keeping = None
        if self._keeper is not None:
            self._keeper.stop()
        super().stop()

    def _preload_env(self) -> dict[str, str] | None:
        if self._keeper is None or not self.ssl_cert:
            return None
        from labhub.certs.proxy_reload import preload_env

        return preload_env(self.ssl_cert, self.ssl_key, dict(os.environ))

    async def serve_new_certificate(self) -> None:
        """Have configurable-http-proxy serve the renewed certificate: in place, else by a restart."""
        from labhub.certs.keeper import serial_of
        from labhub.certs.proxy_reload import local_address, process_has_env, served_serial

        expected = serial_of(Path(self.ssl_cert).read_bytes())
        preload = self._preload_env()
        process = self.proxy_process
        server = Server.from_url(self.public_url)
        if (
            preload
            and not server._unix_socket
            and process.poll() is None
            and process_has_env(process.pid, {"LABHUB_TLS_CERT": self.ssl_cert})
        ):
            began = time.monotonic()
            process.send_signal(signal.SIGUSR2)
            host, domain = local_address(server.ip), self._keeper.settings.domain
            loop = asyncio.get_running_loop()
            while time.monotonic() - began < 5:
                served = await loop.run_in_executor(None, served_serial, host, server.port, domain)
                if served == expected:
                    self.log.info(
                        "labhub: the proxy serves the renewed certificate (serial %s) after %.2f s, "
                        "without a restart: no connection refused, no route lost",
                        expected,
                        time.monotonic() - began,
                    )
                    return
                await asyncio.sleep(0.1)
            self.log.warning(
                "labhub: the proxy did not take the renewed certificate in place; restarting it"
            )
        await self._restart_for_certificate()

    async def _restart_for_certificate(self) -> None:
        """Restart configurable-http-proxy on the renewed certificate, then put every route back.

        Labs keep running; new connections are refused from the old process's exit
        until the new one listens (logged as an upper bound, in seconds), and open
        websockets reconnect. Uses ConfigurableHTTPProxy's own process helpers, as its
        ``check_running`` does when the proxy has died.
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
            "labhub: the proxy serves the renewed certificate after a restart; it was down for "
            "at most %.2f s, routes were back %.2f s later (%.2f s in all)",
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

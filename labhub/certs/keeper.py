"""LabAcme: the hub's certificate from an ACME CA, obtained before the hub serves and renewed in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from traitlets import Float, Integer, Unicode
from traitlets.config import Config, Configurable

from labhub.certs.challenge import ChallengeServer
from labhub.certs.order import OrderError, OrderRequest, obtain
from labhub.certs.store import (
    AcmeFiles,
    StoreError,
    acme_files,
    is_due,
    load_or_make_account_key,
    stored_certificate,
    write_private,
)
from labhub.hub.options import (
    DEFAULT_ACME_CHALLENGE_PORT,
    DEFAULT_ACME_CHECK_INTERVAL,
    DEFAULT_ACME_DIRECTORY,
    DEFAULT_ACME_RENEW_DAYS,
    DEFAULT_DATA_DIR,
)


class LabAcme(Configurable):
    """The ACME settings :func:`labhub.configure` writes from its ``acme_*`` options."""

    domain = Unicode(
        "",
        config=True,
        help="The hub's public DNS name; setting it makes the hub obtain and renew its HTTPS "
        "certificate from the ACME CA at `directory` (HTTP-01 challenge).",
    )
    email = Unicode("", config=True, help="Contact address given to the CA for the account.")
    directory = Unicode(
        DEFAULT_ACME_DIRECTORY,
        config=True,
        help="The ACME directory URL of the CA: Let's Encrypt's, step-ca's or the company's own.",
    )
    ca_bundle = Unicode(
        "",
        config=True,
        help="A PEM file with the TLS roots of a private ACME server; empty: the system's roots.",
    )
    challenge_port = Integer(
        DEFAULT_ACME_CHALLENGE_PORT,
        config=True,
        help="The port on JupyterHub.ip where the HTTP-01 answer is served; the CA asks on 80, "
        "so another port needs a forward from 80.",
    )
    challenge_ip = Unicode(
        "",
        config=True,
        help="The address the challenge port listens on; empty: JupyterHub.ip. It answers "
        "only the CA's challenges and redirects everything else to HTTPS, so a hub on loopback "
        "can still be validated on all addresses (what `labhub init --acme` writes).",
    )
    renew_days = Float(
        DEFAULT_ACME_RENEW_DAYS,
        config=True,
        help="Renew when fewer than this many days of validity remain.",
    )
    check_interval = Float(
        DEFAULT_ACME_CHECK_INTERVAL,
        config=True,
        help="Seconds between the background checks whether the certificate is due.",
    )
    data_dir = Unicode(
        DEFAULT_DATA_DIR,
        config=True,
        help="The hub's state folder; the account key and certificate live in its acme/ folder, 0600.",
    )


@dataclass(frozen=True)
class AcmeSettings:
    """The ACME settings of one hub, read once from the config."""

    request: OrderRequest
    challenge_port: int
    challenge_ip: str
    renew_days: float
    check_interval: float
    files: AcmeFiles

    @property
    def domain(self) -> str:
        return self.request.domain


def acme_settings(config: Config) -> AcmeSettings | None:
    """The hub's ACME settings, or None when no ``LabAcme.domain`` turns ACME on."""
    traits = LabAcme(config=config)
    if not traits.domain:
        return None
    return AcmeSettings(
        request=OrderRequest(traits.domain, traits.directory, traits.email, traits.ca_bundle),
        challenge_port=traits.challenge_port,
        challenge_ip=traits.challenge_ip,
        renew_days=traits.renew_days,
        check_interval=traits.check_interval,
        files=acme_files(traits.data_dir),
    )


class AcmeStartError(RuntimeError):
    """No certificate can be served at start; the message is one sentence for the admin."""


def serial_of(pem: bytes) -> str:
    """The serial number of the first certificate in ``pem``, in hex."""
    return format(x509.load_pem_x509_certificate(pem).serial_number, "x")


class CertificateKeeper:
    """Keeps one hub's certificate: the first before the hub serves, renewals while it runs."""

    def __init__(
        self,
        settings: AcmeSettings,
        log: logging.Logger | logging.LoggerAdapter,
        ip: str,
        https_port: int | None = 443,
    ) -> None:
        self.settings = settings
        self.log = log
        self.ip = ip
        self.https_port = https_port
        self.challenges: ChallengeServer | None = None

    def _order(self, why: str) -> None:
        s = self.settings
        self.log.info(
            "labhub: ordering a certificate for %s from %s (%s)", s.domain, s.request.directory, why
        )
        try:
            account_key = load_or_make_account_key(s.files.account_key)
        except StoreError as err:
            raise OrderError(str(err)) from None
        issued = obtain(s.request, account_key, self.challenges.answers)
        # the key first: a hub stopped in between finds a pair that does not match and orders again
        write_private(s.files.key, issued.key_pem)
        write_private(s.files.cert, issued.fullchain_pem)
        info = stored_certificate(s.files, s.domain)
        self.log.info(
            "labhub: new certificate for %s, serial %s, valid until %s",
            s.domain,
            serial_of(issued.fullchain_pem),
            f"{info.not_after:%Y-%m-%d %H:%M} UTC",
        )

    def start(self) -> None:
        """Serve the challenge port and make sure a certificate is on disk; blocks until then.

        Raises :class:`AcmeStartError` when there is no certificate to serve and none can
        be obtained, or the challenge port cannot be bound.
        """
        s = self.settings
        port = "" if self.https_port in (None, 443) else f":{self.https_port}"
        https_origin = f"https://{s.domain}{port}"
        try:
            self.challenges = ChallengeServer(
                s.challenge_ip or self.ip, s.challenge_port, https_origin, self.log
            )
        except OSError as err:
            raise AcmeStartError(str(err)) from None
        self.challenges.start()
        try:
            info = stored_certificate(s.files, s.domain)
        except StoreError as err:
            # never serve what cannot be read or does not fit: order a new one
            why = str(err)
            info = None
        else:
            why = f"{info.days_left:.0f} days left, renewal at {s.renew_days:g}"
        if info is not None and not is_due(info, s.renew_days):
            self.log.info(
                "labhub: the certificate for %s is valid for %.0f more days; no order needed",
                s.domain,
                info.days_left,
            )
            return
        try:
            self._order(why)
        except OrderError as err:
            if info is None:
                raise AcmeStartError(
                    f"No certificate for {s.domain} could be obtained from "
                    f"{s.request.directory}: {err}."
                ) from None
            self._renewal_failed(err, info.days_left)

    def _renewal_failed(self, err: BaseException, days_left: float) -> None:
        self.log.error(
            "labhub: renewing the certificate for %s failed (%s); the current certificate "
            "stays in use and expires in %.0f days.",
            self.settings.domain,
            err,
            days_left,
        )

    def renew_if_due(self) -> bool:
        """Order a new certificate when the stored one is due or unusable; True when one was written."""
        s = self.settings
        try:
            info = stored_certificate(s.files, s.domain)
        except StoreError as err:
            why, days_left = str(err), None
        else:
            if not is_due(info, s.renew_days):
                return False
            why, days_left = f"{info.days_left:.0f} days left", info.days_left
        try:
            self._order(why)
        except (OrderError, StoreError, OSError) as err:
            if days_left is None:
                self.log.error(
                    "labhub: renewing the certificate for %s failed (%s); the proxy keeps "
                    "serving the certificate it loaded.",
                    s.domain,
                    err,
                )
            else:
                self._renewal_failed(err, days_left)
            return False
        return True

    async def keep(self, reload: Callable[[], Awaitable[Any]]) -> None:
        """Check every ``check_interval`` seconds; after a renewal, ``reload`` serves the new certificate."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.check_interval)
            try:
                # the order blocks on the CA for seconds: never on the hub's loop
                renewed = await loop.run_in_executor(None, self.renew_if_due)
                if renewed:
                    await reload()
            except asyncio.CancelledError:
                raise
            except Exception:  # a renewal must never end the checks that follow it
                self.log.exception(
                    "labhub: the certificate check for %s failed", self.settings.domain
                )

    def stop(self) -> None:
        if self.challenges is not None:
            self.challenges.stop()

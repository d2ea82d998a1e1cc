"""The ACME account key and the certificate in data_dir: read, checked and written 0600, never half."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from labhub.cli.certs import CertificateError, CertificateInfo, check_certificate

#: The folder under data_dir that holds every ACME file.
ACME_FOLDER = "acme"


class StoreError(ValueError):
    """A stored ACME file is unusable; the message is a clause naming it and why."""


@dataclass(frozen=True)
class AcmeFiles:
    """Where one hub keeps its ACME account key, its certificate (full chain) and that certificate's key."""

    folder: Path

    @property
    def account_key(self) -> Path:
        return self.folder / "account.key"

    @property
    def cert(self) -> Path:
        return self.folder / "fullchain.pem"

    @property
    def key(self) -> Path:
        return self.folder / "privkey.pem"


def acme_files(data_dir: str) -> AcmeFiles:
    """The ACME files of the hub whose state lives in ``data_dir``."""
    return AcmeFiles(Path(data_dir) / ACME_FOLDER)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` mode 0600 through a temporary file, so no reader sees half of it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_make_account_key(path: Path) -> rsa.RSAPrivateKey:
    """The account key stored at ``path``; a new one (written 0600) when there is none yet.

    An existing file that cannot be read is never replaced: it names an account at the CA
    (and its rate limits), so the admin decides whether to restore or remove it.
    """
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(path, pem)
        return key
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as err:
        raise StoreError(
            f"the ACME account key {path} cannot be read ({err.strerror}); restore it, "
            "or remove it to register a new account"
        ) from None
    except (ValueError, TypeError):
        raise StoreError(
            f"the ACME account key {path} is not an unencrypted PEM private key; restore it, "
            "or remove it to register a new account"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise StoreError(f"the ACME account key {path} is not an RSA key; remove it to make one")
    return key


def stored_certificate(files: AcmeFiles, domain: str) -> CertificateInfo:
    """The stored certificate for ``domain``, checked: parses, matches its key, names the domain, not expired.

    Raises :class:`StoreError` with the reason when there is none or it cannot be served.
    """
    if not files.cert.exists() and not files.key.exists():
        raise StoreError(f"no certificate for {domain} is stored in {files.folder} yet")
    try:
        info = check_certificate(str(files.cert), str(files.key))
    except CertificateError as err:
        raise StoreError(str(err).rstrip(".")) from None
    if domain not in info.names:
        raise StoreError(f"the stored certificate {files.cert} is for {', '.join(info.names)}")
    return info


def is_due(info: CertificateInfo, renew_days: float) -> bool:
    """True when fewer than ``renew_days`` days of validity remain."""
    return info.days_left < renew_days

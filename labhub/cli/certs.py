"""Self-signed certificates for a lab's HTTPS, and the checks a certificate must pass at start."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class CertificateError(ValueError):
    """A certificate or key is unusable; the message is one sentence saying which and why."""


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


#: Validity of a certificate labhub makes (the longest browsers accept for a private CA's leaf).
CERT_DAYS = 825
#: Days of validity below which the hub warns at start and ``labhub check`` fails.
CERT_RENEW_DAYS = 30


def make_self_signed(
    cert_path: Path,
    key_path: Path,
    hostnames: list[str],
    days: int = CERT_DAYS,
) -> None:
    """Write a self-signed server certificate for ``hostnames`` (names or IPs) and its key (mode 0600).

    A leaf certificate (``CA:FALSE``, key usage digitalSignature and keyEncipherment,
    extended key usage serverAuth, the names as subjectAltName): a browser or client
    that trusts it trusts this server only, never other certificates signed with its
    key. An ECDSA P-256 key: as strong as RSA 3072 and quick to make.
    """
    if not hostnames:
        raise CertificateError("A certificate needs at least one hostname or IP address.")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0][:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hostnames]), critical=False)
        # a leaf, never a CA: whoever trusts this certificate trusts nothing else signed by its key
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    # create the key file 0600 from the start: never readable by others, even for a moment
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    not_after: datetime.datetime
    names: list[str]

    @property
    def days_left(self) -> float:
        delta = self.not_after - datetime.datetime.now(datetime.timezone.utc)
        return delta.total_seconds() / 86400


def check_certificate(cert_path: str, key_path: str, min_days: int = 0) -> CertificateInfo:
    """Check that the files exist, parse, belong together and have ``min_days`` of validity left."""
    for what, path in (("certificate", cert_path), ("key", key_path)):
        if not path or not os.path.isfile(path):
            raise CertificateError(f"The HTTPS {what} file {path or '(not set)'} does not exist.")
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except ValueError:
        raise CertificateError(f"{cert_path} is not a PEM certificate.") from None
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except (ValueError, TypeError):
        raise CertificateError(
            f"{key_path} is not an unencrypted PEM private key (JupyterHub cannot ask for a passphrase)."
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ) != key.public_key().public_bytes(serialization.Encoding.PEM, public):
        raise CertificateError(
            f"The key {key_path} does not belong to the certificate {cert_path}."
        )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n.value) for n in san]
    except x509.ExtensionNotFound:
        names = []
    info = CertificateInfo(cert.subject.rfc4514_string(), cert.not_valid_after_utc, names)
    if info.days_left <= 0:
        raise CertificateError(f"The certificate {cert_path} expired on {info.not_after:%Y-%m-%d}.")
    if info.days_left < min_days:
        raise CertificateError(
            f"The certificate {cert_path} expires on {info.not_after:%Y-%m-%d}, "
            f"within {min_days} days; renew it."
        )
    return info

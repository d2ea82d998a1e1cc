"""labhub.cli.certs: `labhub cert` makes a server certificate that is a leaf, never a CA (review finding 5)."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labhub.cli.certs import make_self_signed


@pytest.fixture
def lab_cert(tmp_path) -> tuple[Path, Path]:
    cert, key = tmp_path / "labhub.crt", tmp_path / "labhub.key"
    make_self_signed(cert, key, ["localhost", "127.0.0.1"])
    return cert, key


def _client_context(cafile: Path, strict: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    if strict:
        # what Python 3.13's default context adds: the strictest chain rules OpenSSL has
        context.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def _handshake(cert: Path, key: Path, cafile: Path, hostname: str, strict: bool = False) -> None:
    """A TLS handshake on loopback: a server with ``cert``, a client trusting ``cafile`` only."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(cert), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        context = _client_context(cafile, strict)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=hostname) as tls,
        ):
            tls.send(b"x")
    finally:
        thread.join(10)
        listener.close()


@pytest.mark.security
def test_the_lab_certificate_is_a_server_leaf(lab_cert):
    cert = x509.load_pem_x509_certificate(lab_cert[0].read_bytes())
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign and not usage.value.crl_sign
    extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(extended) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_a_client_trusting_the_certificate_reaches_the_lab(lab_cert):
    cert, key = lab_cert
    _handshake(cert, key, cafile=cert, hostname="localhost")
    _handshake(cert, key, cafile=cert, hostname="localhost", strict=True)


@pytest.mark.security
def test_trusting_the_lab_certificate_trusts_nothing_its_key_signs(lab_cert, tmp_path):
    """Someone with the lab's key (a backup, a leaked .env folder) forges a bank's certificate."""
    cert_path, key_path = lab_cert
    lab = x509.load_pem_x509_certificate(cert_path.read_bytes())
    lab_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    forged_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bank.example")]))
        .issuer_name(lab.subject)
        .public_key(forged_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bank.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(lab_key.public_key()),
            critical=False,
        )
        .sign(lab_key, hashes.SHA256())
    )
    forged_cert, forged_key_path = tmp_path / "bank.crt", tmp_path / "bank.key"
    forged_cert.write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    forged_key_path.write_bytes(
        forged_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(forged_cert, forged_key_path, cafile=cert_path, hostname="bank.example")

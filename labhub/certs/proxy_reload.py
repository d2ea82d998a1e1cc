"""configurable-http-proxy taking a renewed certificate in place: a preload script, a signal, a check."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from cryptography import x509

#: Loaded into configurable-http-proxy (Node) with --require; reloads its certificate on SIGUSR2.
RELOAD_SCRIPT = Path(__file__).with_name("reload_certificate.js")


def node_options(existing: str, script: Path = RELOAD_SCRIPT) -> str | None:
    """NODE_OPTIONS that also preload ``script``; None when it cannot be (missing, or a path with spaces)."""
    if not script.is_file() or " " in str(script):
        return None
    return f"{existing} --require {script}".strip()


def preload_env(cert: str, key: str, environ: dict[str, str]) -> dict[str, str] | None:
    """The variables that make the proxy reload ``cert`` and ``key`` on SIGUSR2; None when it cannot."""
    options = node_options(environ.get("NODE_OPTIONS", ""))
    if options is None:
        return None
    return {"NODE_OPTIONS": options, "LABHUB_TLS_CERT": cert, "LABHUB_TLS_KEY": key}


def process_has_env(pid: int, values: dict[str, str]) -> bool:
    """True when process ``pid`` was started with every one of ``values`` in its environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            entries = set(f.read().split(b"\0"))
    except OSError:
        return False
    return all(f"{k}={v}".encode() in entries for k, v in values.items())


def served_serial(host: str, port: int, name: str, timeout: float = 2.0) -> str | None:
    """The serial (hex) of the certificate served on ``host:port`` for ``name``; None if none answers.

    Only compares what is served with what was written, so the chain is not verified.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return format(x509.load_der_x509_certificate(der).serial_number, "x")


def local_address(ip: str) -> str:
    """Where this machine reaches a server listening on ``ip`` (all addresses: loopback)."""
    return "127.0.0.1" if ip in ("", "0.0.0.0", "::", "*") else ip


__all__ = ["RELOAD_SCRIPT", "local_address", "node_options", "preload_env", "served_serial"]

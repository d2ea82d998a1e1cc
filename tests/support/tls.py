"""What a TLS client sees on a port: the certificate served for a name, and how long connections fail."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path

from cryptography import x509


def served_certificate(
    port: int, name: str, cafile: Path, timeout: float = 5.0
) -> x509.Certificate:
    """The leaf served on 127.0.0.1:``port`` for ``name``, verified against ``cafile`` alone.

    The handshake fails unless the chain the server sends leads to that root and the
    certificate names ``name``.
    """
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def served_serial(port: int, name: str, cafile: Path) -> str:
    return format(served_certificate(port, name, cafile).serial_number, "x")


class ConnectionProbe:
    """A new TLS connection every ``interval`` seconds in a thread; records when each failed."""

    def __init__(self, port: int, name: str, cafile: Path, interval: float = 0.02) -> None:
        self.port, self.name, self.cafile, self.interval = port, name, cafile, interval
        self.results: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                served_certificate(self.port, self.name, self.cafile, timeout=2)
                ok = True
            except OSError:  # refused, reset or a failed handshake (ssl.SSLError is an OSError)
                ok = False
            self.results.append((began, ok))
            self._stop.wait(self.interval)

    def __enter__(self) -> ConnectionProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def longest_outage(self) -> float:
        """Seconds from the first failed connection of a run of failures to the next success."""
        longest, failing_since = 0.0, None
        for began, ok in self.results:
            if not ok and failing_since is None:
                failing_since = began
            elif ok and failing_since is not None:
                longest = max(longest, began - failing_since)
                failing_since = None
        return longest

    def failures(self) -> int:
        return sum(1 for _, ok in self.results if not ok)

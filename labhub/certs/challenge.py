"""The HTTP-01 answer on acme_challenge_port; every other request there is sent to the hub's HTTPS."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Where every HTTP-01 challenge lives (RFC 8555, section 8.3).
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


class ChallengeServerError(OSError):
    """The challenge port cannot be bound; the message is one sentence."""


def _handler(answers: dict[str, str], https_origin: str, log) -> type[BaseHTTPRequestHandler]:
    class ChallengeHandler(BaseHTTPRequestHandler):
        server_version = "labhub-acme"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path.startswith(CHALLENGE_PREFIX):
                answer = answers.get(path)
                if answer is None:
                    self.send_error(404)
                    return
                body = answer.encode()
                log.info("labhub: ACME HTTP-01 challenge %s answered", path)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            # plain HTTP carries nothing else: a browser typing the name lands on HTTPS
            self.send_response(301)
            self.send_header("Location", https_origin + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
            log.debug("labhub: challenge port: " + format, *args)

    return ChallengeHandler


class ChallengeServer:
    """A small HTTP server in a thread of its own, so the CA is answered while the hub's loop waits."""

    def __init__(self, ip: str, port: int, https_origin: str, log) -> None:
        self.answers: dict[str, str] = {}
        try:
            self.httpd = ThreadingHTTPServer(
                (ip or "0.0.0.0", port), _handler(self.answers, https_origin, log)
            )
        except OSError as err:
            raise ChallengeServerError(
                f"The ACME challenge port {port} cannot be bound on {ip or 'all addresses'} "
                f"({err.strerror}); free it or set acme_challenge_port."
            ) from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            # a short poll: stopping the hub waits for it
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="labhub-acme-challenge",
            daemon=True,
        )

    def start(self) -> ChallengeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

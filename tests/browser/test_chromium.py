"""The browser helper itself: a page's JavaScript error and a call to another host are seen."""

from __future__ import annotations

import http.server
import threading

import pytest

from ..support.waiting import wait_until

#: ``.invalid`` never resolves anywhere, and the browser resolves no name but loopback's.
OUTSIDE = "http://labhub-outside.invalid"
PAGES = {
    "/favicon.ico": b"",  # a browser asks for it: a 404 would be a console error
    "/quiet": b"<p>nothing to see</p>",
    "/error": b"<script>throw new Error('labhub-test-error')</script>",
    "/outside": (
        f"<img src='{OUTSIDE}/pixel.png'><script>fetch('{OUTSIDE}/news').catch(() => {{}})</script>"
    ).encode(),
}


class Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = PAGES.get(self.path)
        self.send_response(404 if body is None else 200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pages():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_quiet_page_leaves_nothing_to_report(chromium, pages):
    chromium.take_problems()
    chromium.driver.get(f"{pages}/quiet")
    assert chromium.take_problems() == ([], [])


def test_a_javascript_error_is_seen(chromium, pages):
    chromium.take_problems()
    chromium.driver.get(f"{pages}/error")
    errors, outside = chromium.take_problems()
    assert any("labhub-test-error" in error for error in errors), errors
    assert not outside


def test_a_call_to_another_host_is_seen_and_goes_nowhere(chromium, pages):
    chromium.take_problems()
    chromium.driver.get(f"{pages}/outside")
    seen: list[str] = []
    errors: list[str] = []

    def both_seen() -> bool:
        found_errors, found_outside = chromium.take_problems()
        errors.extend(found_errors)
        seen.extend(found_outside)
        return {f"{OUTSIDE}/pixel.png", f"{OUTSIDE}/news"} <= set(seen)

    wait_until(both_seen, 15, 0.2, what="both calls to the outside host recorded")
    # neither was answered: the browser has no way out but loopback
    assert any("pixel.png" in error for error in errors), errors

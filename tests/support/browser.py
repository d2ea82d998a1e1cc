"""A person in a browser: log in through the hub's form, start a lab, use it.

This is the suite's one login helper: every test that logs in through the form uses it.
"""

from __future__ import annotations

import html
import json
import re
import time

import requests

from .waiting import wait_until


class Browser:
    """One browser session against the hub at ``base`` (``http(s)://127.0.0.1:PORT``).

    ``cafile`` is an HTTPS hub's self-signed certificate: every request verifies it.
    """

    def __init__(self, base: str, cafile: str | bool = True):
        self.base = base
        self.session = requests.Session()
        self.session.verify = cafile
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.user = ""

    def _hub_xsrf(self) -> dict[str, str]:
        return {"X-XSRFToken": self.session.cookies.get("_xsrf", path="/hub/") or ""}

    def login(self, user: str, password: str) -> requests.Response:
        """Fill in the login form; the hub answers a good login with a redirect (302).

        The answer is returned as it came: callers read its status, text and cookies.
        """
        page = self.session.get(f"{self.base}/hub/login", timeout=30)
        assert page.status_code == 200, page.status_code
        self.user = user
        return self.session.post(
            f"{self.base}/hub/login",
            data={"username": user, "password": password, "_xsrf": self.session.cookies["_xsrf"]},
            allow_redirects=False,
            timeout=60,
        )

    def sso_login(self, login: str) -> requests.Response:
        """Sign in through the hub's OpenID provider as its account ``login``.

        The whole browser flow: the hub's redirect, the provider's login form, its
        consent form, and back to the hub's callback, whose answer is returned as it
        came (a 302 for a good login, a 4xx page with one sentence for a refused one).
        """
        from .oidc import follow, walk_provider

        r = follow(
            self.session,
            self.session.get(f"{self.base}/hub/oauth_login", allow_redirects=False, timeout=30),
        )
        answer = walk_provider(self.session, r, login)
        if answer.status_code == 302:
            self.user = self.hub_user()
        return answer

    def hub_user(self) -> str:
        """The name of the hub user this session is logged in as."""
        r = self.session.get(f"{self.base}/hub/api/user", headers=self._hub_xsrf(), timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["name"]

    def start_lab(self, wait: float = 180.0) -> float:
        """Start this user's lab, wait until it is ready and open it; return the seconds it took."""
        t0 = time.monotonic()
        r = self.session.post(
            f"{self.base}/hub/api/users/{self.user}/server", headers=self._hub_xsrf(), timeout=wait
        )
        if r.status_code not in (201, 202, 400):  # 400: already running
            raise RuntimeError(f"starting {self.user}'s lab: {r.status_code} {r.text[:300]}")
        while time.monotonic() - t0 < wait:
            model = self.session.get(f"{self.base}/hub/api/users/{self.user}", timeout=30).json()
            server = (model.get("servers") or {}).get("")
            if server and server.get("ready"):
                break
            time.sleep(0.3)
        else:
            raise TimeoutError(f"{self.user}'s lab not ready after {wait} s")
        # a browser's first visit goes through the hub's OAuth and back
        r = self.session.get(f"{self.base}/user/{self.user}/lab", timeout=60)
        if r.status_code != 200:
            raise RuntimeError(f"opening {self.user}'s lab: {r.status_code}")
        return time.monotonic() - t0

    def stop_lab(self, wait: float = 60.0) -> None:
        r = self.session.delete(
            f"{self.base}/hub/api/users/{self.user}/server", headers=self._hub_xsrf(), timeout=wait
        )
        if r.status_code not in (202, 204):
            raise RuntimeError(f"stopping {self.user}'s lab: {r.status_code} {r.text[:300]}")
        wait_until(
            lambda: (
                not self.session.get(f"{self.base}/hub/api/users/{self.user}", timeout=30)
                .json()
                .get("servers")
            ),
            wait,
            0.3,
            what=f"{self.user}'s lab stopped",
            retry_on=(requests.RequestException,),
        )

    def open_lab(self, owner: str) -> requests.Response:
        """Open ``owner``'s lab (a shared one too), confirming the hub's access form if it asks.

        The hub asks a guest once whether the owner's lab may identify them; a person
        clicks "Authorize", this posts the same form.
        """
        r = self.session.get(f"{self.base}/user/{owner}/lab", timeout=60)
        if r.status_code == 200 and "/hub/api/oauth2/authorize" in r.url:
            fields = [
                (name, html.unescape(value))
                for name, value in re.findall(
                    r'<input type="hidden" name="(\w+)" value="([^"]*)"', r.text
                )
            ]
            r = self.session.post(r.url, data=fields, timeout=60)
        return r

    def page_token(self, owner: str) -> str:
        """The hub token ``owner``'s lab page gives its front end (what the lab's Share entry uses)."""
        r = self.open_lab(owner)
        assert r.status_code == 200, (r.status_code, r.url)
        match = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', r.text, re.S
        )
        assert match, "the lab page has no jupyter-config-data"
        return json.loads(match.group(1))["token"]

    def lab_request(self, owner: str, method: str, path: str, **kwargs) -> requests.Response:
        """A request to ``owner``'s lab server, with its XSRF cookie as a browser sends it."""
        xsrf = self.session.cookies.get("_xsrf", path=f"/user/{owner}/") or ""
        kwargs.setdefault("timeout", 60)
        return self.session.request(
            method,
            f"{self.base}/user/{owner}/{path}",
            headers={"X-XSRFToken": xsrf},
            allow_redirects=False,
            **kwargs,
        )

    def contents(self, method: str, path: str, owner: str = "", **kwargs) -> requests.Response:
        """A request to a lab's contents API (this user's own lab unless ``owner`` is given)."""
        owner = owner or self.user
        xsrf = self.session.cookies.get("_xsrf", path=f"/user/{owner}/") or ""
        return self.session.request(
            method,
            f"{self.base}/user/{owner}/api/contents/{path}",
            headers={"X-XSRFToken": xsrf},
            timeout=60,
            **kwargs,
        )

    def put_text(self, path: str, text: str) -> requests.Response:
        return self.contents("PUT", path, json={"type": "file", "format": "text", "content": text})

    def read_text(self, path: str) -> str:
        r = self.contents("GET", path, params={"type": "file", "format": "text"})
        r.raise_for_status()
        return r.json()["content"]

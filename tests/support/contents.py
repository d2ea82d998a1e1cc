"""A lab's contents API through the hub's proxy: write a file, read it back."""

from __future__ import annotations

import requests


def put_file(hub, user: str, path: str, content: str) -> dict:
    """Write ``content`` to ``path`` in ``user``'s lab; fail unless the lab took it."""
    r = hub.user_request(
        user,
        "PUT",
        f"/api/contents/{path}",
        json={"type": "file", "format": "text", "content": content},
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def get_file(hub, user: str, path: str) -> requests.Response:
    """The contents API's answer for ``path`` in ``user``'s lab, content included."""
    return hub.user_request(user, "GET", f"/api/contents/{path}?content=1")


def read_file(hub, user: str, path: str) -> str | None:
    """The text of ``path`` in ``user``'s lab, or None while the lab cannot serve it."""
    r = hub.user_request(user, "GET", f"/api/contents/{path}?content=1", timeout=10)
    return r.json()["content"] if r.status_code == 200 else None

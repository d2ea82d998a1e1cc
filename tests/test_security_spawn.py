"""What a logged-in user (not an admin) can ask for when starting a lab: only what the admin allows.

Through the user's own API token and through the spawn form in a browser
session: an image outside ``allowed_images`` is refused, host paths and
privileges in the request body are ignored, and nobody starts someone else's lab.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from .conftest import lab_spawner_config
from .support.faults import lab_containers

pytestmark = [pytest.mark.docker]


@pytest.fixture
def picky_hub(hub_factory, lab_image, lab_root, lab_prefix):
    extra = f"""
c.LabDockerSpawner.allowed_images = {{"default": {lab_image!r}, "again": {lab_image!r}}}
"""
    return hub_factory(lab_spawner_config(lab_image, lab_root, lab_prefix, extra))


def user_token(hub, user: str) -> str:
    hub.create_user(user)
    r = hub.api("POST", f"/users/{user}/tokens", json={"note": "security test"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def as_user(hub, token: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method,
        f"{hub.url}/hub/api{path}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        **kwargs,
    )


def test_user_token_cannot_pick_images_or_widen(picky_hub, docker_client, lab_prefix, lab_root):
    hub = picky_hub
    token = user_token(hub, "wes")
    hub.create_user("xena")
    # someone else's lab: not even visible
    r = as_user(hub, token, "POST", "/users/xena/server")
    assert r.status_code in (403, 404), r.text
    for image in ("busybox:latest", "evil/rootkit", "labhub/singleuser-offline:latest"):
        r = as_user(hub, token, "POST", "/users/wes/server", json={"image": image})
        assert r.status_code == 400 and "not in allowed list" in r.text, (image, r.text)
    assert lab_containers(docker_client, lab_prefix) == []
    hostile_options = {
        "image": "again",
        "volumes": {"/etc": "/host-etc", "/var/run/docker.sock": "/docker.sock"},
        "mounts": [{"Type": "bind", "Source": "/root", "Target": "/host-root"}],
        "binds": ["/:/host:rw"],
        "privileged": True,
        "cap_add": ["SYS_ADMIN"],
        "user": "0",
        "network_mode": "container:evil",
        "devices": ["/dev/sda:/dev/sda"],
    }
    r = as_user(hub, token, "POST", "/users/wes/server", json=hostile_options)
    assert r.status_code in (201, 202), r.text
    hub.wait_ready("wes")
    (container,) = lab_containers(docker_client, lab_prefix)
    host_config = container.attrs["HostConfig"]
    assert host_config["Privileged"] is False
    assert not host_config.get("CapAdd")
    assert not host_config.get("Devices")
    assert host_config["NetworkMode"] == "host"
    assert container.attrs["Config"]["User"] == "2100:2100"
    sources = {m["Source"] for m in container.attrs["Mounts"]}
    assert sources == {
        str(lab_root / "personal_notebooks" / "wes"),
        str(lab_root / "shared_notebooks"),
    }
    code, out = container.exec_run(["id", "-u"])
    assert out.strip() == b"2100"


def test_spawn_form_cannot_pick_an_image_outside_the_list(
    picky_hub, docker_client, lab_prefix, lab_image
):
    hub = picky_hub
    session = requests.Session()
    page = session.get(f"{hub.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = session.post(
        f"{hub.url}/hub/login",
        data={"username": "yan", "password": "lab-dev-password", "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302
    form = session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert form.status_code == 200 and "again" in form.text  # the options form lists the aliases
    xsrf = session.cookies.get("_xsrf") or xsrf
    r = session.post(
        f"{hub.url}/hub/spawn",
        data={"image": "busybox:latest", "_xsrf": xsrf},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code >= 400 or "not in allowed list" in r.text, r.status_code
    time.sleep(1)
    assert lab_containers(docker_client, lab_prefix) == []
    model = hub.api("GET", "/users/yan").json()
    assert not model.get("servers"), model
    # the listed alias starts the configured image
    r = session.post(
        f"{hub.url}/hub/spawn",
        data={"image": "default", "_xsrf": xsrf},
        allow_redirects=False,
        timeout=60,
    )
    assert r.status_code in (200, 302), r.status_code
    hub.wait_ready("yan")
    (container,) = lab_containers(docker_client, lab_prefix)
    assert container.attrs["Config"]["Image"] == lab_image

"""The labhub command: init, cert and check, run as a person would run them."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from labhub._version import __version__ as labhub_version
from labhub.cli.certs import make_self_signed
from labhub.cli.checks import lab_root_mount_warning
from labhub.cli.deployment import (
    Deployment,
    build_wheel,
    labhub_checkout,
    load_templates,
    render_files,
    requirements_from_metadata,
)
from labhub.cli.image import DEFAULT_IMAGE

from ..support.slapd import SEARCH_DN, SEARCH_PW, SilentServer


def labhub(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "labhub.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def test_cert(tmp_path):
    r = labhub("cert", "--out", tmp_path, "--host", "lab.example.org", "--host", "10.1.2.3")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "labhub.key").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "labhub.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in san] == ["lab.example.org", "10.1.2.3"]


def env_values(path):
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )


def test_init_writes_a_ready_deployment(tmp_path):
    target = tmp_path / "mylab"
    r = labhub("init", target)
    assert r.returncode == 0, r.stderr
    # the printed next step is all it takes
    assert re.search(
        r"next: cd \S+ && (docker-compose|docker compose) build && \1 up -d$", r.stdout
    )
    compose = yaml.safe_load((target / "docker-compose.yml").read_text())
    assert "name" not in compose  # docker-compose 1.29 refuses a top-level name
    hub, lab = compose["services"]["hub"], compose["services"]["lab-image"]
    assert hub["network_mode"] == "host"
    assert "/var/run/docker.sock:/var/run/docker.sock" in hub["volumes"]
    # a plain `compose build` builds both images, over the host's network
    assert "profiles" not in lab and lab["image"] == "${LABHUB_IMAGE}"
    assert hub["build"]["network"] == lab["build"]["network"] == "host"
    env = target / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    values = env_values(env)
    assert len(values["JUPYTERHUB_CRYPT_KEY"]) == 64 and len(values["CONFIGPROXY_AUTH_TOKEN"]) == 64
    assert values["LABHUB_LAB_ROOT"] == str(target / "lab")
    # dummy login on loopback: LabAuthenticator accepts it, so the hub starts as written
    assert values["LABHUB_AUTH_MODE"] == "dummy" and values["LABHUB_IP"] == "127.0.0.1"
    assert values["LABHUB_UID_STRATEGY"] == "docker-stacks"
    assert values["HUB_BASE_IMAGE"].startswith("quay.io/jupyterhub/jupyterhub:")
    # lab_root stays root's (a lab-uid process cannot swap what is below it); the two folders are the lab's
    assert (target / "lab").stat().st_uid == 0
    for folder in ("lab/personal_notebooks", "lab/shared_notebooks"):
        st = (target / folder).stat()
        assert (st.st_uid, st.st_gid) == (2100, 2100), folder
    assert stat.S_IMODE((target / "ssl" / "labhub.key").stat().st_mode) == 0o600
    for name in ("Dockerfile.hub", "Dockerfile.lab", "jupyterhub_config.py"):
        assert (target / name).is_file()
    assert "chpasswd" not in (target / "Dockerfile.lab").read_text()
    # labhub comes from the wheel beside the Dockerfile, never from a package index
    (wheel,) = (target / "wheels").glob("jupyterhub_labhub-*.whl")
    assert wheel.name.startswith(f"jupyterhub_labhub-{labhub_version}-")
    with zipfile.ZipFile(wheel) as zf:
        assert {"labhub/cli/main.py", "labhub/pool/warm_pool.py", "labhub/hub/proxy.py"} <= set(
            zf.namelist()
        )
    requirements = (target / "wheels" / "requirements.txt").read_text()
    assert "dockerspawner" in requirements and "pytest" not in requirements
    dockerfile = (target / "Dockerfile.hub").read_text()
    assert "--no-index --find-links /tmp/labhub-wheels" in dockerfile
    assert "labhub==" not in dockerfile
    # a second init into the same folder refuses instead of overwriting secrets
    again = labhub("init", target)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_requirements_leave_out_extras():
    text = (
        "Metadata-Version: 2.3\nName: jupyterhub-labhub\nVersion: 1.0\n"
        "Requires-Dist: docker>=7\nRequires-Dist: jupyterhub>=5\n"
        "Requires-Dist: pytest>=8; extra == 'test'\n"
        "Requires-Dist: tomli; python_version < '3.11'\n\nlong description\n"
    )
    assert requirements_from_metadata(text) == [
        "docker>=7",
        "jupyterhub>=5",
        "tomli; python_version < '3.11'",
    ]


def test_render_files_offline_and_not():
    templates = load_templates()
    values = {"dummy_password": "pw", "crypt_key": "k", "proxy_token": "t"}
    online = render_files(Deployment(lab_root=Path("/srv/lab")), templates, values)
    offline = render_files(Deployment(lab_root=Path("/srv/lab"), offline=True), templates, values)
    assert (
        set(online)
        == set(offline)
        == {
            ".env",
            "docker-compose.yml",
            "Dockerfile.hub",
            "Dockerfile.lab",
            "jupyterhub_config.py",
        }
    )
    assert online["Dockerfile.lab"] == templates["Dockerfile.lab"]
    assert offline["Dockerfile.lab"] == templates["Dockerfile.lab.offline"]
    assert "LABHUB_LAB_ROOT=/srv/lab\n" in offline[".env"]
    assert f"LAB_BASE_IMAGE={DEFAULT_IMAGE}\n" in offline[".env"]
    assert "LABHUB_DUMMY_PASSWORD=pw\n" in online[".env"]
    assert "{" not in online[".env"].replace("${", "")  # every placeholder filled


def test_init_offline_builds_both_images_from_the_offline_image(tmp_path):
    target = tmp_path / "airgapped"
    r = labhub("init", target, "--offline", "--image", "team-lab:1", "--hub-image", "team-hub:1")
    assert r.returncode == 0, r.stderr
    values = env_values(target / ".env")
    assert values["HUB_BASE_IMAGE"] == values["LAB_BASE_IMAGE"] == DEFAULT_IMAGE
    assert values["LABHUB_IMAGE"] == "team-lab:1" and values["HUB_IMAGE"] == "team-hub:1"
    # the offline image is not a docker-stacks image: the lab runs as the lab uid directly
    assert values["LABHUB_UID_STRATEGY"] == "direct"
    for name in ("Dockerfile.hub", "Dockerfile.lab"):
        assert "FROM ${BASE_IMAGE}" in (target / name).read_text(), name
    assert "mamba" not in (target / "Dockerfile.lab").read_text()


def test_init_upgrade_replaces_only_the_wheel(tmp_path):
    target = tmp_path / "mylab"
    assert labhub("init", target).returncode == 0
    kept = {p: p.read_bytes() for p in (target / ".env", target / "ssl" / "labhub.key")}
    (old,) = (target / "wheels").glob("*.whl")
    newer = tmp_path / old.name.replace(labhub_version, labhub_version + ".post1")
    shutil.copy(old, newer)
    r = labhub("init", "--upgrade", "--wheel", newer, target)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (target / "wheels").glob("*.whl")] == [newer.name]
    assert all(path.read_bytes() == data for path, data in kept.items())
    assert "build && " in r.stdout and "up -d" in r.stdout
    # not a deployment, or not labhub's wheel: one sentence, nothing written
    r = labhub("init", "--upgrade", tmp_path / "nothing")
    assert r.returncode == 1 and "holds no deployment" in r.stderr
    r = labhub("init", "--upgrade", "--wheel", tmp_path / "mylab" / ".env", target)
    assert r.returncode == 1 and "is not a wheel of jupyterhub-labhub" in r.stderr
    assert [p.name for p in (target / "wheels").glob("*.whl")] == [newer.name]


def test_init_from_an_installed_wheel_repacks_it(tmp_path):
    """Installed from a wheel (no checkout): init repacks the installed files into the same wheel."""
    built = build_wheel(labhub_checkout(), tmp_path / "built")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    python = venv / "bin" / "python"
    r = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", built],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [python, "-m", "labhub.cli", "init", tmp_path / "lab"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    (repacked,) = (tmp_path / "lab" / "wheels").glob("*.whl")
    assert repacked.name == built.name
    with zipfile.ZipFile(built) as a, zipfile.ZipFile(repacked) as b:
        names = sorted(n for n in a.namelist() if not n.endswith("/RECORD"))
        assert sorted(n for n in b.namelist() if not n.endswith("/RECORD")) == names
        assert all(a.read(n) == b.read(n) for n in names)
        assert "labhub/cli/main.py" in names and any("/share/labhub/templates/" in n for n in names)


# --- labhub check --------------------------------------------------------------


@pytest.fixture
def good(tmp_path, lab_image, slapd):
    """A config that passes every check, and the pieces to break it."""
    lab_root = tmp_path / "lab"
    lab_root.mkdir()
    os.chown(lab_root, 2100, 2100)
    make_self_signed(tmp_path / "ok.crt", tmp_path / "ok.key", ["localhost"])
    make_self_signed(tmp_path / "other.crt", tmp_path / "other.key", ["localhost"])
    make_self_signed(tmp_path / "soon.crt", tmp_path / "soon.key", ["localhost"], days=10)
    settings = {
        "c.JupyterHub.spawner_class": "'labhub.LabDockerSpawner'",
        "c.LabDockerSpawner.image": repr(lab_image),
        "c.LabDockerSpawner.lab_root": repr(str(lab_root)),
        "c.JupyterHub.ssl_cert": repr(str(tmp_path / "ok.crt")),
        "c.JupyterHub.ssl_key": repr(str(tmp_path / "ok.key")),
        "c.LabAuthenticator.mode": "'ldap'",
        "c.LabAuthenticator.server_addresses": repr([f"127.0.0.1:{slapd.port}"]),
        "c.LabAuthenticator.tls_strategy": "'before_bind'",
        "c.LabAuthenticator.tls_ca_file": repr(str(slapd.ca_file)),
        "c.LabAuthenticator.lookup_dn_search_user": repr(SEARCH_DN),
        "c.LabAuthenticator.lookup_dn_search_password": repr(SEARCH_PW),
    }

    def write(**changes):
        lines = {**settings, **changes}
        path = tmp_path / "jupyterhub_config.py"
        path.write_text(
            "c = get_config()  # noqa\n"
            + "".join(f"{k} = {v}\n" for k, v in lines.items() if v is not None)
        )
        return path

    return write


def test_check_passes_on_a_good_config(good, tmp_path):
    r = labhub("check", good())
    assert r.returncode == 0, r.stdout
    lines = r.stdout.splitlines()
    expected = ["ok"] * 6 + ["skip"]  # oidc: the config is in LDAP mode
    # a lab_root on a filesystem without nosuid,nodev is a warning, never a failure
    if lab_root_mount_warning(str(tmp_path / "lab"), Path("/proc/self/mountinfo").read_text()):
        expected[3] = "warn"
    assert [line.split()[0] for line in lines] == expected, r.stdout
    assert "search account binds" in lines[-2]


def broken_cases(tmp_path):
    silent = SilentServer()
    silent.close()
    return [
        (
            "config",
            {"c.LabDockerSpawner.lab_uid": "0\nimport labhub\nlabhub.configure(c, lab_uid=0)"},
            "positive id",
        ),
        ("image", {"c.LabDockerSpawner.image": "'labhub/no-such-image:0'"}, "not on this machine"),
        (
            "lab_root",
            {"c.LabDockerSpawner.lab_root": repr(str(tmp_path / "missing"))},
            "does not exist",
        ),
        ("https", {"c.JupyterHub.ssl_cert": repr(str(tmp_path / "gone.crt"))}, "does not exist"),
        ("https", {"c.JupyterHub.ssl_key": repr(str(tmp_path / "other.key"))}, "does not belong"),
        (
            "https",
            {
                "c.JupyterHub.ssl_cert": repr(str(tmp_path / "soon.crt")),
                "c.JupyterHub.ssl_key": repr(str(tmp_path / "soon.key")),
            },
            "within 30 days",
        ),
        (
            "https",
            {"c.JupyterHub.ssl_cert": None, "c.JupyterHub.ssl_key": None},
            "no HTTPS certificate",
        ),
        (
            "ldap",
            {"c.LabAuthenticator.server_addresses": repr([f"127.0.0.1:{silent.port}"])},
            "unreachable",
        ),
        ("ldap", {"c.LabAuthenticator.lookup_dn_search_password": "'wrong'"}, "was refused"),
        ("ldap", {"c.LabAuthenticator.server_addresses": "[]"}, "no server_address"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_check_names_what_is_broken(good, tmp_path, case):
    check, changes, reason = broken_cases(tmp_path)[case]
    r = labhub("check", good(**changes))
    assert r.returncode == 1
    failed = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1, r.stdout
    assert failed[0].startswith(f"FAIL  {check}:") and reason in failed[0], r.stdout


def test_check_without_docker(good):
    r = labhub("check", good(), env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert r.returncode == 1
    assert "FAIL  docker: No Docker engine answers" in r.stdout


def test_check_missing_config(tmp_path):
    r = labhub("check", tmp_path / "nope.py")
    assert r.returncode == 1 and "FAIL  config:" in r.stdout and "does not exist" in r.stdout


def test_check_decides_the_auth_mode_like_the_hub(good):
    """DEV_MODE=true is dummy for the hub, so labhub check skips LDAP (it used to test it)."""
    config = good(**{"c.LabAuthenticator.mode": None, "c.LabAuthenticator.server_addresses": "[]"})
    r = labhub("check", config, env={"DEV_MODE": "true", "LABHUB_AUTH_MODE": ""})
    assert "skip  ldap: authentication mode is dummy" in r.stdout, r.stdout
    r = labhub("check", config, env={"DEV_MODE": "", "LABHUB_AUTH_MODE": ""})
    assert "FAIL  ldap: LDAP mode but no server_address" in r.stdout, r.stdout
    r = labhub("check", config, env={"LABHUB_AUTH_MODE": "kerberos"})
    assert "FAIL  ldap: LABHUB_AUTH_MODE must be 'ldap', 'dummy' or 'oidc'" in r.stdout, r.stdout


# --- labhub run ----------------------------------------------------------------


def test_run_stops_on_a_bad_setting_before_starting_the_hub(tmp_path, lab_image):
    r = labhub(
        "run",
        "--data",
        tmp_path / "data",
        "--port",
        "1",
        "--image",
        lab_image,
        env={"LABHUB_LAB_UID": "lots"},
    )
    assert r.returncode == 1
    assert r.stderr.strip() == "labhub: LABHUB_LAB_UID must be a whole number, not 'lots'.", (
        r.stderr
    )
    assert not (tmp_path / "data" / "hub.log").exists()

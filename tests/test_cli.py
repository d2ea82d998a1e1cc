"""The labhub command: init, cert and check, run as a person would run them."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import yaml
from cryptography import x509

from labhub.certs import make_self_signed

from .support.slapd import SEARCH_DN, SEARCH_PW, SilentServer


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


def test_init_writes_a_ready_deployment(tmp_path):
    target = tmp_path / "mylab"
    r = labhub("init", target)
    assert r.returncode == 0, r.stderr
    compose = yaml.safe_load((target / "docker-compose.yml").read_text())
    assert compose["services"]["hub"]["network_mode"] == "host"
    assert "/var/run/docker.sock:/var/run/docker.sock" in compose["services"]["hub"]["volumes"]
    env = target / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1)
        for line in env.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert len(values["JUPYTERHUB_CRYPT_KEY"]) == 64 and len(values["CONFIGPROXY_AUTH_TOKEN"]) == 64
    assert values["LABHUB_LAB_ROOT"] == str(target / "lab")
    for folder in ("lab", "lab/personal_notebooks", "lab/shared_notebooks"):
        st = (target / folder).stat()
        assert (st.st_uid, st.st_gid) == (2100, 2100), folder
    assert stat.S_IMODE((target / "ssl" / "labhub.key").stat().st_mode) == 0o600
    for name in ("Dockerfile.hub", "Dockerfile.lab", "jupyterhub_config.py"):
        assert (target / name).is_file()
    assert "chpasswd" not in (target / "Dockerfile.lab").read_text()
    # a second init into the same folder refuses instead of overwriting secrets
    again = labhub("init", target)
    assert again.returncode == 1 and "not empty" in again.stderr


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


def test_check_passes_on_a_good_config(good):
    r = labhub("check", good())
    assert r.returncode == 0, r.stdout
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * 6, r.stdout
    assert "search account binds" in lines[-1]


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

"""Broken configurations stop the hub at startup with one clear sentence and no traceback.

Each case starts a real JupyterHub with one wrong setting and expects it to exit
on its own, non-zero, before serving anything, with a log that names the
problem in one sentence and holds no Python traceback.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
import time

import pytest

from .conftest import lab_spawner_config
from .support.hub import HubProcess

LAB_AUTH = """
c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
c.LabAuthenticator.dummy_password = "lab-dev-password"
"""
#: dummy mode from the environment, as a developer would run it; cases may override
BASE_ENV = {"LABHUB_AUTH_MODE": "dummy"}

LDAP = """
c.LabAuthenticator.mode = "ldap"
c.LabAuthenticator.server_address = "127.0.0.1"
c.LabAuthenticator.bind_dn_template = ["uid={username},ou=people,dc=lab,dc=test"]
"""


def share(**fields) -> str:
    base = {
        "name": "finance",
        "device": "//127.0.0.1/finance",
        "mount_path": "/mnt/finance",
        "credentials": "guest",
    }
    base.update(fields)
    return (
        f"c.LabDockerSpawner.cifs_shares = [{ {k: v for k, v in base.items() if v is not None}!r}]"
    )


#: (id, config lines, extra environment, words the one sentence must contain[, known bug])
BROKEN: list[tuple] = [
    # the lab's own settings
    ("lab-uid-0", "c.LabDockerSpawner.lab_uid = 0", {}, ("lab_uid",)),
    ("lab-gid-negative", "c.LabDockerSpawner.lab_gid = -5", {}, ("lab_gid",)),
    ("lab-root-relative", 'c.LabDockerSpawner.lab_root = "labdata"', {}, ("lab_root",)),
    (
        "personal-dir-relative",
        'c.LabDockerSpawner.personal_notebooks_dir = "./people"',
        {},
        ("personal_notebooks_dir",),
    ),
    ("uid-strategy-unknown", 'c.LabDockerSpawner.uid_strategy = "sudo"', {}, ("uid_strategy",)),
    # Windows shares
    ("cifs-no-device", share(device=None), {}, ("device",)),
    ("cifs-device-not-unc", share(device="fileserver:/finance"), {}, ("device",)),
    ("cifs-bad-name", share(name="Finance Team"), {}, ("name",)),
    ("cifs-unknown-key", share(pasword="x"), {}, ("unknown",)),
    ("cifs-bad-credentials", share(credentials="kerberos"), {}, ("credentials",)),
    ("cifs-file-missing", share(credentials="file"), {}, ("credentials_file",)),
    (
        "cifs-duplicate-name",
        "c.LabDockerSpawner.cifs_shares = ["
        '{"name": "a", "device": "//h/a", "mount_path": "/a", "credentials": "guest"}, '
        '{"name": "a", "device": "//h/b", "mount_path": "/b", "credentials": "guest"}]',
        {},
        ("unique",),
    ),
    ("cifs-reserved-option", share(options={"uid": "0"}), {}, ("uid",)),
    ("cifs-relative-mount-path", share(mount_path="finance"), {}, ("mount_path",)),
    ("cifs-bad-file-mode", share(file_mode="rw-r--r--"), {}, ("file_mode",)),
    # authentication
    (
        "auth-mode-unknown",
        'c.LabAuthenticator.mode = "kerberos"',
        {},
        ("mode",),
        "the mode trait's own validation raises while JupyterHub builds the authenticator",
    ),
    ("dummy-without-password", "c.LabAuthenticator.dummy_password = ''", {}, ("password",)),
    (
        "dummy-by-env-on-public-bind",
        'c.JupyterHub.ip = "0.0.0.0"',
        {"DEV_MODE": "1"},
        ("dummy",),
    ),
    ("ldap-without-server", LDAP + 'c.LabAuthenticator.server_address = ""', {}, ("server",)),
    (
        "ldap-without-bind-dn-or-lookup",
        LDAP + "c.LabAuthenticator.bind_dn_template = []",
        {},
        ("bind_dn_template",),
        "the stock LDAPAuthenticator's observer raises while JupyterHub builds the authenticator",
    ),
    (
        "ldap-lookup-without-base",
        LDAP + "c.LabAuthenticator.lookup_dn = True\nc.LabAuthenticator.user_search_base = ''",
        {},
        ("user_search_base",),
    ),
    (
        "ldap-ca-file-missing",
        LDAP + 'c.LabAuthenticator.tls_ca_file = "/nonexistent/ca.pem"',
        {},
        ("tls_ca_file",),
    ),
    (
        "store-password-without-crypt-key",
        LDAP + "c.LabAuthenticator.store_password = True",
        {"JUPYTERHUB_CRYPT_KEY": ""},
        ("store_password",),
    ),
]


def hub_refusal(tmp_path, lab_image, config: str, env: dict) -> tuple[int, str]:
    """Start a hub with ``config``; return its exit code and log once it exits (or fail)."""
    hub = HubProcess(tmp_path / "hub", config, env=env)
    try:
        hub.start(wait=60)
    except RuntimeError as err:
        if "did not answer" in str(err):
            raise
        return hub.proc.returncode if hub.proc else 1, hub.log_text()
    finally:
        hub.stop()
    pytest.fail(f"the hub started with a broken configuration:\n{hub.log_tail(20)}")


@pytest.mark.parametrize(
    "config,env,words",
    [
        pytest.param(
            c,
            e,
            w,
            id=i,
            marks=[pytest.mark.xfail(strict=True, reason=f"labhub bug: {bug[0]}")] if bug else [],
        )
        for i, c, e, w, *bug in BROKEN
    ],
)
def test_broken_configuration_stops_the_hub(tmp_path, lab_image, config, env, words):
    full = (
        lab_spawner_config(lab_image, tmp_path / "lab", "labcfg")
        + LAB_AUTH
        + textwrap.dedent(config)
        + "\n"
    )
    t0 = time.monotonic()
    code, log = hub_refusal(tmp_path, lab_image, full, {**BASE_ENV, **env})
    assert code != 0
    assert "Traceback" not in log, log[-3000:]
    reasons = [line for line in log.splitlines() if re.match(r"\[C ", line)]
    assert reasons, f"no critical line in the log:\n{log[-2000:]}"
    sentence = reasons[-1].split("] ", 1)[-1]
    for word in words:
        assert word.lower() in sentence.lower(), sentence
    print(f"\n{time.monotonic() - t0:.1f} s: {sentence}")


def test_labhub_init_writes_private_files(tmp_path):
    """``labhub init`` writes its .env and key files readable by the owner only."""
    result = subprocess.run(
        ["labhub", "init", str(tmp_path / "deploy")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    secrets_files = [
        p
        for p in (tmp_path / "deploy").rglob("*")
        if p.is_file() and (p.name == ".env" or p.suffix in (".key", ".pem") or "secret" in p.name)
    ]
    assert any(p.name == ".env" for p in secrets_files), sorted(
        str(p) for p in (tmp_path / "deploy").rglob("*")
    )
    for path in secrets_files:
        if path.suffix == ".pem" and "key" not in path.name:
            continue  # a certificate is public
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"

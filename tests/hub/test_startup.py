"""labhub.hub.startup: broken configurations stop the hub with one clear sentence and no traceback.

Each case starts a real JupyterHub with one wrong setting and expects it to exit
on its own, non-zero, before serving anything, with a log that names the
problem in one sentence and holds no Python traceback.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from ..conftest import lab_spawner_config
from ..support.hub import HubProcess

pytestmark = pytest.mark.security

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
    # labs on host networking could take the hub's ports above 1024 while it restarts
    (
        "host-network-hub-ports-a-lab-can-bind",
        "c.HostNetworkGuard.allow_unprivileged_ports = False",
        {},
        ("hub_port", "ConfigurableHTTPProxy.api_url", "allow_unprivileged_ports"),
    ),
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


def refusal_sentence(log: str) -> str:
    """The one reason the hub gave: its critical log line, or configure()'s exit message."""
    reasons = [
        line.split("] ", 1)[-1] if line.startswith("[C ") else line
        for line in log.splitlines()
        if line.startswith("[C ") or line.startswith("labhub: ")
    ]
    assert reasons, f"no one-sentence reason in the log:\n{log[-2000:]}"
    return reasons[-1]


def hub_refusal(tmp_path, lab_image, config: str, env: dict) -> tuple[int, str]:
    """Start a hub with ``config``; return its exit code and log once it exits (or fail)."""
    hub = HubProcess(tmp_path / "hub", config, env=env)
    try:
        # a refusal comes within seconds; a hub still up after 20 s took the configuration
        hub.start(wait=20)
    except RuntimeError as err:
        if "hub exited" in str(err):
            return hub.proc.returncode, hub.log_text()
        started = hub.log_tail(20)
    else:
        started = hub.log_tail(20)
    finally:
        hub.stop()
    pytest.fail(f"the hub started with a broken configuration:\n{started}")


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
    sentence = refusal_sentence(log)
    for word in words:
        assert word.lower() in sentence.lower(), sentence
    print(f"\n{time.monotonic() - t0:.1f} s: {sentence}")


def two_certificates(folder: Path) -> dict[str, str]:
    from labhub.cli.certs import make_self_signed

    paths = {}
    for name in ("one", "two"):
        make_self_signed(folder / f"{name}.crt", folder / f"{name}.key", ["127.0.0.1"], days=30)
        paths[name] = str(folder / name)
    return paths


#: (id, configure() keyword arguments, LABHUB_* environment, words, [known bug])
BROKEN_CONFIGURE: list[tuple] = [
    (
        "cert-missing",
        {"ssl_cert": "/nonexistent/lab.crt", "ssl_key": "/nonexistent/lab.key"},
        {},
        ("lab.crt",),
    ),
    ("cert-without-key", {"ssl_cert": "{one}.crt"}, {}, ("ssl_key",)),
    ("cert-key-mismatch", {"ssl_cert": "{one}.crt", "ssl_key": "{two}.key"}, {}, ("key",)),
    ("cert-is-a-key", {"ssl_cert": "{one}.key", "ssl_key": "{one}.key"}, {}, ("certificate",)),
    ("env-lab-uid-0", {}, {"LABHUB_LAB_UID": "0"}, ("lab_uid",)),
    ("env-lab-uid-not-a-number", {}, {"LABHUB_LAB_UID": "lab"}, ("LABHUB_LAB_UID",)),
    ("env-lab-root-relative", {}, {"LABHUB_LAB_ROOT": "srv/lab"}, ("lab_root",)),
    ("env-auth-mode-unknown", {}, {"LABHUB_AUTH_MODE": "kerberos"}, ("auth_mode",)),
    (
        "env-bool-unclear",
        {},
        {"LABHUB_SHUTDOWN_ON_LOGOUT": "maybe"},
        ("LABHUB_SHUTDOWN_ON_LOGOUT",),
    ),
    ("spawner-unknown", {"spawner": "kubernetes"}, {}, ("spawner",)),
    ("uid-strategy-unknown", {"uid_strategy": "sudo"}, {}, ("uid_strategy",)),
    ("port-out-of-range", {"port": 70000}, {}, ("port",)),
    ("ldap-tls-unknown", {"ldap_tls": "starttls"}, {}, ("ldap_tls",)),
    ("option-misspelt", {"lab_rot": "/srv/lab"}, {}, ("lab_rot",)),
    (
        "image-missing",
        {"image": "labhub/no-such-image:0"},
        {},
        ("image",),
        "nothing checks at startup that the lab image exists",
    ),
    (
        "ldap-unreachable",
        {
            "auth_mode": "ldap",
            "ldap_servers": ["127.0.0.1:9"],
            "ldap_bind_dn_template": ["uid={username},dc=x"],
            "ldap_tls": "insecure",
            "ldap_allow_all": True,
        },
        {},
        ("ldap",),
        "nothing checks at startup that an LDAP server answers",
    ),
]


@pytest.mark.parametrize(
    "options,env,words",
    [
        pytest.param(
            o,
            e,
            w,
            id=i,
            marks=[pytest.mark.xfail(strict=True, reason=f"not built: {bug[0]}")] if bug else [],
        )
        for i, o, e, w, *bug in BROKEN_CONFIGURE
    ],
)
def test_broken_configure_stops_the_hub(tmp_path, lab_image, options, env, words):
    """The same through ``labhub.configure()``, its keyword arguments and LABHUB_* variables."""
    certs = two_certificates(tmp_path)
    options = {k: v.format(**certs) if isinstance(v, str) else v for k, v in options.items()}
    base = {
        "data_dir": str(tmp_path / "data"),
        "lab_root": str(tmp_path / "lab"),
        "auth_mode": "dummy",
        "dummy_password": "lab-dev-password",
        "image": lab_image,
    }
    for key in env:
        base.pop(key.removeprefix("LABHUB_").lower(), None)
    config = f"import labhub\nlabhub.configure(c, **{ {**base, **options}!r})\n"
    code, log = hub_refusal(tmp_path, lab_image, config, env)
    assert code != 0
    assert "Traceback" not in log, log[-3000:]
    sentence = refusal_sentence(log)
    for word in words:
        assert word.lower() in sentence.lower(), sentence
    print(f"\n{sentence}")

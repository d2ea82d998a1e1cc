"""``labhub check``: what would stop a lab, found before the hub starts. One line per check."""

from __future__ import annotations

import os
import re
import socket
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from traitlets.config import Config, PyFileConfigLoader

from labhub.cli.certs import CERT_RENEW_DAYS, CertificateError, check_certificate
from labhub.hub.options import (
    DEFAULT_LAB_GID,
    DEFAULT_LAB_ROOT,
    DEFAULT_LAB_UID,
    DEFAULT_LDAP_CONNECT_TIMEOUT,
    DEFAULT_LDAP_RESPONSE_TIMEOUT,
    DEFAULT_LDAP_TLS,
    DEFAULT_SPAWNER,
    LDAP,
    LDAP_PORT,
    LDAPS_PORT,
    OIDC,
    SPAWNER_CLASSES,
    OptionError,
    auth_mode,
    spawner_kind,
)

OK, FAIL, SKIP, WARN = "ok", "FAIL", "skip", "warn"
#: Mount options lab_root's filesystem should have: no set-uid file and no device node a lab
#: or a host account with the lab uid leaves there can be used on the host.
SAFE_MOUNT_OPTIONS = ("nosuid", "nodev")


class CheckFailed(Exception):
    """A check's one-sentence reason."""


def load_config(path: str) -> Config:
    """Run a jupyterhub_config.py the way JupyterHub does and return its settings."""
    folder, name = os.path.split(os.path.abspath(path))
    if not os.path.isfile(path):
        raise CheckFailed(f"{path} does not exist.")
    try:
        return PyFileConfigLoader(name, path=folder).load_config()
    except SystemExit as stop:
        raise CheckFailed(str(stop.code).removeprefix("labhub: ")) from None
    except Exception as err:  # a config file is arbitrary Python: report whatever it raised
        raise CheckFailed(f"{path} raised {type(err).__name__}: {err}") from None


def _spawner_section(c: Config) -> Config:
    configured = c.JupyterHub.spawner_class if "JupyterHub.spawner_class" in c else None
    kind = spawner_kind(configured) or DEFAULT_SPAWNER
    return c.get(SPAWNER_CLASSES[kind].rsplit(".", 1)[-1], Config())


def config_auth_mode(c: Config, environ: Mapping[str, str] | None = None) -> str:
    """The mode the hub will run ``c`` in: the same rule LabAuthenticator and configure() use."""
    configured = c.LabAuthenticator.mode if "LabAuthenticator.mode" in c else None
    try:
        return auth_mode(configured, os.environ if environ is None else environ)
    except OptionError as err:
        raise CheckFailed(str(err)) from None


def check_docker(c: Config) -> str:
    import docker

    try:
        client = docker.from_env(timeout=5)
        version = client.version()["Version"]
    except Exception:
        raise CheckFailed(
            "No Docker engine answers; start it (systemctl start docker) or check DOCKER_HOST."
        ) from None
    return f"Docker engine {version} answers"


def check_image(c: Config) -> str:
    import docker

    from labhub.cli.image import DEFAULT_IMAGE

    image = _spawner_section(c).get("image", DEFAULT_IMAGE)
    try:
        docker.from_env(timeout=5).images.get(image)
    except docker.errors.ImageNotFound:
        raise CheckFailed(
            f"The image {image} is not on this machine; build it (labhub build-image) or pull it."
        ) from None
    except docker.errors.DockerException:
        raise CheckFailed("cannot ask Docker for images (the engine does not answer).") from None
    return f"image {image} present"


def _unescape_mount_path(text: str) -> str:
    """A mountinfo path with its octal escapes (``\\040`` for a space) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mount_of(path: str, mountinfo: str) -> tuple[str, set[str]]:
    """The mount point holding ``path`` and its per-mount options, from ``/proc/self/mountinfo`` text."""
    best, options = "/", set()
    target = os.path.realpath(path)
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        point = _unescape_mount_path(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        # the last of equal mount points is the one on top
        if inside and len(point) >= len(best):
            best, options = point, set(fields[5].split(","))
    return best, options


def lab_root_mount_warning(lab_root: str, mountinfo: str) -> str:
    """Empty, or one sentence saying which of :data:`SAFE_MOUNT_OPTIONS` lab_root's mount lacks."""
    point, options = mount_of(lab_root, mountinfo)
    missing = [o for o in SAFE_MOUNT_OPTIONS if o not in options]
    if not missing:
        return ""
    return (
        f"lab_root's filesystem ({point}) is mounted without {','.join(missing)}, so a set-uid "
        "file or device node left in a lab folder works on the host; mount it nosuid,nodev"
    )


def check_lab_root(c: Config) -> str:
    s = _spawner_section(c)
    lab_root = s.get("lab_root", DEFAULT_LAB_ROOT)
    uid, gid = s.get("lab_uid", DEFAULT_LAB_UID), s.get("lab_gid", DEFAULT_LAB_GID)
    if not os.path.isdir(lab_root):
        raise CheckFailed(f"lab_root {lab_root} does not exist; create it (labhub init does).")
    st = os.stat(lab_root)
    mode = stat.S_IMODE(st.st_mode)
    writable = (
        (st.st_uid == uid and mode & 0o200)
        or (st.st_gid == gid and mode & 0o020)
        or (mode & 0o002)
        or os.geteuid() == 0  # a root hub creates and chowns the folders itself
    )
    if not writable:
        raise CheckFailed(
            f"lab_root {lab_root} is not writable by the lab uid {uid} nor by the hub; chown it to {uid}:{gid}."
        )
    free = os.statvfs(lab_root)
    free_gb = free.f_bavail * free.f_frsize / 1e9
    if free_gb < 1:
        raise CheckFailed(f"lab_root {lab_root} has only {free_gb:.2f} GB free.")
    found = f"lab_root {lab_root} writable, {free_gb:.0f} GB free"
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return found  # not Linux: nothing to read the mount options from
    warning = lab_root_mount_warning(lab_root, mountinfo)
    return f"{WARN}: {found}, but {warning}" if warning else found


def check_acme_certificate(c: Config) -> str:
    """Days until the ACME certificate expires, and whether the hub will renew it at its next check."""
    from labhub.certs.keeper import acme_settings
    from labhub.certs.store import StoreError, stored_certificate

    settings = acme_settings(c)
    try:
        info = stored_certificate(settings.files, settings.domain)
    except StoreError as err:
        return f"{WARN}: {err}; the hub orders one from {settings.request.directory} at start"
    days = f"{info.days_left:.0f} days until expiry"
    when = f"{info.not_after:%Y-%m-%d}"
    if info.days_left < settings.renew_days:
        return (
            f"{WARN}: ACME certificate for {settings.domain}: {days} ({when}), due: fewer than "
            f"{settings.renew_days:g} remain, the hub renews it at its next check"
        )
    return f"ACME certificate for {settings.domain}: {days} ({when}), renewed {settings.renew_days:g} days before"


def check_certificate_files(c: Config) -> str:
    if c.LabAcme.get("domain"):
        return check_acme_certificate(c)
    cert, key = c.JupyterHub.get("ssl_cert", ""), c.JupyterHub.get("ssl_key", "")
    if not cert and not key:
        raise CheckFailed(
            "no HTTPS certificate configured (ssl_cert / ssl_key); make one with labhub cert."
        )
    try:
        info = check_certificate(cert, key, min_days=CERT_RENEW_DAYS)
    except CertificateError as err:
        raise CheckFailed(str(err)) from None
    return f"certificate valid for {info.days_left:.0f} more days ({', '.join(info.names) or info.subject})"


def check_ldap(c: Config) -> str:
    a = c.get("LabAuthenticator", Config())
    mode = config_auth_mode(c)
    if mode != LDAP:
        return f"{SKIP}: authentication mode is {mode}"
    servers = list(a.get("server_addresses", [])) or (
        [a["server_address"]] if a.get("server_address") else []
    )
    if not servers:
        raise CheckFailed("LDAP mode but no server_address / server_addresses configured.")
    import ldap3
    from ldap3.core.exceptions import LDAPBindError, LDAPException

    # a TlsStrategy member or its name: str() of the member ends with the name
    tls = str(a.get("tls_strategy", DEFAULT_LDAP_TLS))
    default_port = LDAPS_PORT if tls.endswith("on_connect") else LDAP_PORT
    # the authenticator's own deadlines, so the check judges a server as a login would
    connect_timeout = float(a.get("connect_timeout", DEFAULT_LDAP_CONNECT_TIMEOUT))
    for host in servers:
        name, _, port = host.partition(":")
        port = int(port or a.get("server_port", default_port))
        try:
            with socket.create_connection((name, port), timeout=connect_timeout):
                pass
        except OSError as err:
            raise CheckFailed(
                f"LDAP server {name}:{port} is unreachable ({err.strerror or err})."
            ) from None
    if a.get("lookup_dn_search_user"):
        name, _, port = servers[0].partition(":")
        port = int(port or a.get("server_port", default_port))
        tls_options: dict[str, Any] = {}
        if a.get("tls_ca_file"):
            tls_options["ca_certs_file"] = a["tls_ca_file"]
        server = ldap3.Server(
            name,
            port=port,
            use_ssl=tls.endswith("on_connect"),
            tls=ldap3.Tls(**tls_options),
            connect_timeout=connect_timeout,
        )
        try:
            ldap3.Connection(
                server,
                user=a["lookup_dn_search_user"],
                password=a.get("lookup_dn_search_password"),
                auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND
                if tls.endswith("before_bind")
                else ldap3.AUTO_BIND_NO_TLS,
                # ldap3 packs it into a socket option, which takes whole seconds
                receive_timeout=int(a.get("response_timeout", DEFAULT_LDAP_RESPONSE_TIMEOUT)),
            ).unbind()
        except LDAPBindError:
            raise CheckFailed(
                f"the LDAP search account {a['lookup_dn_search_user']} was refused (wrong DN or password)."
            ) from None
        except LDAPException as err:
            raise CheckFailed(
                f"LDAP server {name}:{port} failed: {str(err).splitlines()[0][:150]}"
            ) from None
        return f"LDAP {', '.join(servers)} reachable, search account binds"
    return f"LDAP {', '.join(servers)} reachable"


def check_oidc(c: Config) -> str:
    """The issuer answers with a usable discovery document and takes this hub's client id and secret."""
    import requests

    from labhub.auth.claims import ClaimsRefused, discovery_url, parse_discovery

    mode = config_auth_mode(c)
    if mode != OIDC:
        return f"{SKIP}: authentication mode is {mode}"
    a = c.get("LabAuthenticator", Config())
    issuer, client_id = a.get("oidc_issuer", ""), a.get("oidc_client_id", "")
    if not issuer or not client_id or not a.get("oidc_client_secret"):
        raise CheckFailed(
            "OIDC mode needs LABHUB_OIDC_ISSUER, LABHUB_OIDC_CLIENT_ID and LABHUB_OIDC_CLIENT_SECRET."
        )
    try:
        answer = requests.get(discovery_url(issuer), timeout=5)
        answer.raise_for_status()
        found = parse_discovery(issuer, answer.json())
        # a code no one was given: the provider checks the client before the code, so
        # "invalid_grant" means the id and secret were accepted and "invalid_client" that they were not
        probe = requests.post(
            found.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": "labhub-check",
                "redirect_uri": a.get("oidc_callback_url", "") or "https://labhub.invalid/",
                "client_id": client_id,
                "client_secret": a["oidc_client_secret"],
            },
            timeout=5,
        )
    except requests.HTTPError as err:
        raise CheckFailed(
            f"{discovery_url(issuer)} answered {err.response.status_code}; is oidc_issuer the issuer URL?"
        ) from None
    except requests.RequestException as err:
        raise CheckFailed(f"the issuer {issuer} does not answer ({type(err).__name__}).") from None
    except (ClaimsRefused, ValueError) as err:
        raise CheckFailed(str(err)) from None
    try:
        error = probe.json().get("error", "")
    except ValueError:
        error = ""
    if error == "invalid_client" or probe.status_code == 401:
        raise CheckFailed(
            f"the issuer {issuer} answers but refuses client {client_id!r} or its secret."
        )
    if error != "invalid_grant":
        return f"{WARN}: issuer {issuer} answers; its token endpoint said {error or probe.status_code} to client {client_id!r}"
    return f"issuer {issuer} answers; client {client_id!r} and its secret accepted"


CHECKS: list[tuple[str, Callable[[Config], str]]] = [
    ("docker", check_docker),
    ("image", check_image),
    ("lab_root", check_lab_root),
    ("https", check_certificate_files),
    ("ldap", check_ldap),
    ("oidc", check_oidc),
]


def run_checks(config_path: str, out: Callable[[str], Any] = print) -> int:
    """Print one line per check; return 0 when none failed."""
    try:
        c = load_config(config_path)
        out(f"{OK:4}  config: {Path(config_path).name} loads")
    except CheckFailed as err:
        out(f"{FAIL:4}  config: {err}")
        return 1
    failed = 0
    for name, check in CHECKS:
        try:
            result = check(c)
            status = next((s for s in (SKIP, WARN) if result.startswith(s + ": ")), OK)
            out(f"{status:4}  {name}: {result.removeprefix(status + ': ')}")
        except CheckFailed as err:
            failed += 1
            out(f"{FAIL:4}  {name}: {err}")
    return 1 if failed else 0

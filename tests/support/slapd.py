"""A private OpenLDAP slapd on loopback: plain + StartTLS and LDAPS listeners, a test CA, test users."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jupyterhub.utils import random_port

SUFFIX = "dc=lab,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret"
SEARCH_DN = f"cn=searcher,{SUFFIX}"
SEARCH_PW = "search-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
DATASCI = f"cn=datasci,{GROUPS}"
ADMINS = f"cn=labadmins,{GROUPS}"
#: a third groupOfNames (alice only) for profile tests; datasci and labadmins are unchanged
GPU_USERS = f"cn=gpuusers,{GROUPS}"

#: uid -> password; dave is the AD-like entry whose DN does not contain his login.
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "djones": "dave-pw"}

AD_SCHEMA = """
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'labADUser' SUP top AUXILIARY MAY ( sAMAccountName ) )
"""


def _person(uid: str, cn: str, dn: str, extra: str = "") -> str:
    return f"""dn: {dn}
objectClass: inetOrgPerson
objectClass: labADUser
uid: {uid}
cn: {cn}
sn: {cn.split()[-1]}
mail: {uid}@lab.test
sAMAccountName: {uid}
userPassword: {PASSWORDS[uid]}
{extra}
"""


def directory_ldif() -> str:
    return "\n".join(
        [
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: lab\ndc: lab\n",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
            f"dn: {SEARCH_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
            f"cn: searcher\nuserPassword: {SEARCH_PW}\n",
            _person("alice", "Alice Smith", f"uid=alice,{PEOPLE}"),
            _person("bob", "Bob Brown", f"uid=bob,{PEOPLE}"),
            _person("carol", "Carol White", f"uid=carol,{PEOPLE}"),
            _person("djones", "Dave Jones", f"cn=Dave Jones,{PEOPLE}"),
            f"dn: {DATASCI}\nobjectClass: groupOfNames\ncn: datasci\n"
            f"member: uid=alice,{PEOPLE}\nmember: uid=carol,{PEOPLE}\nmember: cn=Dave Jones,{PEOPLE}\n",
            f"dn: {ADMINS}\nobjectClass: groupOfNames\ncn: labadmins\nmember: uid=carol,{PEOPLE}\n",
            f"dn: {GPU_USERS}\nobjectClass: groupOfNames\ncn: gpuusers\nmember: uid=alice,{PEOPLE}\n",
        ]
    )


def make_ca(name: str, folder: Path) -> tuple[Path, object, object]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def make_server_cert(folder: Path, ca_cert, ca_key) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return cert_path, key_path


@dataclass
class Slapd:
    folder: Path
    port: int
    ldaps_port: int
    ca_file: Path
    other_ca_file: Path
    pid: int

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def modify(self, ldif: str) -> None:
        """Apply an LDIF change (``changetype: modify``) as the root DN, e.g. to change a group."""
        result = subprocess.run(
            ["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
            input=ldif,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ldapmodify failed: {result.stderr}")

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def slapd_binary() -> str | None:
    return shutil.which("slapd") or (
        "/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd") else None
    )


def start_slapd(folder: Path) -> Slapd:
    """Start slapd in ``folder`` on two free loopback ports and load the test directory."""
    binary = slapd_binary()
    if binary is None:
        raise FileNotFoundError("slapd is not installed (apt-get install slapd ldap-utils)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "db").mkdir(exist_ok=True)
    ca_file, ca_cert, ca_key = make_ca("lab-test-ca", folder)
    other_ca_file, _, _ = make_ca("other-ca", folder)
    cert, key = make_server_cert(folder, ca_cert, ca_key)
    (folder / "ad.schema").write_text(AD_SCHEMA)
    port, ldaps_port = random_port(), random_port()
    conf = folder / "slapd.conf"
    conf.write_text(
        f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {folder / "ad.schema"}
pidfile {folder / "slapd.pid"}
argsfile {folder / "slapd.args"}
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {ca_file}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {folder / "db"}
access to attrs=userPassword by anonymous auth by self read by * none
access to * by * read
"""
    )
    result = subprocess.run(
        [
            binary,
            "-h",
            f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/",
            "-f",
            str(conf),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"slapd failed to start: {result.stderr}")
    pid_file = folder / "slapd.pid"
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    server = Slapd(folder, port, ldaps_port, ca_file, other_ca_file, int(pid_file.read_text()))
    ldif = folder / "data.ldif"
    ldif.write_text(directory_ldif())
    for _ in range(50):
        load = subprocess.run(
            ["ldapadd", "-x", "-H", server.url, "-D", ROOT_DN, "-w", ROOT_PW, "-f", str(ldif)],
            capture_output=True,
            text=True,
        )
        if load.returncode == 0:
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"loading the test directory failed: {load.stderr}")


class SilentServer:
    """A TCP server on loopback that accepts connections and never answers: a hung directory."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def ldap_login_lines(slapd, groups: bool = True) -> str:
    """Hub config lines for LabAuthenticator in LDAP mode against this test directory.

    ``groups`` also reads the directory's groups (they become hub groups at each login).
    """
    lines = f"""
c.JupyterHub.authenticator_class = "labhub.LabAuthenticator"
c.LabAuthenticator.mode = "ldap"
c.LabAuthenticator.server_address = "127.0.0.1"
c.LabAuthenticator.server_port = {slapd.port}
c.LabAuthenticator.tls_ca_file = {str(slapd.ca_file)!r}
c.LabAuthenticator.bind_dn_template = ["uid={{username}},{PEOPLE}"]
"""
    if groups:
        lines += f"c.LabAuthenticator.group_search_base = {GROUPS!r}\n"
    return lines

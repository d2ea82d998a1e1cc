"""What ``labhub init`` writes: a compose deployment in one folder, with labhub's own wheel beside it.

``render_files`` and ``requirements_from_metadata`` are pure; the functions below them read
templates, build or repack the wheel, and write the folder.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import jupyterhub

from labhub.cli.image import DEFAULT_IMAGE
from labhub.hub.options import DEFAULT_LAB_GID, DEFAULT_LAB_UID
from labhub.paths import share_dir

#: The distribution's name on the package index; the import name stays ``labhub``.
DISTRIBUTION = "jupyterhub-labhub"
WHEEL_PREFIX = DISTRIBUTION.replace("-", "_") + "-"

#: Bases of the images for a site with a registry; ``--offline`` uses labhub's offline image.
HUB_BASE_IMAGE = f"quay.io/jupyterhub/jupyterhub:{jupyterhub.__version__}"
LAB_BASE_IMAGE = "quay.io/jupyter/pyspark-notebook:latest"

#: Files copied as they are; ``.env`` and ``Dockerfile.lab`` depend on the settings.
PLAIN_FILES = ("docker-compose.yml", "Dockerfile.hub", "jupyterhub_config.py")


class DeploymentError(RuntimeError):
    """The deployment cannot be written; the message says what to do."""


@dataclass(frozen=True)
class Deployment:
    """The choices behind one deployment folder."""

    lab_root: Path
    lab_image: str = "labhub-lab:latest"
    hub_image: str = "labhub-hub:latest"
    offline: bool = False
    lab_uid: int = DEFAULT_LAB_UID
    lab_gid: int = DEFAULT_LAB_GID
    #: the hub's DNS name when its certificate comes from an ACME CA (``--acme``), and the contact
    acme_domain: str = ""
    acme_email: str = ""

    @property
    def hub_base_image(self) -> str:
        return DEFAULT_IMAGE if self.offline else HUB_BASE_IMAGE

    @property
    def lab_base_image(self) -> str:
        return DEFAULT_IMAGE if self.offline else LAB_BASE_IMAGE

    @property
    def uid_strategy(self) -> str:
        # docker-stacks images switch user in their start.sh; the offline image runs as the lab uid
        return "direct" if self.offline else "docker-stacks"


def acme_env(deployment: Deployment) -> str:
    """The .env lines of the HTTPS certificate: ACME settings, or them commented out."""
    lines = [
        f"LABHUB_ACME_DOMAIN={deployment.acme_domain}",
        f"LABHUB_ACME_EMAIL={deployment.acme_email}",
        "LABHUB_ACME_CHALLENGE_PORT=80",
        "# LABHUB_ACME_DIRECTORY=https://ca.internal.example/acme/acme/directory",
        "# LABHUB_ACME_CA_BUNDLE=/srv/jupyterhub/data/acme-ca.pem",
    ]
    if deployment.acme_domain:
        intro = (
            f"# From an ACME CA (Let's Encrypt unless LABHUB_ACME_DIRECTORY says otherwise) for\n"
            f"# {deployment.acme_domain}: its DNS name must point to this machine and port 80 reach it."
        )
        return intro + "\n" + "\n".join(lines)
    intro = (
        "# A self-signed certificate in ssl/ (labhub cert). To have one from an ACME CA instead,\n"
        "# set the hub's DNS name below (it must point to this machine, port 80 open)."
    )
    return intro + "\n" + "\n".join("# " + line.removeprefix("# ") for line in lines)


def new_secrets() -> dict[str, str]:
    return {
        "dummy_password": secrets.token_urlsafe(12),
        "crypt_key": secrets.token_hex(32),
        "proxy_token": secrets.token_hex(32),
    }


def render_files(
    deployment: Deployment, templates: dict[str, str], secret_values: dict[str, str]
) -> dict[str, str]:
    """File name -> text of every file of the deployment folder (the wheel aside)."""
    files = {name: templates[name] for name in PLAIN_FILES}
    lab = "Dockerfile.lab.offline" if deployment.offline else "Dockerfile.lab"
    files["Dockerfile.lab"] = templates[lab]
    files[".env"] = templates["env.template"].format(
        lab_root=deployment.lab_root,
        lab_uid=deployment.lab_uid,
        lab_gid=deployment.lab_gid,
        image=deployment.lab_image,
        uid_strategy=deployment.uid_strategy,
        hub_image=deployment.hub_image,
        hub_base_image=deployment.hub_base_image,
        lab_base_image=deployment.lab_base_image,
        # a certificate from a public CA names the standard HTTPS port
        port=443 if deployment.acme_domain else 8443,
        acme=acme_env(deployment),
        **secret_values,
    )
    return files


def requirements_from_metadata(metadata_text: str) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel's METADATA that hold without extras."""
    message = Parser().parsestr(metadata_text)
    return [
        req.strip()
        for req in message.get_all("Requires-Dist") or []
        if not re.search(r"\bextra\s*==", req)
    ]


# --- labhub's wheel -----------------------------------------------------------


def labhub_checkout() -> Path | None:
    """The source tree labhub runs from (an editable install or a checkout), or None."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and f'name = "{DISTRIBUTION}"' in pyproject.read_text():
        return root
    return None


def build_wheel(source: Path, dest: Path) -> Path:
    """Build labhub's wheel from the source tree ``source`` into ``dest``; return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
    try:
        import hatchling  # noqa: F401

        cmd.append("--no-build-isolation")  # no index needed when the build backend is here
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="labhub-wheel-") as tmp:
        result = subprocess.run(
            [*cmd, "-w", tmp, str(source)], capture_output=True, text=True, check=False
        )
        wheels = list(Path(tmp).glob(WHEEL_PREFIX + "*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
            raise DeploymentError(
                f"building labhub's wheel from {source} failed; install hatchling or pass"
                f" --wheel FILE:\n{tail}"
            )
        return Path(shutil.move(str(wheels[0]), dest / wheels[0].name))


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def repack_installed_wheel(dest: Path) -> Path:
    """Rebuild the wheel of the installed (not editable) labhub from the files its RECORD lists.

    The result holds exactly the installed files: if someone edited them in place, the
    deployment gets the edits too.
    """
    dist = metadata.distribution(DISTRIBUTION)
    version = dist.version
    data_dir = f"{WHEEL_PREFIX}{version}.data/data/"
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    prefix = Path(sys.prefix).resolve()
    entries: dict[str, bytes] = {}
    for file in dist.files or []:
        path = Path(dist.locate_file(file)).resolve()
        if path.suffix == ".pyc" or file.name in skip or not path.is_file():
            continue
        if str(file).startswith(".."):
            # data installed under the prefix: share/labhub only (scripts come from entry points)
            relative = path.relative_to(prefix).as_posix()
            if not relative.startswith("share/labhub/"):
                continue
            entries[data_dir + relative] = path.read_bytes()
        else:
            entries[file.as_posix()] = path.read_bytes()
    if not any(name.endswith(".dist-info/WHEEL") for name in entries):
        raise DeploymentError(
            "labhub's installed files are incomplete; pass the wheel you installed with --wheel."
        )
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{WHEEL_PREFIX}{version}-py3-none-any.whl"
    record_name = f"{WHEEL_PREFIX}{version}.dist-info/RECORD"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        record = []
        for name, data in sorted(entries.items()):
            zf.writestr(name, data)
            record.append(f"{name},{_record_hash(data)},{len(data)}")
        record.append(f"{record_name},,")
        zf.writestr(record_name, "\n".join(record) + "\n")
    return wheel


def place_wheel(target: Path, wheel: Path | None = None) -> Path:
    """Put labhub's wheel and its requirements in ``target/wheels``, replacing older ones.

    The wheel is ``wheel`` if given, else built from the checkout labhub runs from, else
    repacked from the installed files.
    """
    wheels = target / "wheels"
    wheels.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labhub-wheel-", dir=target) as tmp:
        if wheel is not None:
            if not (wheel.is_file() and wheel.name.startswith(WHEEL_PREFIX)):
                raise DeploymentError(f"{wheel} is not a wheel of {DISTRIBUTION}.")
            new = Path(shutil.copy(wheel, tmp))
        elif (source := labhub_checkout()) is not None:
            new = build_wheel(source, Path(tmp))
        else:
            new = repack_installed_wheel(Path(tmp))
        with zipfile.ZipFile(new) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            requirements = requirements_from_metadata(zf.read(meta).decode())
        for old in wheels.glob(WHEEL_PREFIX + "*.whl"):
            old.unlink()
        placed = Path(shutil.move(str(new), wheels / new.name))
    (wheels / "requirements.txt").write_text(
        f"# labhub's dependencies, from {placed.name}\n" + "\n".join(requirements) + "\n"
    )
    return placed


# --- the folder -----------------------------------------------------------------


def load_templates() -> dict[str, str]:
    folder = share_dir() / "templates"
    return {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def write_deployment(
    target: Path, deployment: Deployment, hosts: list[str], wheel: Path | None = None
) -> Path:
    """Write the whole deployment folder; return the wheel placed in it."""
    from labhub.cli.certs import make_self_signed
    from labhub.lab.folders import ensure_lab_folders

    target.mkdir(parents=True, exist_ok=True)
    placed = place_wheel(target, wheel)
    for name, text in render_files(deployment, load_templates(), new_secrets()).items():
        if name == ".env":
            _write_secret(target / name, text)
        else:
            (target / name).write_text(text)
    lab_root = deployment.lab_root
    ensure_lab_folders(
        str(lab_root / "personal_notebooks"),
        str(lab_root / "shared_notebooks"),
        deployment.lab_uid,
        deployment.lab_gid,
    )
    (target / "data").mkdir(mode=0o700, exist_ok=True)
    make_self_signed(target / "ssl" / "labhub.crt", target / "ssl" / "labhub.key", hosts)
    return placed


def is_deployment(target: Path) -> bool:
    return (target / "docker-compose.yml").is_file() and (target / ".env").is_file()

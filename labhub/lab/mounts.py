"""Pure functions that turn lab settings and a user into Docker Engine API mounts.

Every mount of a lab (personal notebooks, shared notebooks, read-only volumes,
Windows shares) is built here as a plain ``Mount`` dict of the Engine API. The
same dicts go into a container's ``HostConfig.Mounts`` (LabDockerSpawner) and a
service's ``ContainerSpec.Mounts`` (LabSwarmSpawner), so named volumes and
their driver options reach Docker and Swarm alike. Nothing here talks to a
daemon or touches the disk.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from labhub.lab import names
from labhub.lab.names import user_folder_name

#: Label put on every volume labhub creates, so they can be found and cleaned up.
LABEL_MANAGED = "org.labhub.managed"
LABEL_USER = "org.labhub.user"

_FIELD = re.compile(r"\{([a-z_]+)\}")


class MountConfigError(ValueError):
    """A mount setting is wrong; the message names the setting and the fix."""


def fill_template(value: Any, fields: dict[str, str]) -> Any:
    """Fill ``{username}``-style fields in every string of ``value``, at any depth.

    Only the names in ``fields`` are replaced; any other ``{name}`` is an error,
    so a typo in a config never reaches Docker. Braces that are not a field
    (``{``, ``}``, ``{{x}}``) are left alone.
    """
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in fields:
                known = ", ".join("{" + k + "}" for k in sorted(fields))
                raise MountConfigError(
                    f"Unknown field {{{name}}} in {value!r}; use one of {known}."
                )
            return fields[name]

        return _FIELD.sub(replace, value)
    if isinstance(value, dict):
        return {fill_template(k, fields): fill_template(v, fields) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(fill_template(v, fields) for v in value)
    return value


def template_fields(username: str) -> dict[str, str]:
    """The fields an admin may use in paths, devices and options.

    ``{username}`` is the safe folder name (what paths should use);
    ``{raw_username}`` is the hub username as typed, for CIFS user names and
    devices where the directory's own spelling matters.
    """
    return {"username": user_folder_name(username), "raw_username": username}


def _check_target(target: str, setting: str) -> str:
    if (
        not target.startswith("/")
        or posixpath.normpath(target) != target.rstrip("/")
        or target == "/"
    ):
        raise MountConfigError(
            f"{setting} must be an absolute, normalised path inside the container, not {target!r}."
        )
    return target


def bind_mount(source: str, target: str, *, read_only: bool = False) -> dict[str, Any]:
    """A host folder mounted into the container."""
    if not source.startswith("/"):
        raise MountConfigError(f"Host folder {source!r} must be an absolute path.")
    return {
        "Type": "bind",
        "Source": source,
        "Target": _check_target(target, "A mount path"),
        "ReadOnly": read_only,
    }


def volume_mount(
    name: str,
    target: str,
    *,
    read_only: bool = False,
    driver: str = "local",
    driver_options: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A named Docker volume, created by the engine on first use with these driver options."""
    mount: dict[str, Any] = {
        "Type": "volume",
        "Source": name,
        "Target": _check_target(target, "A mount path"),
        "ReadOnly": read_only,
    }
    volume_options: dict[str, Any] = {"Labels": {LABEL_MANAGED: "true", **(labels or {})}}
    if driver_options or driver != "local":
        volume_options["DriverConfig"] = {"Name": driver, "Options": dict(driver_options or {})}
    mount["VolumeOptions"] = volume_options
    return mount


# --- Windows shares (CIFS) -------------------------------------------------

_CIFS_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_CIFS_DEVICE = re.compile(r"//[^/\s]+/[^\s]+")
# Options labhub sets itself; an admin setting them in "options" would be overridden silently.
_CIFS_RESERVED = {"username", "user", "password", "pass", "domain", "uid", "gid", "credentials"}


@dataclass(frozen=True)
class CifsShare:
    """One Windows share from ``cifs_shares``; see the trait's help for the keys."""

    name: str
    device: str
    mount_path: str
    credentials: str = "file"
    credentials_file: str = ""
    read_only: bool = False
    file_mode: str = "0600"
    dir_mode: str = "0700"
    options: dict[str, str] = field(default_factory=dict)


def parse_cifs_share(raw: dict[str, Any]) -> CifsShare:
    """Validate one ``cifs_shares`` entry; raise MountConfigError with one clear sentence."""
    if not isinstance(raw, dict):
        raise MountConfigError(f"Each cifs_shares entry must be a dict, not {raw!r}.")
    known = set(CifsShare.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise MountConfigError(
            f"cifs_shares entry {raw.get('name', '?')!r} has unknown keys {unknown}; "
            f"allowed keys are {sorted(known)}."
        )
    for key in ("name", "device", "mount_path"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise MountConfigError(f"cifs_shares entry {raw.get('name', '?')!r} needs a '{key}'.")
    share = CifsShare(**raw)
    if not _CIFS_NAME.fullmatch(share.name):
        raise MountConfigError(
            f"cifs_shares name {share.name!r} must be 1-32 lowercase letters, digits, '-' or '_'."
        )
    if not _CIFS_DEVICE.fullmatch(
        share.device.replace("{username}", "x").replace("{raw_username}", "x")
    ):
        raise MountConfigError(
            f"cifs_shares device {share.device!r} must look like //server/share[/path]."
        )
    _check_target(share.mount_path, f"cifs_shares mount_path of {share.name!r}")
    if share.credentials not in ("file", "auth_state", "guest"):
        raise MountConfigError(
            f"cifs_shares credentials of {share.name!r} must be 'file', 'auth_state' or 'guest', "
            f"not {share.credentials!r}."
        )
    if share.credentials == "file" and not share.credentials_file:
        raise MountConfigError(
            f"cifs_shares entry {share.name!r} uses credentials 'file' but sets no credentials_file."
        )
    for mode_key in ("file_mode", "dir_mode"):
        if not re.fullmatch(r"0?[0-7]{3,4}", getattr(share, mode_key)):
            raise MountConfigError(
                f"cifs_shares {mode_key} of {share.name!r} must be octal like 0600."
            )
    reserved = sorted(_CIFS_RESERVED & set(share.options))
    if reserved:
        raise MountConfigError(
            f"cifs_shares options of {share.name!r} may not set {reserved}; labhub sets them "
            "from the lab uid/gid and the credentials source."
        )
    return share


@dataclass(frozen=True)
class CifsCredentials:
    """A user name, password and optional domain for one share; never logged."""

    username: str
    password: str
    domain: str = ""

    def __repr__(self) -> str:  # keeps the password out of tracebacks and debug logs
        return f"CifsCredentials(username={self.username!r}, domain={self.domain!r}, password=***)"


def parse_credentials_file(text: str) -> CifsCredentials:
    """Read a mount.cifs style credentials file (``username=``, ``password=``, ``domain=``)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip().lower()] = value.rstrip("\r\n")
    if "username" not in values or "password" not in values:
        raise MountConfigError("A CIFS credentials file needs 'username=' and 'password=' lines.")
    return CifsCredentials(values["username"], values["password"], values.get("domain", ""))


#: Words Docker's ``local`` volume driver takes out of ``o`` as mount(2) flags before the
#: kernel sees the rest (moby's ``mount.parseOptions`` splits ``o`` at every comma), and
#: ``addr=``, which it rewrites. After a comma inside a password they would change the mount.
ENGINE_MOUNT_WORDS = frozenset(
    {
        "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async",
        "dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime",
        "bind", "rbind", "unbindable", "runbindable", "private", "rprivate", "shared",
        "rshared", "slave", "rslave", "relatime", "norelatime", "strictatime",
        "nostrictatime",
    }
)  # fmt: skip


def _cifs_option_value(value: str, what: str) -> str:
    """A user name, domain or option value: the kernel has no escape for a comma in these."""
    if any(ch in value for ch in "\0\n\r"):
        raise MountConfigError(f"The CIFS {what} contains a control character and cannot be used.")
    if "," in value:
        raise MountConfigError(
            f"The CIFS {what} contains a comma, which a mount option cannot carry; change it."
        )
    return value


def _cifs_password(value: str, share: str) -> str:
    """The password as the kernel's ``password=`` reads it: each comma doubled.

    The kernel's CIFS option parser reads ``,,`` inside ``password=`` as one literal
    comma, but Docker's local driver splits ``o`` at every comma first and keeps a piece
    that is a mount flag (``ro``, ``bind``...) or ``addr=`` for itself; such a password
    cannot be passed through a volume and is refused.
    """
    if any(ch in value for ch in "\0\n\r"):
        raise MountConfigError(
            f"Your password for Windows share {share!r} contains a control character, which "
            "a mount option cannot carry; change the password or ask the lab admin."
        )
    pieces = value.split(",")[1:]
    if any(p in ENGINE_MOUNT_WORDS or p.startswith("addr=") for p in pieces):
        raise MountConfigError(
            f"Your password for Windows share {share!r} has a comma followed by a word Docker "
            "reads as a mount option (such as ',ro' or ',bind'), so it cannot be passed safely; "
            "change the password or ask the lab admin for a credentials-file share."
        )
    return value.replace(",", ",,")


def cifs_driver_options(
    share: CifsShare,
    *,
    device: str,
    uid: int,
    gid: int,
    credentials: CifsCredentials | None,
) -> dict[str, str]:
    """The ``local`` driver options that mount ``share`` as the lab uid/gid."""
    opts: dict[str, str] = {}
    if credentials is None:
        opts["guest"] = ""
    else:
        opts["username"] = _cifs_option_value(credentials.username, "user name")
        opts["password"] = _cifs_password(credentials.password, share.name)
        if credentials.domain:
            opts["domain"] = _cifs_option_value(credentials.domain, "domain")
    opts.update(
        uid=str(uid),
        gid=str(gid),
        file_mode=share.file_mode,
        dir_mode=share.dir_mode,
    )
    for key, value in share.options.items():
        opts[key] = _cifs_option_value(str(value), f"option {key}")
    if share.read_only:
        opts["ro"] = ""
    o = ",".join(k if v == "" else f"{k}={v}" for k, v in opts.items())
    return {"type": "cifs", "device": device, "o": o}


def cifs_volume_name(prefix: str, share: CifsShare, username: str) -> str:
    """The per-user Docker volume name of ``share``: :func:`labhub.lab.names.cifs_volume_name`."""
    return names.cifs_volume_name(prefix, share.name, username)


def cifs_mount(
    share: CifsShare,
    *,
    prefix: str,
    username: str,
    uid: int,
    gid: int,
    credentials: CifsCredentials | None,
) -> dict[str, Any]:
    """The mount of ``share`` for ``username``: a per-user ``local`` volume of type cifs."""
    fields = template_fields(username)
    device = fill_template(share.device, fields)
    options = cifs_driver_options(
        share,
        device=device,
        uid=uid,
        gid=gid,
        credentials=credentials,
    )
    return volume_mount(
        cifs_volume_name(prefix, share, username),
        fill_template(share.mount_path, fields),
        read_only=share.read_only,
        driver_options=options,
        labels={LABEL_USER: user_folder_name(username), "org.labhub.cifs-share": share.name},
    )


# --- the whole lab ---------------------------------------------------------


@dataclass(frozen=True)
class LabVolumes:
    """Where a lab keeps notebooks on the host and shows them in the container."""

    personal_root: str
    shared_root: str
    personal_mount_path: str = "/home/jovyan/work"
    shared_mount_path: str = "/home/jovyan/shared"
    read_only_volumes: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)
    volume_driver_options: dict[str, dict[str, str]] = field(default_factory=dict)


def personal_folder(personal_root: str, username: str) -> str:
    """The host path of ``username``'s personal folder; always a direct child of ``personal_root``."""
    folder = posixpath.join(personal_root, user_folder_name(username))
    # user_folder_name never returns a separator or dot-name; this guards the invariant.
    assert posixpath.dirname(folder) == personal_root.rstrip("/") or personal_root == "/"
    return folder


def _source_mount(source: str, target: str, read_only: bool, driver_options: dict | None) -> dict:
    """A host path becomes a bind mount, anything else a named volume."""
    if source.startswith("/"):
        return bind_mount(source, target, read_only=read_only)
    return volume_mount(source, target, read_only=read_only, driver_options=driver_options)


def lab_mounts(
    layout: LabVolumes,
    username: str,
    *,
    cifs: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Every mount of ``username``'s lab container, in the order Docker should apply them.

    ``layout.volumes`` and ``layout.read_only_volumes`` map a host path or a
    volume name (templated with ``{username}``) to a container path; a volume
    named in ``layout.volume_driver_options`` is created with those options
    (NFS, CIFS, ...), on Docker and on Swarm alike.
    """
    fields = template_fields(username)
    mounts = [
        bind_mount(personal_folder(layout.personal_root, username), layout.personal_mount_path),
        bind_mount(layout.shared_root, layout.shared_mount_path),
    ]
    for table, read_only in ((layout.volumes, False), (layout.read_only_volumes, True)):
        for source, target in table.items():
            options = layout.volume_driver_options.get(source)
            mounts.append(
                _source_mount(
                    fill_template(source, fields),
                    fill_template(target, fields),
                    read_only,
                    fill_template(options, fields) if options else None,
                )
            )
    mounts.extend(cifs or [])
    targets = [m["Target"] for m in mounts]
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        raise MountConfigError(
            f"Two lab mounts share the container path {duplicates[0]}; give each its own."
        )
    # Parents before children, so a volume at /home/jovyan/x is not hidden by one at /home/jovyan.
    return sorted(mounts, key=lambda m: m["Target"].count("/"))


def redacted(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of ``mounts`` fit for logs: CIFS passwords replaced by ``***``."""
    out = []
    for mount in mounts:
        copy = dict(mount)
        driver = (mount.get("VolumeOptions") or {}).get("DriverConfig")
        if driver and "o" in (driver.get("Options") or {}):
            o = re.sub(r"(password=)(?:[^,]|,,)*", r"\1***", driver["Options"]["o"])
            copy["VolumeOptions"] = {
                **mount["VolumeOptions"],
                "DriverConfig": {**driver, "Options": {**driver["Options"], "o": o}},
            }
        out.append(copy)
    return out

"""The ``labhub`` command: run a lab on defaults, write a deployment, make certificates, check a config."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from labhub.cli.certs import CERT_DAYS, CertificateError, make_self_signed
from labhub.cli.deployment import (
    Deployment,
    DeploymentError,
    is_deployment,
    place_wheel,
    write_deployment,
)
from labhub.cli.docker_setup import EngineError, ensure_engine
from labhub.cli.image import (
    DEFAULT_IMAGE,
    MINIMAL_IMAGE,
    ImageBuildError,
    build_offline_image,
    image_exists,
)
from labhub.hub.options import (
    DEFAULT_DATA_DIR,
    DEFAULT_IP,
    DEFAULT_LAB_GID,
    DEFAULT_LAB_UID,
    DUMMY,
    HTTPS_PORT,
)


class CommandError(Exception):
    """Ends a command with one sentence on stderr and exit code 1."""


def _say(message: str) -> None:
    print(f"labhub: {message}", flush=True)


# --- what a fresh machine lacks ---------------------------------------------


def _apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise CommandError(
            f"{', '.join(packages)} missing; install them (apt-get install -y {' '.join(packages)})."
        )
    _say(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            raise CommandError(f"'{' '.join(cmd)}' failed; install {' '.join(packages)} by hand.")


def ensure_proxy() -> None:
    if shutil.which("configurable-http-proxy"):
        return
    if shutil.which("npm") is None:
        raise CommandError(
            "configurable-http-proxy is missing and npm is not installed; install Node.js and npm."
        )
    _say("installing configurable-http-proxy with npm")
    if (
        subprocess.run(["npm", "install", "-g", "--silent", "configurable-http-proxy"]).returncode
        != 0
    ):
        raise CommandError(
            "npm could not install configurable-http-proxy; run 'npm install -g configurable-http-proxy'."
        )


def ensure_system_packages(image: str) -> None:
    missing = []
    if (
        shutil.which("dockerd") is None
        and shutil.which("docker") is None
        or shutil.which("dockerd") is None
        and not _engine_socket_answers()
    ):
        missing.append("docker.io")
    if image == DEFAULT_IMAGE and shutil.which("debootstrap") is None:
        missing.append("debootstrap")
    if missing:
        _apt_install(missing)


def _engine_socket_answers() -> bool:
    from labhub.cli.docker_setup import engine_answers

    return engine_answers()


# --- labhub run ---------------------------------------------------------------


RUN_CONFIG = """\
# Written by `labhub run`; regenerated at every run.
import labhub
from pathlib import Path

c = get_config()  # noqa: F821

labhub.configure(
    c,
    lab_root={lab_root!r},
    data_dir={data_dir!r},
    image={image!r},
    ip={ip!r},
    port={port},
    ssl_cert={ssl_cert!r},
    ssl_key={ssl_key!r},
    auth_mode={auth_mode!r},
    dummy_password=Path({password_file!r}).read_text().strip(),
)
"""


def run_config(
    data: Path, image: str, ip: str, port: int, ssl_cert: str, ssl_key: str, password_file: str
) -> str:
    """The jupyterhub_config.py of ``labhub run``: dummy mode, whatever DEV_MODE or LABHUB_AUTH_MODE say."""
    return RUN_CONFIG.format(
        lab_root=str(data / "lab"),
        data_dir=str(data / "hub"),
        image=image,
        ip=ip,
        port=port,
        ssl_cert=ssl_cert,
        ssl_key=ssl_key,
        auth_mode=DUMMY,
        password_file=password_file,
    )


def _wait_until_served(url: str, cafile: Path, proc: subprocess.Popen, timeout: float) -> bool:
    """True once the hub answers ``url`` over TLS verified against ``cafile``."""
    context = ssl.create_default_context(cafile=str(cafile))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, context=context, timeout=2) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    return False


def cmd_run(args: argparse.Namespace) -> int:
    data = Path(args.data).resolve()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    image = args.image or DEFAULT_IMAGE
    ensure_system_packages(image)
    ensure_proxy()
    try:
        engine = ensure_engine(log_path=str(data / "dockerd.log"))
    except EngineError as err:
        raise CommandError(str(err)) from None
    hub = None
    try:
        if not image_exists(image):
            if image != DEFAULT_IMAGE:
                raise CommandError(
                    f"The image {image} is not on this machine; build or pull it first."
                )
            _say("building the offline single-user image (about two minutes, once)")
            try:
                build_offline_image(image, workdir="/var/tmp")
            except ImageBuildError as err:
                raise CommandError(str(err)) from None
        ssl_dir = data / "ssl"
        cert, key = ssl_dir / "labhub.crt", ssl_dir / "labhub.key"
        if not cert.exists() or not key.exists():
            make_self_signed(cert, key, ["localhost", args.ip, socket.gethostname()])
            _say(f"made a self-signed certificate {cert}")
        password_file = data / "dummy_password"
        if os.environ.get("LABHUB_DUMMY_PASSWORD"):
            _write_secret(password_file, os.environ["LABHUB_DUMMY_PASSWORD"])
        elif not password_file.exists():
            _write_secret(password_file, secrets.token_urlsafe(12))
        config = data / "jupyterhub_config.py"
        config.write_text(
            run_config(data, image, args.ip, args.port, str(cert), str(key), str(password_file))
        )
        from labhub.cli.checks import CheckFailed, load_config

        # load it as the hub will: a bad LABHUB_* variable stops here in one sentence, not in hub.log
        try:
            load_config(str(config))
        except CheckFailed as err:
            raise CommandError(str(err)) from None
        with open(data / "hub.log", "ab") as log:
            hub = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=data,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        stop = _forward_signals(hub)
        if not _wait_until_served(f"https://{args.ip}:{args.port}/hub/api", cert, hub, 90):
            tail = (data / "hub.log").read_text(errors="replace").splitlines()[-5:]
            raise CommandError("the hub did not start:\n  " + "\n  ".join(tail))
        password = password_file.read_text().strip()
        print(
            f"\n  labhub is running at https://{args.ip}:{args.port}/\n"
            f"  log in with any username and the password: {password}\n"
            f"  (the certificate is self-signed: {cert}; hub log: {data / 'hub.log'})\n"
            "  stop with Ctrl-C\n",
            flush=True,
        )
        while hub.poll() is None and not stop["requested"]:
            time.sleep(0.5)
        return 0 if stop["requested"] else (hub.returncode or 1)
    finally:
        if hub is not None and hub.poll() is None:
            hub.terminate()
            try:
                hub.wait(30)
            except subprocess.TimeoutExpired:
                hub.kill()
        engine.stop()


def _forward_signals(hub: subprocess.Popen) -> dict:
    state = {"requested": False}

    def handler(signum, frame):
        state["requested"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return state


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)


# --- labhub cert / init / build-image -----------------------------------------


def cmd_cert(args: argparse.Namespace) -> int:
    out = Path(args.out)
    hosts = args.host or ["localhost", "127.0.0.1", socket.gethostname()]
    try:
        make_self_signed(out / "labhub.crt", out / "labhub.key", hosts, days=args.days)
    except CertificateError as err:
        raise CommandError(str(err)) from None
    _say(f"wrote {out / 'labhub.crt'} and {out / 'labhub.key'} (mode 0600) for {', '.join(hosts)}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir).resolve()
    wheel = Path(args.wheel).resolve() if args.wheel else None
    compose = "docker-compose" if shutil.which("docker-compose") else "docker compose"
    try:
        if args.upgrade:
            if not is_deployment(target):
                raise CommandError(
                    f"{target} holds no deployment; run 'labhub init {target}' first."
                )
            placed = place_wheel(target, wheel)
            _say(f"put {placed.name} in {target / 'wheels'}; .env, data and certificates kept")
            _say(f"next: cd {target} && {compose} build && {compose} up -d")
            return 0
        if target.exists() and any(target.iterdir()) and not args.force:
            raise CommandError(f"{target} is not empty; choose an empty folder or pass --force.")
        deployment = Deployment(
            lab_root=Path(args.lab_root).resolve() if args.lab_root else target / "lab",
            lab_image=args.image,
            hub_image=args.hub_image,
            offline=args.offline,
            lab_uid=args.lab_uid,
            lab_gid=args.lab_gid,
            acme_domain=args.acme or "",
            acme_email=args.acme_email or "",
        )
        hosts = args.host or ["localhost", "127.0.0.1", socket.gethostname()]
        placed = write_deployment(target, deployment, hosts, wheel)
    except (DeploymentError, CertificateError) as err:
        raise CommandError(str(err)) from None
    _say(f"wrote a lab deployment with {placed.name} to {target}")
    first = ""
    if args.offline and not (shutil.which("docker") and image_exists(deployment.hub_base_image)):
        first = f"labhub build-image --tag {deployment.hub_base_image} && "
    _say(f"next: {first}cd {target} && {compose} build && {compose} up -d")
    return 0


def cmd_build_image(args: argparse.Namespace) -> int:
    try:
        engine = ensure_engine()
    except EngineError as err:
        raise CommandError(str(err)) from None
    try:
        tag = build_offline_image(
            args.tag or (MINIMAL_IMAGE if args.minimal else DEFAULT_IMAGE),
            minimal=args.minimal or None,
            workdir="/var/tmp",
            force=args.force,
        )
    except ImageBuildError as err:
        raise CommandError(str(err)) from None
    finally:
        engine.stop()
    _say(f"image {tag} is ready")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from labhub.cli.checks import run_checks

    return run_checks(args.config)


def cmd_report(args: argparse.Namespace) -> int:
    from labhub.usage.report import ReportError, run_report

    try:
        print(run_report(args.data_dir, args.since, args.by, args.format, args.plot or ""))
    except ReportError as err:
        raise CommandError(str(err)) from None
    if args.plot:
        _say(f"plot written to {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labhub", description="A JupyterHub data-science lab for a team."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a lab on its defaults (dummy login, HTTPS, loopback)")
    run.add_argument(
        "--data", default="labhub-data", help="folder for notebooks, hub state and certificates"
    )
    run.add_argument(
        "--ip", default=DEFAULT_IP, help="address to serve on (default: loopback only)"
    )
    run.add_argument(
        "--port", type=int, default=HTTPS_PORT, help=f"HTTPS port (default {HTTPS_PORT})"
    )
    run.add_argument(
        "--image",
        default="",
        help=f"single-user image (default: {DEFAULT_IMAGE}, built if missing)",
    )
    run.set_defaults(func=cmd_run)

    init = sub.add_parser(
        "init",
        help="write a ready deployment (compose file, Dockerfiles, config, .env, certificate)",
    )
    init.add_argument("dir", help="an empty folder for the deployment")
    init.add_argument(
        "--lab-root", default="", help="host folder of the notebooks (default DIR/lab)"
    )
    init.add_argument(
        "--image", default="labhub-lab:latest", help="tag of the lab image the compose file builds"
    )
    init.add_argument("--lab-uid", type=int, default=DEFAULT_LAB_UID)
    init.add_argument("--lab-gid", type=int, default=DEFAULT_LAB_GID)
    init.add_argument("--host", action="append", help="hostname or IP for the certificate (repeat)")
    init.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    init.add_argument(
        "--offline",
        action="store_true",
        help="build the hub and lab images FROM labhub's offline image (no image registry needed)",
    )
    init.add_argument(
        "--hub-image",
        default="labhub-hub:latest",
        help="tag of the hub image the compose file builds",
    )
    init.add_argument(
        "--wheel",
        default="",
        help="labhub wheel to install in the hub image (default: this labhub, built or repacked)",
    )
    init.add_argument(
        "--upgrade",
        action="store_true",
        help="only replace the labhub wheel of an existing deployment in DIR; keep everything else",
    )
    # --- certificates from an ACME CA (labhub.certs) ---
    init.add_argument(
        "--acme",
        metavar="DOMAIN",
        default="",
        help="the hub's DNS name: obtain and renew its certificate from an ACME CA (HTTP-01, port 80)",
    )
    init.add_argument(
        "--acme-email", metavar="ADDR", default="", help="contact address for the ACME account"
    )
    init.set_defaults(func=cmd_init)

    cert = sub.add_parser("cert", help="make a self-signed certificate and key")
    cert.add_argument("--out", default=".", help="folder for labhub.crt and labhub.key")
    cert.add_argument(
        "--host",
        action="append",
        help="hostname or IP (repeat); default: localhost, 127.0.0.1, this host",
    )
    cert.add_argument("--days", type=int, default=CERT_DAYS, help="validity in days")
    cert.set_defaults(func=cmd_cert)

    check = sub.add_parser("check", help="check a jupyterhub_config.py before starting the hub")
    check.add_argument("config", nargs="?", default="jupyterhub_config.py")
    check.set_defaults(func=cmd_check)

    build = sub.add_parser(
        "build-image", help="build the offline single-user image (no registry needed)"
    )
    build.add_argument(
        "--tag", help=f"image tag (default: {DEFAULT_IMAGE}, or {MINIMAL_IMAGE} with --minimal)"
    )
    build.add_argument(
        "--minimal",
        action="store_true",
        help="Jupyter and a kernel only, without the scientific stack",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.set_defaults(func=cmd_build_image)

    # usage records (labhub.usage): read from the file, no running hub needed
    report = sub.add_parser("report", help="who used what: lab, CPU and GPU hours from the records")
    report.add_argument(
        "--since", default="30d", help="a span (30d, 12h, 2w) or a date (2026-11-01); default 30d"
    )
    report.add_argument("--by", default="user", choices=("user", "group", "profile", "image"))
    report.add_argument("--format", default="table", choices=("table", "csv", "json"))
    report.add_argument("--plot", metavar="PNG", help="also draw lab hours per group per day")
    report.add_argument(
        "--data-dir",
        default=os.environ.get("LABHUB_DATA_DIR", DEFAULT_DATA_DIR),
        help="the hub's data_dir, where labhub-usage.sqlite is (default: LABHUB_DATA_DIR, "
        f"else {DEFAULT_DATA_DIR})",
    )
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CommandError as err:
        print(f"labhub: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

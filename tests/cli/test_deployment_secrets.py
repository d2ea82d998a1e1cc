"""labhub.cli.deployment: what ``labhub init`` writes keeps its secrets to the owner."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.security


def test_labhub_init_writes_private_files(tmp_path):
    """``labhub init`` writes its .env and key files readable by the owner only, and echoes no key."""
    deploy = tmp_path / "deploy"
    result = subprocess.run(
        ["labhub", "init", str(deploy)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    env = dict(
        line.split("=", 1)
        for line in (deploy / ".env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    private = [deploy / ".env", *deploy.rglob("*.key")]
    assert len(private) >= 2, sorted(str(p) for p in deploy.rglob("*"))
    for path in private:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    for name in ("JUPYTERHUB_CRYPT_KEY", "CONFIGPROXY_AUTH_TOKEN"):
        assert len(env[name]) >= 32, name
        assert env[name] not in result.stdout + result.stderr, f"{name} echoed by labhub init"
    # nothing else in the deployment holds those secrets
    for path in deploy.rglob("*"):
        if path.is_file() and path not in private:
            text = path.read_text(errors="replace")
            assert env["JUPYTERHUB_CRYPT_KEY"] not in text, path
            assert env["CONFIGPROXY_AUTH_TOKEN"] not in text, path

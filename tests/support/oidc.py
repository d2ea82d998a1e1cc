"""A real OpenID provider on loopback: the npm package oidc-provider, run by a short Node script.

It is installed once with npm into ``~/.cache/labhub-tests/oidc-provider`` (reused
when present), listens on 127.0.0.1 only, and can be stopped and started again on
the same port. It keeps its state in memory: a restart means new signing keys and
new sessions, as a real provider's restart can.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from urllib.parse import urljoin, urlparse

import requests
from jupyterhub.utils import random_port

from .processes import stop_process
from .waiting import wait_until

PACKAGE = "oidc-provider@9"
INSTALL_DIR = Path(os.environ.get("LABHUB_TEST_CACHE", Path.home() / ".cache/labhub-tests"))
INSTALL_DIR = INSTALL_DIR / "oidc-provider"
CLIENT_ID = "labhub-test"

#: Test accounts: the login typed at the provider's form is the account id, which is also ``sub``.
ACCOUNTS = {
    "alice": {
        "preferred_username": "alice",
        "email": "Alice@lab.test",
        "email_verified": True,
        "groups": ["lab-users"],
    },
    "root-admin": {
        "preferred_username": "Boss@LAB.TEST",
        "email": "boss@lab.test",
        "groups": ["lab-admins"],
    },
    "gpu-carol": {"preferred_username": "carol", "groups": ["lab-users", "gpu-users"]},
    "outsider": {"preferred_username": "eve", "groups": ["visitors"]},
    # another account whose editable username claims to be alice
    "mallory": {"preferred_username": "alice", "groups": ["lab-users"]},
    "unverified": {
        "preferred_username": "dave",
        "email": "dave@lab.test",
        "email_verified": False,
        "groups": ["lab-users"],
    },
    "nameless": {"email": "nameless@lab.test", "groups": ["lab-users"]},
    "groupless": {"preferred_username": "frank"},
}

SCRIPT = r"""
import fs from 'node:fs';
import Provider from 'oidc-provider';

const [config, accountsFile] = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f)));
const provider = new Provider(config.issuer, {
  clients: config.clients,
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  cookies: { keys: ['labhub-tests-only'] },
  // the accounts file is read at each login, so a test can change a claim
  async findAccount(ctx, id) {
    const accounts = JSON.parse(fs.readFileSync(process.argv[3]));
    if (!accounts[id]) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...accounts[id] }; } };
  },
});
provider.listen(config.port, '127.0.0.1', () => console.log('listening', config.issuer));
"""


def node() -> str | None:
    return shutil.which("node")


def ensure_installed() -> Path:
    """The folder with oidc-provider installed; npm runs only the first time."""
    if not (INSTALL_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        INSTALL_DIR.mkdir(parents=True, exist_ok=True)
        (INSTALL_DIR / "package.json").write_text(
            json.dumps({"name": "labhub-test-oidc", "private": True, "type": "module"})
        )
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", PACKAGE],
            cwd=INSTALL_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return INSTALL_DIR


class OidcProvider:
    """One provider with one confidential client whose callback is ``redirect_uri``."""

    def __init__(self, workdir: Path, redirect_uri: str = "", accounts: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = random_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = CLIENT_ID
        self.client_secret = os.urandom(16).hex()
        self.redirect_uri = redirect_uri
        self.accounts_path = self.workdir / "accounts.json"
        self.set_accounts(accounts or ACCOUNTS)
        self.log_path = self.workdir / "provider.log"
        self.proc: subprocess.Popen | None = None

    def set_accounts(self, accounts: dict) -> None:
        self.accounts_path.write_text(json.dumps(accounts))

    def start(self, wait: float = 30.0) -> OidcProvider:
        install = ensure_installed()
        # the script must sit beside node_modules for Node's ES-module resolution
        script = install / f"provider-{os.getpid()}-{self.port}.mjs"
        script.write_text(textwrap.dedent(SCRIPT))
        config = self.workdir / "config.json"
        client = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": [self.redirect_uri],
            "token_endpoint_auth_method": "client_secret_post",
        }
        config.write_text(
            json.dumps({"issuer": self.issuer, "port": self.port, "clients": [client]})
        )
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [node(), str(script), str(config), str(self.accounts_path)],
                cwd=install,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

        def answering() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"provider exited:\n{self.log_path.read_text()[-2000:]}")
            url = f"{self.issuer}/.well-known/openid-configuration"
            return requests.get(url, timeout=2).status_code == 200

        try:
            wait_until(answering, wait, 0.1, retry_on=(requests.RequestException,))
        finally:
            script.unlink(missing_ok=True)  # node has read it by the time it answers
        return self

    def stop(self) -> None:
        stop_process(self.proc, 10)
        self.proc = None


def hub_lines(provider: OidcProvider, **options) -> str:
    """``labhub.configure()`` keyword arguments for OIDC mode against ``provider``."""
    return {
        "auth_mode": "oidc",
        "oidc_issuer": provider.issuer,
        "oidc_client_id": provider.client_id,
        "oidc_client_secret": provider.client_secret,
        "oidc_scopes": ["openid", "profile", "email", "groups"],
        **options,
    }


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def walk_provider(session: requests.Session, response: requests.Response, login: str):
    """From the provider's login form to the hub's answer at its callback (not followed).

    Posts the login form as ``login`` and the consent form, following the provider's
    redirects by hand so the hub's callback answer is returned as it came.
    """
    for form in ({"prompt": "login", "login": login, "password": "any"}, {"prompt": "consent"}):
        action = _FORM_ACTION.search(response.text)
        if action is None:  # consent already given in this session
            return response
        response = follow(
            session,
            session.post(urljoin(response.url, action.group(1)), data=form, allow_redirects=False),
        )
        if urlparse(response.url).path.endswith("/hub/oauth_callback"):
            return response
    return response


def follow(session: requests.Session, response: requests.Response) -> requests.Response:
    """Follow redirects up to and including the hub's callback, whose answer is returned."""
    while response.is_redirect:
        url = urljoin(response.url, response.headers["Location"])
        response = session.get(url, allow_redirects=False, timeout=30)
        if urlparse(url).path.endswith("/hub/oauth_callback"):
            return response
    return response

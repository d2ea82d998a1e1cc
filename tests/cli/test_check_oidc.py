"""``labhub check`` against a real OpenID provider: the issuer answers, the client is accepted."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from labhub.cli.checks import CheckFailed, check_oidc

from ..auth.test_oidc_hub import node_runtime  # noqa: F401 (a fixture)
from ..support.oidc import OidcProvider


def oidc_config(issuer: str, client_id: str, secret: str) -> Config:
    c = Config()
    c.LabAuthenticator.mode = "oidc"
    c.LabAuthenticator.oidc_issuer = issuer
    c.LabAuthenticator.oidc_client_id = client_id
    c.LabAuthenticator.oidc_client_secret = secret
    c.LabAuthenticator.oidc_callback_url = "http://127.0.0.1:1/hub/oauth_callback"
    return c


def test_check_oidc_says_in_one_line_whether_the_issuer_answers(node_runtime, tmp_path):  # noqa: F811
    provider = OidcProvider(tmp_path / "provider", "http://127.0.0.1:1/hub/oauth_callback")
    provider.start()
    try:
        line = check_oidc(oidc_config(provider.issuer, provider.client_id, provider.client_secret))
        assert line == (
            f"issuer {provider.issuer} answers; client 'labhub-test' and its secret accepted"
        )
        with pytest.raises(CheckFailed) as wrong:
            check_oidc(oidc_config(provider.issuer, provider.client_id, "wrong-secret"))
        assert str(wrong.value) == (
            f"the issuer {provider.issuer} answers but refuses client 'labhub-test' or its secret."
        )
        with pytest.raises(CheckFailed) as elsewhere:
            check_oidc(oidc_config(provider.issuer + "/other", provider.client_id, "x"))
        assert str(elsewhere.value) == (
            f"{provider.issuer}/other/.well-known/openid-configuration answered 404; "
            "is oidc_issuer the issuer URL?"
        )
    finally:
        provider.stop()
    with pytest.raises(CheckFailed) as down:
        check_oidc(oidc_config(provider.issuer, provider.client_id, provider.client_secret))
    assert str(down.value) == f"the issuer {provider.issuer} does not answer (ConnectionError)."


def test_check_oidc_names_what_is_missing_and_skips_other_modes():
    with pytest.raises(CheckFailed, match="OIDC mode needs LABHUB_OIDC_ISSUER"):
        check_oidc(oidc_config("", "hub", "s"))
    c = Config()
    c.LabAuthenticator.mode = "dummy"
    assert check_oidc(c) == "skip: authentication mode is dummy"


def test_init_writes_the_oidc_lines_commented_into_env():
    from pathlib import Path

    from labhub.cli.deployment import Deployment, load_templates, new_secrets, render_files
    from labhub.hub.options import BY_NAME

    env = render_files(Deployment(lab_root=Path("/srv/lab")), load_templates(), new_secrets())[
        ".env"
    ]
    names = [o.env for o in BY_NAME.values() if o.name.startswith("oidc_")]
    names += ["LABHUB_PUBLIC_URL", "LABHUB_LAB_NAME", "LABHUB_LOGIN_MESSAGE", "LABHUB_LOGO"]
    for name in names:
        assert f"\n# {name}=" in env, name
        assert f"\n{name}=" not in env, name  # a dummy-mode deployment until the admin opts in
    assert "\n# LABHUB_AUTH_MODE=oidc\n" in env

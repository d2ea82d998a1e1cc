"""configure()'s acme_* options: what they write, their LABHUB_* names, and what they refuse."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from labhub.cli.certs import make_self_signed
from labhub.hub.configure import LabConfigError, configure
from labhub.hub.options import DEFAULT_ACME_DIRECTORY


def test_acme_domain_turns_on_https_from_the_ca(base, tmp_path):
    c = Config()
    configure(c, **base, acme_domain="lab.example.org")
    assert c.LabAcme.domain == "lab.example.org"
    assert c.LabAcme.directory == DEFAULT_ACME_DIRECTORY
    assert c.LabAcme.challenge_port == 80
    assert c.LabAcme.renew_days == 30
    assert c.LabAcme.check_interval == 12 * 3600
    assert c.LabAcme.data_dir == base["data_dir"]
    assert c.JupyterHub.ssl_cert == str(tmp_path / "data" / "acme" / "fullchain.pem")
    assert c.JupyterHub.ssl_key == str(tmp_path / "data" / "acme" / "privkey.pem")
    assert c.JupyterHub.port == 8443  # HTTPS, though no certificate exists yet
    again = Config(c)
    configure(again, **base, acme_domain="lab.example.org")
    assert again == c


def test_every_acme_option_has_its_labhub_name(base, monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("roots")
    for name, value in {
        "LABHUB_ACME_DOMAIN": "lab.example.org",
        "LABHUB_ACME_EMAIL": "admin@example.org",
        "LABHUB_ACME_DIRECTORY": "https://ca.internal.example/acme/acme/directory",
        "LABHUB_ACME_CA_BUNDLE": str(bundle),
        "LABHUB_ACME_CHALLENGE_PORT": "8080",
        "LABHUB_ACME_RENEW_DAYS": "20",
        "LABHUB_ACME_CHECK_INTERVAL": "600",
    }.items():
        monkeypatch.setenv(name, value)
    c = Config()
    configure(c, **base)
    assert (c.LabAcme.domain, c.LabAcme.email) == ("lab.example.org", "admin@example.org")
    assert c.LabAcme.directory == "https://ca.internal.example/acme/acme/directory"
    assert c.LabAcme.ca_bundle == str(bundle)
    assert (c.LabAcme.challenge_port, c.LabAcme.renew_days, c.LabAcme.check_interval) == (
        8080,
        20,
        600,
    )


def test_acme_domain_with_ssl_cert_is_refused_in_one_sentence(base, tmp_path):
    make_self_signed(tmp_path / "own.crt", tmp_path / "own.key", ["lab.example.org"])
    with pytest.raises(LabConfigError) as err:
        configure(
            Config(),
            **base,
            acme_domain="lab.example.org",
            ssl_cert=str(tmp_path / "own.crt"),
            ssl_key=str(tmp_path / "own.key"),
        )
    assert str(err.value) == (
        "labhub: Set acme_domain or ssl_cert, not both: with acme_domain the hub obtains its "
        "own certificate, which ssl_cert would replace."
    )


@pytest.mark.parametrize(
    "options,message",
    [
        ({"acme_domain": "https://lab.example.org"}, "acme_domain must be the hub's DNS name"),
        ({"acme_domain": "*.example.org"}, "HTTP-01 cannot validate a wildcard"),
        ({"acme_directory": "ca.example.org"}, "acme_directory must be a URL"),
        ({"acme_ca_bundle": "/nonexistent/ca.pem"}, "acme_ca_bundle /nonexistent/ca.pem is not"),
        ({"acme_challenge_port": 0}, "acme_challenge_port must be between 1 and 65535"),
        ({"acme_renew_days": 0}, "acme_renew_days must be more than 0"),
        ({"acme_check_interval": -1}, "acme_check_interval must be more than 0"),
    ],
)
def test_bad_acme_values_stop_with_one_sentence(base, options, message):
    with pytest.raises(LabConfigError, match=message):
        configure(Config(), **base, **{"acme_domain": "lab.example.org", **options})

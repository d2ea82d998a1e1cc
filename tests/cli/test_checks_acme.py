"""``labhub check`` on a hub with ACME: the days until the certificate expires, and whether it is due."""

from __future__ import annotations

from traitlets.config import Config

from labhub.certs.store import acme_files
from labhub.cli.certs import make_self_signed
from labhub.cli.checks import check_certificate_files


def acme_config(data_dir) -> Config:
    c = Config()
    c.LabAcme.domain = "lab.example.org"
    c.LabAcme.data_dir = str(data_dir)
    c.LabAcme.directory = "https://ca.internal.example/acme/acme/directory"
    return c


def test_check_shows_the_days_until_expiry(tmp_path):
    files = acme_files(str(tmp_path))
    make_self_signed(files.cert, files.key, ["lab.example.org"], days=90)
    line = check_certificate_files(acme_config(tmp_path))
    assert line.startswith("ACME certificate for lab.example.org: 90 days until expiry (")
    assert line.endswith("renewed 30 days before")


def test_check_warns_when_due_or_not_yet_obtained(tmp_path):
    c = acme_config(tmp_path)
    assert check_certificate_files(c) == (
        f"warn: no certificate for lab.example.org is stored in {tmp_path / 'acme'} yet; the hub "
        "orders one from https://ca.internal.example/acme/acme/directory at start"
    )
    files = acme_files(str(tmp_path))
    make_self_signed(files.cert, files.key, ["lab.example.org"], days=10)
    line = check_certificate_files(c)
    assert line.startswith("warn: ACME certificate for lab.example.org: 10 days until expiry")
    assert "the hub renews it at its next check" in line

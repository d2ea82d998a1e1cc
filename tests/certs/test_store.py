"""labhub.certs.store and the keeper's renewal without a CA: files 0600, never garbage, never lost."""

from __future__ import annotations

import logging
import stat

import pytest
from jupyterhub.utils import random_port

from labhub.certs.keeper import AcmeSettings, CertificateKeeper
from labhub.certs.order import OrderRequest
from labhub.certs.store import (
    StoreError,
    acme_files,
    is_due,
    load_or_make_account_key,
    stored_certificate,
)
from labhub.cli.certs import make_self_signed

DOMAIN = "lab.labhub.test"


def test_account_key_is_made_once_0600_and_reused(tmp_path):
    files = acme_files(str(tmp_path))
    key = load_or_make_account_key(files.account_key)
    assert stat.S_IMODE(files.account_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700
    again = load_or_make_account_key(files.account_key)
    assert again.private_numbers() == key.private_numbers()


@pytest.mark.parametrize("broken", ["garbage", "folder"])
def test_an_unreadable_account_key_is_named_and_kept(tmp_path, broken):
    files = acme_files(str(tmp_path))
    if broken == "garbage":
        files.folder.mkdir()
        files.account_key.write_text("not a key")
    else:
        files.account_key.mkdir(parents=True)
    with pytest.raises(StoreError) as err:
        load_or_make_account_key(files.account_key)
    assert str(files.account_key) in str(err.value)
    assert "restore it, or remove it to register a new account" in str(err.value)
    assert files.account_key.exists()


def test_a_corrupt_or_foreign_certificate_is_never_taken(tmp_path):
    files = acme_files(str(tmp_path))
    with pytest.raises(StoreError, match="no certificate for lab.labhub.test is stored"):
        stored_certificate(files, DOMAIN)
    make_self_signed(files.cert, files.key, ["other.labhub.test"])
    with pytest.raises(StoreError, match="is for other.labhub.test"):
        stored_certificate(files, DOMAIN)
    make_self_signed(files.cert, files.key, [DOMAIN])
    assert stored_certificate(files, DOMAIN).names == [DOMAIN]
    files.cert.write_text(files.cert.read_text()[:200])
    with pytest.raises(StoreError, match="is not a PEM certificate"):
        stored_certificate(files, DOMAIN)


def test_due_when_fewer_days_than_renew_days_remain(tmp_path):
    files = acme_files(str(tmp_path))
    make_self_signed(files.cert, files.key, [DOMAIN], days=20)
    info = stored_certificate(files, DOMAIN)
    assert is_due(info, 30) and not is_due(info, 10)


def test_a_failed_renewal_keeps_the_certificate_and_says_the_days_left(tmp_path, caplog):
    files = acme_files(str(tmp_path))
    make_self_signed(files.cert, files.key, [DOMAIN], days=20)
    before = files.cert.read_bytes(), files.key.read_bytes()
    directory = f"https://127.0.0.1:{random_port()}/dir"
    settings = AcmeSettings(OrderRequest(DOMAIN, directory), 0, "", 30, 60, files)
    keeper = CertificateKeeper(settings, logging.getLogger("acme-test"), "127.0.0.1")
    keeper.challenges = type("NoServer", (), {"answers": {}})()
    with caplog.at_level(logging.INFO, "acme-test"):
        assert keeper.renew_if_due() is False
    assert (files.cert.read_bytes(), files.key.read_bytes()) == before
    [failure] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failure == (
        f"labhub: renewing the certificate for {DOMAIN} failed (the ACME server {directory} "
        "cannot be reached (connection refused)); the current certificate stays in use and "
        "expires in 20 days."
    )

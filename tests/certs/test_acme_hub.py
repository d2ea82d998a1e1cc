"""A real hub wired by configure() gets, keeps and renews its certificate from a real ACME server (pebble).

The certificate is validated over HTTP-01 against what the hub serves on
acme_challenge_port; the client side checks the served chain against pebble's root only.
"""

from __future__ import annotations

import re
import stat

from labhub.certs.store import acme_files
from labhub.cli.checks import check_certificate_files, load_config

from ..support.contents import put_file, read_file
from ..support.hubconfig import configured_config
from ..support.tls import ConnectionProbe, served_certificate, served_serial
from ..support.waiting import wait_until

DOMAIN = "lab.labhub.test"


def acme_config(lab_image, lab_root, prefix, pebble, data_dir, after: str = "", **options) -> str:
    """configure() with ACME from pebble, labs on host networking, state in ``data_dir``."""
    acme = {
        "acme_domain": DOMAIN,
        "acme_email": "admin@labhub.test",
        "acme_directory": pebble.directory,
        "acme_ca_bundle": str(pebble.ca_bundle),
        "acme_challenge_port": pebble.http_port,
        "data_dir": str(data_dir),
        "network": "host",
        **options,
    }
    return configured_config(lab_image, lab_root, prefix, after=after, **acme)


def https_hub(hub_factory, config: str):
    hub = hub_factory(config, start=False)
    hub.scheme = "https"
    hub.verify = False  # the API calls go to 127.0.0.1; the certificate is checked by name below
    return hub.start(wait=120)


def restart(hub, after: str = "") -> None:
    """Stop the hub (its labs keep running) and start it again, with ``after`` lines appended."""
    hub.stop()
    if after:
        hub.config_path.write_text(hub.config_path.read_text() + "\n" + after + "\n")
    hub.start(wait=120)


def next_renewal(hub, previous: str, root) -> tuple[str, ConnectionProbe]:
    """Wait for the next background renewal while a client opens new TLS connections."""
    with ConnectionProbe(hub.port, DOMAIN, root) as probe:
        serial = wait_until(
            lambda: (s := served_serial(hub.port, DOMAIN, root)) != previous and s,
            60,
            0.1,
            what=lambda: "a renewed certificate served:\n" + hub.log_tail(),
            retry_on=(OSError,),
        )
    return serial, probe


def test_hub_gets_keeps_and_renews_its_certificate_without_losing_a_lab(
    hub_factory, lab_image, lab_root, lab_prefix, pebble, pebble_root, tmp_path
):
    data_dir = tmp_path / "hub"
    files = acme_files(str(data_dir))
    hub = https_hub(hub_factory, acme_config(lab_image, lab_root, lab_prefix, pebble, data_dir))

    # first start: a certificate for the domain, chained to pebble's root, through HTTP-01
    leaf = served_certificate(hub.port, DOMAIN, pebble_root)
    assert leaf.issuer != leaf.subject
    first = format(leaf.serial_number, "x")
    log = hub.log_text()
    assert "ACME HTTP-01 challenge /.well-known/acme-challenge/" in log
    assert f"new certificate for {DOMAIN}, serial {first}" in log
    assert "Attempting to validate w/ HTTP: http://lab.labhub.test:" in pebble.log_path.read_text()
    for path in (files.account_key, files.cert, files.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert hub.api("GET", "/").status_code == 200
    # labhub check reads the same config and says how long the certificate lasts
    check = check_certificate_files(load_config(str(hub.config_path)))
    assert re.match(rf"ACME certificate for {DOMAIN}: \d+ days until expiry", check), check

    # a lab and a file in it, both started before any renewal
    hub.spawn("ada")
    put_file(hub, "ada", "work/kept.txt", "still here")

    # a restart serves the same certificate and orders nothing
    orders = pebble.orders()
    account_key = files.account_key.read_bytes()
    restart(hub)
    assert served_serial(hub.port, DOMAIN, pebble_root) == first
    assert pebble.orders() == orders
    assert f"the certificate for {DOMAIN} is valid for" in hub.log_text()
    assert files.account_key.read_bytes() == account_key

    # a corrupt certificate on disk is replaced by a new one at start, never served
    files.cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    restart(hub)
    repaired = served_serial(hub.port, DOMAIN, pebble_root)
    assert repaired != first
    assert pebble.orders() == orders + 1
    assert files.account_key.read_bytes() == account_key  # the same account

    # forced renewal: every check finds the certificate due; the running hub renews in the background
    restart(hub, "c.LabAcme.renew_days = 100000\nc.LabAcme.check_interval = 6")
    at_start = served_serial(hub.port, DOMAIN, pebble_root)
    assert at_start != repaired
    renewed, probe = next_renewal(hub, at_start, pebble_root)
    # in place: the proxy took the new certificate without refusing a connection or losing a route
    assert (probe.failures(), len(probe.results) > 20) == (0, True), probe.results[-5:]
    assert read_file(hub, "ada", "work/kept.txt") == "still here"
    assert "without a restart: no connection refused, no route lost" in hub.log_text()

    # a proxy command that clears the preload's variables: the proxy is restarted instead
    restart(
        hub,
        'c.ConfigurableHTTPProxy.command = ["env", "-u", "LABHUB_TLS_CERT", "configurable-http-proxy"]',
    )
    at_start = served_serial(hub.port, DOMAIN, pebble_root)
    renewed, probe = next_renewal(hub, at_start, pebble_root)
    # the routes come back after the new proxy listens: wait for the lab through it
    wait_until(lambda: read_file(hub, "ada", "work/kept.txt"), 30, 0.05, retry_on=(OSError,))
    print(f"restart: new connections failed for {probe.longest_outage():.2f} s")
    assert probe.longest_outage() < 5
    assert read_file(hub, "ada", "work/kept.txt") == "still here"
    assert "serves the renewed certificate after a restart" in hub.log_text()

    # the challenge becomes unreachable (the name now points elsewhere): the old certificate stays
    pebble.point_dns(DOMAIN, "127.0.0.2")
    try:
        wait_until(
            lambda: f"renewing the certificate for {DOMAIN} failed" in hub.log_text(),
            60,
            what=lambda: "a failed renewal logged:\n" + hub.log_tail(),
        )
        line = next(
            text for text in hub.log_text().splitlines() if "renewing the certificate for" in text
        )
        assert "could not validate the HTTP-01 challenge" in line
        assert "the current certificate stays in use and expires in" in line
        current = served_serial(hub.port, DOMAIN, pebble_root)
        assert current == renewed
        assert read_file(hub, "ada", "work/kept.txt") == "still here"
    finally:
        pebble.reset_dns(DOMAIN)

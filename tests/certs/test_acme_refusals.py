"""Bad input at a first start: the hub refuses in one sentence naming the domain and the CA's reason."""

from __future__ import annotations

import pytest
from jupyterhub.utils import random_port

from labhub.certs.store import acme_files

from ..hub.test_startup import hub_refusal, refusal_sentence
from ..support.pebble import BLOCKED_DOMAIN
from .test_acme_hub import DOMAIN, acme_config

GARBAGE_KEY = b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    "case,words",
    [
        ("server unreachable", ["cannot be reached (connection refused)"]),
        ("challenge unreachable", ["could not validate the HTTP-01 challenge", "refused"]),
        ("domain refused", ["the CA refused the order", "forbidden by policy"]),
        ("account key unreadable", ["is not an unencrypted PEM private key", "restore it"]),
    ],
)
def test_first_start_without_a_certificate_is_refused_in_one_sentence(
    case, words, tmp_path, lab_image, lab_root, lab_prefix, pebble
):
    data_dir = tmp_path / "hub"
    files = acme_files(str(data_dir))
    options = {}
    domain = DOMAIN
    if case == "server unreachable":
        options["acme_directory"] = f"https://127.0.0.1:{random_port()}/dir"
    elif case == "challenge unreachable":
        # the CA asks on its port; the hub answers on another, as behind a closed firewall
        options["acme_challenge_port"] = random_port()
    elif case == "domain refused":
        domain = options["acme_domain"] = BLOCKED_DOMAIN
    else:
        files.folder.mkdir(parents=True)
        files.account_key.write_bytes(GARBAGE_KEY)
    directory = options.get("acme_directory", pebble.directory)
    config = acme_config(lab_image, lab_root, lab_prefix, pebble, data_dir, **options)

    code, log = hub_refusal(tmp_path, lab_image, config, env={})

    assert code == 1
    sentence = refusal_sentence(log)
    assert sentence.startswith(
        f"labhub: No certificate for {domain} could be obtained from {directory}: "
    ), sentence
    for word in words:
        assert word in sentence, sentence
    assert sentence.count(". ") == 0 and sentence.endswith("."), sentence
    assert "Traceback" not in log
    # nothing half-made is left to be served, and nothing the admin had is lost
    assert not files.cert.exists() and not files.key.exists()
    if case == "account key unreadable":
        assert files.account_key.read_bytes() == GARBAGE_KEY

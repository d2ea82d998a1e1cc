#!/usr/bin/env bash
# Run every labhub test on a fresh Debian 12 machine (root, no Docker engine, no image registry).
# Installs what the tests need; the tests themselves start dockerd, slapd, hubs and proxies
# on loopback and stop what they started. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
[ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapadd >/dev/null || missing+=(ldap-utils)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-compose >/dev/null || missing+=(docker-compose)  # tests/cli/test_deployment.py
command -v chromium >/dev/null || missing+=(chromium)  # the browser tests
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v pebble >/dev/null || missing+=(pebble)  # the ACME tests: Let's Encrypt's test server
command -v prometheus >/dev/null || missing+=(prometheus)  # the metrics tests
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v configurable-http-proxy >/dev/null || npm install -g --silent configurable-http-proxy

python3 -m pip install -q -e ".[test,docs]"

echo "== lint"
ruff check .
ruff format --check .

echo "== tests"
python3 -m pytest -p no:cacheprovider -ra --durations=25 "$@"

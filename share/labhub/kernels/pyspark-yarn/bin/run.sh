#!/usr/bin/env bash
# PySpark on YARN (cluster mode) for Jupyter Enterprise Gateway, shipped by labhub.
#
# A kernel request sets every KERNEL_* variable, and any holder of the gateway token can
# send one: each is checked against a strict pattern here and reaches spark-submit as
# exactly one argument (no eval, no unquoted expansion). --proxy-user only with
# LABHUB_PROXY_USER=on in kernel.json (docs/gateway.md says what that trusts).
set -euo pipefail

refuse() {
    echo "labhub kernel launcher: $*; nothing was started." >&2
    exit 64
}

# a hub username: letters, digits, '_', '.', '@', '-', never '-' first (it would be an option)
USERNAME_PATTERN='^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$'
KERNEL_ID_PATTERN='^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$'

[[ ${KERNEL_USERNAME:-} =~ $USERNAME_PATTERN ]] ||
    refuse "KERNEL_USERNAME must be 1 to 64 letters, digits, '_', '.', '@' or '-' (not first)"
[[ ${KERNEL_ID:-} =~ $KERNEL_ID_PATTERN ]] || refuse "KERNEL_ID must be a UUID"

# the admin's fixed options from kernel.json, split on blanks only (no globbing, no eval)
read -r -a admin_opts <<<"${SPARK_OPTS:-}"
read -r -a launch_opts <<<"${LAUNCH_OPTS:-}"

# Enterprise Gateway finds the YARN application by its name: the kernel id
opts=(--master yarn --deploy-mode cluster --name "$KERNEL_ID")
case "${LABHUB_PROXY_USER:-off}" in
on) opts+=(--proxy-user "$KERNEL_USERNAME") ;;
off) ;;
*) refuse "LABHUB_PROXY_USER must be on or off" ;;
esac

PROG_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${SPARK_HOME:?SPARK_HOME is not set}/bin/spark-submit" \
    "${opts[@]}" \
    ${admin_opts[@]+"${admin_opts[@]}"} \
    "$PROG_HOME/scripts/launch_ipykernel.py" \
    ${launch_opts[@]+"${launch_opts[@]}"} \
    "$@"

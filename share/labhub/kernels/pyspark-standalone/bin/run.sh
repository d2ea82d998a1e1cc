#!/usr/bin/env bash
# PySpark on a standalone Spark master, the driver on the gateway host; shipped by labhub.
#
# A kernel request sets every KERNEL_* variable, and any holder of the gateway token can
# send one: each is checked against a strict pattern before it joins PYSPARK_SUBMIT_ARGS,
# which pyspark splits into spark-submit's arguments.
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
[[ $# -eq 1 ]] || refuse "the one argument is the connection file"

# SPARK_OPTS is the admin's, from kernel.json; the name is built from checked values only
export PYSPARK_SUBMIT_ARGS="${SPARK_OPTS:-} --name ${KERNEL_USERNAME}-${KERNEL_ID} pyspark-shell"
exec "${PYSPARK_PYTHON:-python3}" -m ipykernel_launcher -f "$1"

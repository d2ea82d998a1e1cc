#!/usr/bin/env bash
# PySpark on Kubernetes (cluster mode) for Jupyter Enterprise Gateway, shipped by labhub.
#
# A kernel request sets every KERNEL_* variable, and any holder of the gateway token can
# send one: each is checked against a strict pattern here and reaches spark-submit as
# exactly one argument (no eval, no unquoted expansion). The images are the admin's
# (LABHUB_KERNEL_IMAGE, LABHUB_EXECUTOR_IMAGE in kernel.json), not a request's KERNEL_IMAGE.
set -euo pipefail

refuse() {
    echo "labhub kernel launcher: $*; nothing was started." >&2
    exit 64
}

# a hub username: letters, digits, '_', '.', '@', '-', never '-' first (it would be an option)
USERNAME_PATTERN='^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$'
KERNEL_ID_PATTERN='^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$'
NAMESPACE_PATTERN='^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'
IMAGE_PATTERN='^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$'

[[ ${KERNEL_USERNAME:-} =~ $USERNAME_PATTERN ]] ||
    refuse "KERNEL_USERNAME must be 1 to 64 letters, digits, '_', '.', '@' or '-' (not first)"
[[ ${KERNEL_ID:-} =~ $KERNEL_ID_PATTERN ]] || refuse "KERNEL_ID must be a UUID"
[[ ${KERNEL_NAMESPACE:-} =~ $NAMESPACE_PATTERN ]] ||
    refuse "KERNEL_NAMESPACE must be a Kubernetes namespace name"
[[ ${LABHUB_KERNEL_IMAGE:-} =~ $IMAGE_PATTERN ]] ||
    refuse "LABHUB_KERNEL_IMAGE in kernel.json must name an image"
executor_image="${LABHUB_EXECUTOR_IMAGE:-$LABHUB_KERNEL_IMAGE}"
[[ $executor_image =~ $IMAGE_PATTERN ]] ||
    refuse "LABHUB_EXECUTOR_IMAGE in kernel.json must name an image"
[[ ${KUBERNETES_SERVICE_HOST:-} =~ ^[A-Za-z0-9.:-]+$ && ${KUBERNETES_SERVICE_PORT:-} =~ ^[0-9]+$ ]] ||
    refuse "the gateway runs outside Kubernetes (no KUBERNETES_SERVICE_HOST and _PORT)"

# the admin's fixed options from kernel.json, split on blanks only (no globbing, no eval)
read -r -a admin_opts <<<"${SPARK_OPTS:-}"
read -r -a launch_opts <<<"${LAUNCH_OPTS:-}"

# Enterprise Gateway finds the driver pod by these labels in KERNEL_NAMESPACE
opts=(
    --master "k8s://https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}"
    --deploy-mode cluster
    --name "${KERNEL_USERNAME//[@.]/-}-${KERNEL_ID}"
    --conf "spark.kubernetes.namespace=${KERNEL_NAMESPACE}"
    --conf "spark.kubernetes.driver.label.app=enterprise-gateway"
    --conf "spark.kubernetes.driver.label.kernel_id=${KERNEL_ID}"
    --conf "spark.kubernetes.driver.label.component=kernel"
    --conf "spark.kubernetes.executor.label.app=enterprise-gateway"
    --conf "spark.kubernetes.executor.label.kernel_id=${KERNEL_ID}"
    --conf "spark.kubernetes.executor.label.component=worker"
    --conf "spark.kubernetes.driver.container.image=${LABHUB_KERNEL_IMAGE}"
    --conf "spark.kubernetes.executor.container.image=${executor_image}"
    --conf "spark.kubernetes.submission.waitAppCompletion=false"
)

# the driver runs in the kernel image: the launcher is a path inside it
exec "${SPARK_HOME:?SPARK_HOME is not set}/bin/spark-submit" \
    "${opts[@]}" \
    ${admin_opts[@]+"${admin_opts[@]}"} \
    "${LABHUB_KERNEL_LAUNCHER:?LABHUB_KERNEL_LAUNCHER is not set in kernel.json}" \
    ${launch_opts[@]+"${launch_opts[@]}"} \
    "$@"

# shellcheck shell=bash
# Shared locations for proctor's scripts. Sourced, never run.
# Everything proctor's scripts start or store lives under $PROCTOR_HOME (default: .proctor in
# the checkout), so a checkout can be wiped with one `rm -rf`.

PROCTOR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PROCTOR_ROOT
export PROCTOR_HOME=${PROCTOR_HOME:-$PROCTOR_ROOT/.proctor}
export PROCTOR_VENV=${PROCTOR_VENV:-$PROCTOR_ROOT/.venv}

# The registry and git server listen on loopback only.
export PROCTOR_REGISTRY_ADDR=${PROCTOR_REGISTRY_ADDR:-127.0.0.1:5000}
export PROCTOR_GIT_PORT=${PROCTOR_GIT_PORT:-9418}
export PROCTOR_GIT_ROOT=${PROCTOR_GIT_ROOT:-$PROCTOR_HOME/git}

# Local base images: nothing can be pulled, so setup.sh makes these.
export PROCTOR_BUSYBOX_IMAGE=${PROCTOR_BUSYBOX_IMAGE:-proctor/busybox:1}
export PROCTOR_PYTHON_IMAGE=${PROCTOR_PYTHON_IMAGE:-proctor/python:3.11}

log() { printf '\033[1m[proctor]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

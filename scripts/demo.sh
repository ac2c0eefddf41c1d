#!/usr/bin/env bash
# Sets the machine up, then runs proctor's end-to-end demo (`proctor demo --help` for options).
#
#   scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
exec ./bin/proctor.js demo "$@"

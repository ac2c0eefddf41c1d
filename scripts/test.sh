#!/usr/bin/env bash
# Sets the machine up, then runs every check CI runs: types, lint, and the test suite (unit and
# integration, against the real Docker Engine, registry and git server). Extra arguments go to
# vitest, e.g. a file filter:
#
#   scripts/test.sh test/support
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
source scripts/env.sh
export PROCTOR_TEST_POSTGRES_URL=${PROCTOR_TEST_POSTGRES_URL:-$(bash scripts/postgres.sh url)}

run_check() {
  local started=$EPOCHREALTIME
  log "$*"
  "$@" || die "$* failed (exit $?)"
  log "$* passed in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
}

run_check npm run --silent typecheck
run_check npm run --silent lint
run_check npx vitest run "$@"

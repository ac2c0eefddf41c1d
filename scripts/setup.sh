#!/usr/bin/env bash
# Makes a Debian 12 machine ready to test and demo proctor, as root: Debian packages, Node
# modules, the repo2docker virtualenv, the local services and the base images. Idempotent:
# each step checks before it acts, so a second run takes a few seconds. Prints one line per
# step; a step's own output goes to $PROCTOR_HOME/run/setup-<step>.log.
#
#   scripts/setup.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$PROCTOR_ROOT"

# dockerd, iptables, debootstrap and chroot live in /usr/sbin, which a non-login shell's PATH
# may lack; the services and base-image scripts run them by name.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH=$PATH:/usr/sbin:/sbin ;; esac

APT_PACKAGES=(docker.io docker-registry postgresql debootstrap busybox-static python3-venv git curl runsc
  iptables ca-certificates make g++ chromium)
REQUIREMENTS=scripts/repo2docker-requirements.txt
NPM_STAMP=node_modules/.proctor-setup
VENV_STAMP=$PROCTOR_VENV/.proctor-setup

run_dir=$PROCTOR_HOME/run
mkdir -p "$run_dir"

# Two setups at once (a test run and a demo) would race in `npm ci`: one at a time.
exec 9>"$run_dir/setup.lock"
flock 9

# step NAME FUNCTION: runs FUNCTION with its output in the step's log, then prints one line
# with the time taken and the `summary` FUNCTION set. FUNCTION runs in a background subshell:
# inside `fn || ...`, bash would ignore `set -e` and carry on past a failed command. The lock's
# descriptor is closed for it, or a daemon it starts would hold the lock forever.
step() {
  local name=$1 fn=$2 started=$EPOCHREALTIME log=$run_dir/setup-$1.log status=0 seconds
  (
    summary=''
    "$fn"
    printf '%s' "$summary" >"$log.summary"
  ) >"$log" 2>&1 9>&- &
  wait $! || status=$?
  seconds=$(elapsed "$started")
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    die "setup step '$name' failed (exit $status) after $seconds s; full log: $log"
  fi
  log "$(printf '%-8s %5s s  %s' "$name" "$seconds" "$(cat "$log.summary")")"
  rm -f "$log.summary"
}

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

sha256() { sha256sum "$@" | cut -d' ' -f1; }

install_packages() {
  local installed missing=() package
  # One dpkg-query for all; it exits 1 when it knows a package not at all.
  installed=$(dpkg-query -W -f='${db:Status-Abbrev}|${Package}\n' "${APT_PACKAGES[@]}" 2>/dev/null |
    awk -F'|' '$1 == "ii " { printf " %s ", $2 }') || true
  for package in "${APT_PACKAGES[@]}"; do
    [[ $installed == *" $package "* ]] || missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    summary="all ${#APT_PACKAGES[@]} Debian packages installed"
    return
  fi

  apt-get update
  # needrestart (recommended by docker.io) must neither restart anything nor ask.
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l NEEDRESTART_SUSPEND=1 \
    apt-get install -y "${missing[@]}"
  summary="installed ${missing[*]}"
}

# True when node_modules holds exactly the versions package-lock.json names, read from npm's
# own record of the tree (node_modules/.package-lock.json), and the native module loads.
node_modules_match_lock() {
  [ -f node_modules/.package-lock.json ] || return 1
  node --input-type=module -e "
    import { readFileSync } from 'node:fs'
    import { createRequire } from 'node:module'
    const read = (file) => JSON.parse(readFileSync(file, 'utf8')).packages ?? {}
    const wanted = read('package-lock.json')
    const installed = read('node_modules/.package-lock.json')
    const same = (a, b) => a.version === b.version && Boolean(a.link) === Boolean(b.link)
    const ok =
      Object.entries(wanted).every(
        ([key, want]) => key === '' || (installed[key] ? same(want, installed[key]) : want.optional === true),
      ) && Object.keys(installed).every((key) => key in wanted)
    if (!ok) process.exit(1)
    const Database = createRequire(process.cwd() + '/')('better-sqlite3')
    new Database(':memory:').close()
  " 2>/dev/null
}

install_node_modules() {
  local want
  want="$(sha256 package-lock.json) node $(node --version)"
  if [ -f "$NPM_STAMP" ] && [ "$(cat "$NPM_STAMP")" = "$want" ]; then
    summary='node_modules up to date with package-lock.json'
    return
  fi
  if node_modules_match_lock; then
    echo "$want" >"$NPM_STAMP"
    summary='node_modules already match package-lock.json'
    return
  fi

  # better-sqlite3 compiles from source (its prebuilt download is unreachable): node-gyp must
  # find Node's headers on this machine instead of downloading them.
  if [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi
  npm ci --no-audit --no-fund
  echo "$want" >"$NPM_STAMP"
  summary='npm ci: installed what package-lock.json names'
}

install_repo2docker() {
  local want pinned
  want=$(sha256 "$REQUIREMENTS")
  pinned=$(sed -n 's/^jupyter-repo2docker==//p' "$REQUIREMENTS")
  if [ -f "$VENV_STAMP" ] && [ "$(cat "$VENV_STAMP")" = "$want" ] && [ -x "$PROCTOR_VENV/bin/repo2docker" ]; then
    summary="repo2docker $pinned in $PROCTOR_VENV"
    return
  fi

  if ! "$PROCTOR_VENV/bin/python" -c '' 2>/dev/null; then
    # Debian's Python, with python3-venv from the packages step: the same on every machine.
    /usr/bin/python3 -m venv --clear "$PROCTOR_VENV"
  fi
  "$PROCTOR_VENV/bin/pip" install --disable-pip-version-check --require-virtualenv -r "$REQUIREMENTS"
  "$PROCTOR_VENV/bin/repo2docker" --version
  echo "$want" >"$VENV_STAMP"
  summary="installed repo2docker $pinned into $PROCTOR_VENV"
}

# What the services or base-image script said it did, on one line.
said() {
  sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^\[proctor\] //' "$run_dir/setup-$1.log" | paste -sd ';' | sed 's/;/; /g'
}

start_services() {
  bash scripts/services.sh start
  summary=$(said services)
  summary=${summary:-docker, registry and git were up}
}

make_base_images() {
  bash scripts/base-images.sh
  summary=$(said images)
}

started=$EPOCHREALTIME
step packages install_packages
step npm install_node_modules
step venv install_repo2docker
step services start_services
step images make_base_images
log "setup done in $(elapsed "$started") s"

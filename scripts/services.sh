#!/usr/bin/env bash
# Starts (or stops) the real services proctor runs against: Docker Engine, the private
# registry and a git server, all on loopback. Idempotent: a service that already answers is
# left alone.
#
#   scripts/services.sh start|stop|status
set -euo pipefail
source "$(dirname "$0")/env.sh"

run_dir=$PROCTOR_HOME/run
mkdir -p "$run_dir" "$PROCTOR_GIT_ROOT" "$PROCTOR_HOME/registry"

docker_ok() { docker info >/dev/null 2>&1; }
registry_ok() { curl -fsS "http://$PROCTOR_REGISTRY_ADDR/v2/" >/dev/null 2>&1; }
git_ok() { (exec 3<>"/dev/tcp/127.0.0.1/$PROCTOR_GIT_PORT") 2>/dev/null; }

wait_for() {
  local what=$1 check=$2
  for _ in $(seq 1 100); do
    if $check; then return 0; fi
    sleep 0.1
  done
  die "$what did not come up; see $run_dir/$what.log"
}

# gVisor (runsc) as an optional runtime, when installed. Debian's build works only with the
# ptrace platform and its own network turned off (see docs/sandbox.md).
register_runsc() {
  command -v runsc >/dev/null || return 0
  local config=/etc/docker/daemon.json
  if [ -f "$config" ] && grep -q '"runsc"' "$config"; then return 0; fi
  if [ -f "$config" ] && [ -s "$config" ]; then
    log "not registering runsc: $config exists; add it there by hand"
    return 0
  fi
  mkdir -p /etc/docker
  cat >"$config" <<JSON
{"runtimes": {"runsc": {"path": "$(command -v runsc)", "runtimeArgs": ["--platform=ptrace", "--network=none"]}}}
JSON
  # A running engine reloads its runtimes on SIGHUP.
  if docker_ok && [ -f "$run_dir/dockerd.pid" ]; then kill -HUP "$(cat "$run_dir/dockerd.pid")" || true; fi
  log "registered runsc as a Docker runtime"
}

start_docker() {
  register_runsc
  if docker_ok; then return; fi
  log "starting dockerd (log: $run_dir/dockerd.log)"
  # cgroup v1 machines and containers without systemd: dockerd runs fine in the background.
  nohup dockerd --pidfile "$run_dir/dockerd.pid" >"$run_dir/dockerd.log" 2>&1 &
  wait_for dockerd docker_ok
}

start_registry() {
  if registry_ok; then return; fi
  local config=$PROCTOR_HOME/registry/config.yml
  cat >"$config" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $PROCTOR_HOME/registry/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $PROCTOR_REGISTRY_ADDR
YAML
  log "starting the registry on $PROCTOR_REGISTRY_ADDR (log: $run_dir/registry.log)"
  nohup docker-registry serve "$config" >"$run_dir/registry.log" 2>&1 &
  echo $! >"$run_dir/registry.pid"
  wait_for registry registry_ok
}

start_git() {
  if git_ok; then return; fi
  log "starting git daemon on 127.0.0.1:$PROCTOR_GIT_PORT for $PROCTOR_GIT_ROOT"
  # receive-pack is enabled so the demo and tests can `git push` tags like a participant.
  nohup git daemon --listen=127.0.0.1 --port="$PROCTOR_GIT_PORT" --reuseaddr \
    --base-path="$PROCTOR_GIT_ROOT" --export-all --enable=receive-pack \
    --pid-file="$run_dir/git.pid" "$PROCTOR_GIT_ROOT" >"$run_dir/git.log" 2>&1 &
  wait_for git git_ok
}

stop_pid() {
  local file=$run_dir/$1.pid
  if [ -f "$file" ] && kill "$(cat "$file")" 2>/dev/null; then log "stopped $1"; fi
  rm -f "$file"
}

case ${1:-start} in
  start)
    start_docker
    start_registry
    start_git
    bash "$PROCTOR_ROOT/scripts/build-network.sh" start
    bash "$PROCTOR_ROOT/scripts/postgres.sh" start
    ;;
  stop)
    stop_pid git
    stop_pid registry
    stop_pid dockerd
    ;;
  status)
    docker_ok && echo "docker: up" || echo "docker: down"
    registry_ok && echo "registry: up ($PROCTOR_REGISTRY_ADDR)" || echo "registry: down"
    git_ok && echo "git: up (127.0.0.1:$PROCTOR_GIT_PORT)" || echo "git: down"
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac

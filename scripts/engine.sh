#!/usr/bin/env bash
# Start (idempotently) what the container tests need on this machine: Debian's Docker engine and a
# registry on 127.0.0.1:5000. No engine runs here by default and no image can be pulled, so the
# project installs and starts both itself, the same way on a developer's machine and in CI.
#
#   scripts/engine.sh start    install when missing, start dockerd and the registry, wait until they answer
#   scripts/engine.sh status   exit 0 when both answer
#   scripts/engine.sh stop     stop what start started
set -euo pipefail

STATE=${RUNNER_ENGINE_STATE:-/var/tmp/runner-engine}
REGISTRY_ADDR=${RUNNER_REGISTRY_ADDR:-127.0.0.1:5000}
DOCKER=/usr/bin/docker   # Debian's client, matching Debian's engine

engine_up() { "$DOCKER" info >/dev/null 2>&1; }
registry_up() { python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$REGISTRY_ADDR/v2/', timeout=2)" >/dev/null 2>&1; }

wait_for() {  # wait_for WHAT CHECK: up to 60 s
  for _ in $(seq 1 120); do "$2" && return 0; sleep 0.5; done
  echo "engine.sh: $1 did not come up; see $STATE/$1.log" >&2
  return 1
}

install() {
  command -v dockerd >/dev/null && command -v docker-registry >/dev/null && [ -x "$DOCKER" ] && return 0
  [ "$(id -u)" = 0 ] || { echo "engine.sh: installing docker.io needs root" >&2; return 1; }
  echo "engine.sh: installing docker.io and docker-registry from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-registry >/dev/null
}

start() {
  install
  mkdir -p "$STATE"
  if ! engine_up; then
    setsid dockerd >"$STATE/dockerd.log" 2>&1 < /dev/null &
    echo $! >"$STATE/dockerd.pid"
    wait_for dockerd engine_up
  fi
  if ! registry_up; then
    mkdir -p "$STATE/registry"
    cat >"$STATE/registry.yml" <<CONFIG
version: 0.1
storage:
  filesystem: {rootdirectory: $STATE/registry}
  delete: {enabled: true}
http: {addr: $REGISTRY_ADDR}
CONFIG
    setsid docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 < /dev/null &
    echo $! >"$STATE/registry.pid"
    wait_for registry registry_up
  fi
  echo "engine.sh: docker engine and registry ($REGISTRY_ADDR) are up" >&2
}

stop() {
  for name in registry dockerd; do
    if [ -f "$STATE/$name.pid" ]; then
      kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
      rm -f "$STATE/$name.pid"
    fi
  done
}

case "${1:-start}" in
  start) start ;;
  status) engine_up && registry_up ;;
  stop) stop ;;
  *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac

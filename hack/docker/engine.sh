#!/usr/bin/env bash
# A Docker engine for the image builds and the kind e2e, shared by every clone on
# the machine under one lock.
#
# Source it (after hack/lib/progress.sh) and wrap the work that uses Docker:
#   docker_session_begin   take the machine-wide lock (waiting for another run),
#                          install Debian's docker.io when dockerd is missing, and
#                          start dockerd when no engine answers
#   docker_session_end     stop dockerd if this session started it; free the lock
#   docker_session_keep_engine  leave dockerd running after the session (a kind
#                          cluster made in it lives on it; hack/kind-cluster.sh down)
# A nested session (a script called by one that holds the lock) is a no-op.
# Run directly: `hack/docker/engine.sh up` starts an engine and leaves it running
# (stop it with `hack/docker/engine.sh down`, which stops only one it started).
set -euo pipefail

docker_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib/progress.sh
source "$docker_dir/../lib/progress.sh"

docker_lock_file="${FLUX_RTMPD_DOCKER_LOCK:-/tmp/flux-rtmpd-docker.lock}"
docker_state="$flux_cache_root/docker"
docker_started_here=0
docker_lock_fd=""

# CAP_SYS_RESOURCE is capability 24.
cap_in_bounding_set() {
  local bnd
  bnd="$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)"
  (((0x$bnd >> $1) & 1))
}

docker_install() {
  local missing=() cmd
  declare -A packages=([dockerd]=docker.io [containerd]=containerd [runc]=runc [iptables]=iptables
    [debootstrap]=debootstrap [jq]=jq [gcc]=gcc)
  for cmd in "${!packages[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${packages[$cmd]}"); done
  ((${#missing[@]})) || return 0
  local sudo=""
  (($(id -u) == 0)) || sudo=sudo
  logged "$docker_state/apt.log" "installing Debian packages ${missing[*]}" \
    bash -c "$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends ${missing[*]}"
}

docker_engine_up() {
  mkdir -p "$docker_state"
  docker_install
  docker info >/dev/null 2>&1 && return 0
  local args=(--pidfile "$docker_state/dockerd.pid")
  # Docker 20.10 gives a --privileged container (every kind node) all the
  # capabilities it knows, and runc then fails with "unable to apply caps:
  # operation not permitted" where the VM's bounding set lacks CAP_SYS_RESOURCE.
  # This runtime drops that one capability from each container's spec.
  if ! cap_in_bounding_set 24; then
    install -m 0755 "$docker_dir/runc-without-sys-resource" "$docker_state/runc-without-sys-resource"
    args+=(--add-runtime "flux-runc=$docker_state/runc-without-sys-resource" --default-runtime flux-runc)
    say "CAP_SYS_RESOURCE is missing from the capability bounding set: containers run without it"
  fi
  say "starting dockerd (log: $docker_state/dockerd.log)"
  local sudo=""
  (($(id -u) == 0)) || sudo=sudo
  # setsid: a test runner's signal to our process group must not reach dockerd;
  # the lock's descriptor is closed so dockerd never holds the lock.
  if [[ -n "$docker_lock_fd" ]]; then
    $sudo setsid dockerd "${args[@]}" </dev/null >"$docker_state/dockerd.log" 2>&1 {docker_lock_fd}>&- &
  else
    $sudo setsid dockerd "${args[@]}" </dev/null >"$docker_state/dockerd.log" 2>&1 &
  fi
  docker_started_here=1
  local deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      say "FAILED: dockerd did not answer within 60s; its log is $docker_state/dockerd.log"
      tail -n 20 "$docker_state/dockerd.log" | sed 's/^/    /' >&2
      return 1
    fi
    sleep 0.5
  done
  say "dockerd answers ($(docker version -f '{{.Server.Version}}'))"
}

docker_engine_down() {
  local pid
  pid="$(cat "$docker_state/dockerd.pid" 2>/dev/null)" || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  say "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && say "dockerd (pid $pid) is still running after 60s"
  return 0
}

docker_session_begin() {
  [[ "${FLUX_RTMPD_DOCKER_SESSION:-}" == "$docker_lock_file" ]] && return 0
  exec {docker_lock_fd}>>"$docker_lock_file"
  if ! flock -n "$docker_lock_fd"; then
    say "waiting for $docker_lock_file: another run uses Docker ($(cat "$docker_lock_file.owner" 2>/dev/null || echo unknown))"
    flock "$docker_lock_fd"
  fi
  echo "pid $$ in $PWD since $(date '+%F %T')" >"$docker_lock_file.owner"
  export FLUX_RTMPD_DOCKER_SESSION="$docker_lock_file"
  docker_engine_up
}

docker_session_keep_engine() { docker_started_here=0; }

docker_session_end() {
  [[ -n "$docker_lock_fd" ]] || return 0
  ((docker_started_here)) && docker_engine_down
  exec {docker_lock_fd}>&-
  docker_lock_fd=""
  unset FLUX_RTMPD_DOCKER_SESSION
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  progress_name=docker
  case "${1:-}" in
    up) docker_engine_up ;;
    down) docker_engine_down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
  esac
fi

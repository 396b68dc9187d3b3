#!/usr/bin/env bash
# Progress lines and logged steps for the hack/ scripts that build images and
# clusters. Source it after setting `progress_name` (the prefix of every line).
#   say TEXT...                     a progress line with the script's elapsed time
#   logged LOG WHAT CMD...          runs CMD with its output in LOG; says when it
#                                   starts and how long it took, or names LOG and
#                                   shows its last lines when it fails
#   flux_cache_root                 the machine-wide cache (shared by every clone)
set -euo pipefail

# shellcheck disable=SC2034 # used by the scripts that source this
flux_cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/flux-rtmpd"

say() { printf '%s: [%4ds] %s\n' "${progress_name:-hack}" "$SECONDS" "$*" >&2; }

logged() {
  local log="$1" what="$2"; shift 2
  local t0=$SECONDS pid
  mkdir -p "$(dirname "$log")"
  say "$what ..."
  # In the background, not in `if`: a shell function then still stops at its
  # first failing command (set -e is off inside an `if` condition).
  "$@" >"$log" 2>&1 &
  pid=$!
  if ! wait "$pid"; then
    say "FAILED: $what after $((SECONDS - t0))s; its log is $log, ending with:"
    tail -n 20 "$log" | sed 's/^/    /' >&2
    return 1
  fi
  say "$what: done in $((SECONDS - t0))s"
}

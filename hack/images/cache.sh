#!/usr/bin/env bash
# cached_image NAME BUILD-FUNCTION: makes sure Docker has image NAME, whose tag
# carries the hash of everything it is built from, and that the cache holds it
# as a `docker save` archive. Missing from Docker: loaded from that archive (a
# machine whose Docker data was wiped), or else built by BUILD-FUNCTION (its
# output in a log file). Older builds of the same image (other keys) are removed
# from Docker and the cache. Sourced after hack/lib/progress.sh.
# shellcheck disable=SC2154 # flux_cache_root: hack/lib/progress.sh
set -euo pipefail

image_cache="$flux_cache_root/images"

save_image() { docker save "$1" >"$2.tmp" && mv -f "$2.tmp" "$2"; }

cached_image() {
  local image="$1" build="$2"
  local file="${image//[\/:]/_}"
  local archive="$image_cache/$file.tar"
  mkdir -p "$image_cache"
  if docker image inspect "$image" >/dev/null 2>&1; then
    say "$image: present"
  elif [[ -s "$archive" ]]; then
    logged "$image_cache/logs/$file.load.log" "$image: loading $archive" docker load -i "$archive"
  else
    logged "$image_cache/logs/$file.build.log" "$image: building" "$build"
  fi
  [[ -s "$archive" ]] ||
    logged "$image_cache/logs/$file.save.log" "$image: saving to $archive" save_image "$image" "$archive"
  local repository="${image%:*}" old
  for old in $(docker images --format '{{.Repository}}:{{.Tag}}' "$repository"); do
    [[ "$old" == "$image" ]] || docker rmi "$old" >/dev/null || true
  done
  for old in "$image_cache/${repository//[\/:]/_}"_*.tar; do
    [[ "$old" == "$archive" || ! -e "$old" ]] || rm -f "$old"
  done
}

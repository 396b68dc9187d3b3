#!/usr/bin/env bash
# `make images`: builds the rtmpd and operator images from their Dockerfiles,
# tagged with the one version the chart and the operator default to (the root
# package.json's): $IMAGE_REGISTRY/rtmpd:$version and $IMAGE_REGISTRY/rtmpd-operator:$version,
# and the rtmpd variant whose ffmpeg transcodes (adaptive bitrate; the operator runs
# it for an RtmpServer with spec.transcode): $IMAGE_REGISTRY/rtmpd:$version-transcode.
# Docker's layer cache keeps each variant's ffmpeg build until its recipe or base changes.
#
# IMAGE_BASE=local (the default) builds on base images made here from Debian's
# and npm's packages (hack/images/base.sh): no image registry is needed.
# IMAGE_BASE=registry builds on the Dockerfiles' defaults (node:24-bookworm-slim,
# debian:bookworm-slim) pulled from Docker Hub.
# Starts a Docker engine if none answers (hack/docker/engine.sh) and stops it
# again, unless a calling script (e2e/kind/run.sh) holds the Docker session.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
progress_name=images
# shellcheck source=hack/lib/progress.sh
source "$here/lib/progress.sh"
# shellcheck source=hack/docker/engine.sh
source "$here/docker/engine.sh"

registry="${IMAGE_REGISTRY:-ghcr.io/fluxiot}"
version="$(node -p 'require(process.argv[1]).version' "$repo/package.json")"
logs="$flux_cache_root/images/logs"

docker_session_begin
trap docker_session_end EXIT

build_args=(--build-arg "VERSION=$version")
case "${IMAGE_BASE:-local}" in
  local)
    # Captured first: a failure of base.sh in a process substitution would go unnoticed.
    base="$("$here/images/base.sh")"
    while IFS='=' read -r name value; do build_args+=(--build-arg "$name=$value"); done <<<"$base"
    ;;
  registry) ;;
  *) say "IMAGE_BASE must be local or registry, not ${IMAGE_BASE}"; exit 2 ;;
esac

# build NAME DOCKERFILE [ARG...]: one image, its build logged and its size said.
build() {
  local name="$1" dockerfile="$2"
  shift 2
  logged "$logs/${name/:$version/}.build.log" "$registry/$name: docker build -f $dockerfile $*" \
    docker build "${build_args[@]}" "$@" -f "$repo/$dockerfile" -t "$registry/$name" "$repo"
  say "$registry/$name: $(docker image inspect -f '{{.Size}}' "$registry/$name" | awk '{ printf "%d MB", $1 / 1e6 }')"
}

build "rtmpd:$version" rtmpd/Dockerfile
build "rtmpd:$version-transcode" rtmpd/Dockerfile --build-arg FFMPEG=transcode
build "rtmpd-operator:$version" operator/Dockerfile

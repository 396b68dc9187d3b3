#!/usr/bin/env bash
# Builds the rtmpd and operator images with Docker, tagged with the one
# version the chart and the operator default to: the root package.json's.
set -euo pipefail
cd "$(dirname "$0")/.."
registry=${IMAGE_REGISTRY:-ghcr.io/fluxiot}
version=$(node -p 'require("./package.json").version')
if ! docker info >/dev/null 2>&1; then
  echo "images: no Docker engine answers here (docker info failed); build the images where Docker runs:" >&2
  echo "  docker build -f rtmpd/Dockerfile -t $registry/rtmpd:$version ." >&2
  echo "  docker build -f operator/Dockerfile -t $registry/rtmpd-operator:$version ." >&2
  exit 1
fi
for image in rtmpd operator; do
  name=$([ "$image" = operator ] && echo rtmpd-operator || echo rtmpd)
  echo "images: building $registry/$name:$version"
  docker build --build-arg VERSION="$version" -f "$image/Dockerfile" -t "$registry/$name:$version" .
done

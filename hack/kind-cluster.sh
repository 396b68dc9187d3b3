#!/usr/bin/env bash
# A kind cluster of your own with the product's images in it, made with no image
# registry (README, "On Kubernetes"): the images, node image and cluster patches
# of the kind e2e, which sources this file for them (e2e/kind/run.sh).
#
#   hack/kind-cluster.sh up     builds what is missing (the Docker engine, the images with
#                               hack/images.sh, the node image with hack/kind/node-image.sh;
#                               all cached), creates the cluster unless it is there, and
#                               loads the images into it; again after a source change, it
#                               rebuilds the images and loads them
#   hack/kind-cluster.sh env    export KUBECONFIG=... and PATH=<the pinned kind, kubectl, helm>:$PATH
#   hack/kind-cluster.sh down   deletes the cluster; stops the Docker engine if a project
#                               script started it and no container is left on it
# Environment:
#   KIND_CLUSTER_NAME  the cluster's name (default flux-rtmpd; the e2e's are flux-rtmpd-<hash>)
#   KIND_CONFIG        the kind config (default examples/kind-cluster.yaml: one node)
#   KIND_NODE_IMAGE, IMAGE_BASE, IMAGE_REGISTRY   as for e2e/kind/run.sh
# The Docker engine runs on between `up` and `down` (the cluster's nodes are its
# containers); the machine-wide Docker lock is held only while a command runs.
#
# Sourced (after hack/docker/engine.sh), it defines the kind_* functions only.
set -euo pipefail

kind_hack="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# kind_node_image: sets KIND_NODE_IMAGE, unless given, to the node image built here.
kind_node_image() {
  if [[ -z "${KIND_NODE_IMAGE:-}" ]]; then
    KIND_NODE_IMAGE="$("$kind_hack/kind/node-image.sh" | sed -n 's/^KIND_NODE_IMAGE=//p')"
  fi
  export KIND_NODE_IMAGE
}

# kind_cluster_config FILE: the cluster config FILE with the patches this machine needs.
kind_cluster_config() {
  cat "$1"
  # Without CAP_SYS_RESOURCE runc cannot lower a process's oom_score_adj, and
  # every pod sandbox then fails ("can't get final child's PID from pipe: EOF").
  if ! cap_in_bounding_set 24; then
    printf '%s\n' 'containerdConfigPatches:' '  - |-' '    [plugins."io.containerd.grpc.v1.cri"]' '      restrict_oom_score_adj = true'
  fi
  # kubelet 1.36 refuses to start on cgroup v1 unless told it may.
  if [[ ! -f /sys/fs/cgroup/cgroup.controllers ]]; then
    printf '%s\n' 'kubeadmConfigPatches:' '  - |' '    kind: KubeletConfiguration' '    failCgroupV1: false'
  fi
}

# kind_cluster_create NAME CONFIG KUBECONFIG WAIT_SECONDS: the cluster on KIND_NODE_IMAGE.
kind_cluster_create() {
  kind create cluster --name "$1" --image "$KIND_NODE_IMAGE" --config "$2" --kubeconfig "$3" --wait "$4s" >&2
  kubectl --kubeconfig "$3" get nodes -o wide >&2
}

# kind_cluster_load NAME REGISTRY VERSION: the images hack/images.sh builds, into
# the nodes' containerd (the chart's default image names: no registry is asked).
kind_cluster_load() {
  kind load docker-image --name "$1" "$2/rtmpd:$3" "$2/rtmpd:$3-transcode" "$2/rtmpd-operator:$3"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  repo="$(cd "$kind_hack/.." && pwd)"
  progress_name=kind-cluster
  # shellcheck source=hack/docker/engine.sh
  source "$kind_hack/docker/engine.sh"
  name="${KIND_CLUSTER_NAME:-flux-rtmpd}"
  registry="${IMAGE_REGISTRY:-ghcr.io/fluxiot}"
  state="$flux_cache_root/kind"
  kubeconfig="$state/$name.kubeconfig"
  bin="$("$repo/hack/k8s/build.sh" --bin-dir)"
  PATH="$bin:$PATH"

  cluster_exists() { grep -qx "$name" <<<"$(kind get clusters 2>/dev/null)"; }

  cmd_env() {
    printf "export KUBECONFIG='%s'\n" "$kubeconfig"
    printf "export PATH='%s':\"\$PATH\"\n" "$bin"
  }

  cmd_up() {
    local version
    version="$(node -p 'require(process.argv[1]).version' "$repo/package.json")"
    mkdir -p "$state"
    docker_session_begin
    trap docker_session_end EXIT
    logged "$state/k8s-build.log" "kind, kubectl and helm (hack/k8s/build.sh)" "$repo/hack/k8s/build.sh"
    IMAGE_REGISTRY="$registry" "$repo/hack/images.sh"
    if cluster_exists; then
      say "cluster $name: present"
    else
      kind_node_image
      kind_cluster_config "${KIND_CONFIG:-$repo/examples/kind-cluster.yaml}" >"$state/$name.yaml"
      logged "$state/$name.create.log" "cluster $name (kind create cluster)" \
        kind_cluster_create "$name" "$state/$name.yaml" "$kubeconfig" 300
    fi
    docker_session_keep_engine
    logged "$state/$name.load.log" "loading the images into $name" kind_cluster_load "$name" "$registry" "$version"
    say "cluster $name is up: eval \"\$(hack/kind-cluster.sh env)\", then README, \"On Kubernetes\""
  }

  cmd_down() {
    docker_session_begin
    trap docker_session_end EXIT
    if cluster_exists; then
      kind delete cluster --name "$name" --kubeconfig "$kubeconfig" >&2
      say "cluster $name deleted"
    else
      say "no cluster $name"
    fi
    rm -f "$kubeconfig" "$state/$name.yaml"
    [[ -n "$(docker ps -q)" ]] || docker_engine_down
  }

  case "${1:-}" in
    up) cmd_up ;;
    env) cmd_env ;;
    down) cmd_down ;;
    *) echo "usage: $0 up|env|down" >&2; exit 2 ;;
  esac
fi

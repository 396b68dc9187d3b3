#!/usr/bin/env bash
# Builds the pinned Kubernetes tool chain from source through the Go module proxy:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl (k8s.io/kubernetes)
#   etcd (go.etcd.io/etcd/server/v3), kwok kwokctl (sigs.k8s.io/kwok),
#   helm (helm.sh/helm/v3), kind (sigs.k8s.io/kind)
# and, with --node, what the kind node image adds (hack/kind/node-image.sh):
#   kubelet kubeadm kube-proxy (k8s.io/kubernetes), coredns (github.com/coredns/coredns),
#   local-path-provisioner (github.com/rancher/local-path-provisioner)
# and, with --adapter, prometheus-adapter (sigs.k8s.io/prometheus-adapter), the custom
# metrics API the autoscaling test registers; it has a cache folder and key of its own
# (prometheus-adapter-<key>), so pinning it never rebuilds the control plane.
#
# Each tool lives in its own module under hack/k8s/<module>/ (tools.go + go.mod + go.sum)
# so the dependency graphs never fight. Binaries land in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/flux-rtmpd/k8s-<key>/bin
# where <key> hashes the go.mod/go.sum files and the build recipe below, so every
# clone on the machine shares one cache and a version bump gets a fresh folder.
#
# Usage:
#   hack/k8s/build.sh            build what is missing; prints the bin dir on stdout
#   hack/k8s/build.sh --bin-dir  print the bin dir without building
#   hack/k8s/build.sh --check    exit 0 only if every binary is already built
#   hack/k8s/build.sh --node [--check]   the same for the node's binaries
#   hack/k8s/build.sh --adapter [--bin-dir | --check]   the same for prometheus-adapter
# Progress goes to stderr, one line per tool.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The build recipe. Changing anything here changes the cache key.
readonly KUBE_VERSION=v1.36.3
readonly ETCD_VERSION=v3.6.16
readonly KWOK_VERSION=v0.8.0
readonly HELM_VERSION=v3.22.0
readonly KIND_VERSION=v0.33.0
readonly COREDNS_VERSION=v1.14.2
readonly LOCAL_PATH_PROVISIONER_VERSION=v0.0.30
readonly PROMETHEUS_ADAPTER_VERSION=v0.12.0
readonly RECIPE_REVISION=1 # bump when the flags below change

kube_major="${KUBE_VERSION#v}"; kube_major="${kube_major%%.*}"
kube_minor="${KUBE_VERSION#v*.}"; kube_minor="${kube_minor%%.*}"
readonly epoch=1970-01-01T00:00:00Z

kube_ldflags=(
  "-X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}"
  "-X k8s.io/component-base/version.gitMajor=${kube_major}"
  "-X k8s.io/component-base/version.gitMinor=${kube_minor}"
  "-X k8s.io/component-base/version.gitTreeState=clean"
  "-X k8s.io/component-base/version.buildDate=${epoch}"
  "-X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION}"
  "-X k8s.io/client-go/pkg/version.gitMajor=${kube_major}"
  "-X k8s.io/client-go/pkg/version.gitMinor=${kube_minor}"
  "-X k8s.io/client-go/pkg/version.gitTreeState=clean"
  "-X k8s.io/client-go/pkg/version.buildDate=${epoch}"
)
# Helm believes in this Kubernetes version when it renders without a cluster
# (.Capabilities.KubeVersion, lint deprecation rules): make it the cluster's.
helm_ldflags=(
  "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
  "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${kube_major}"
  "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${kube_minor}"
  "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${kube_major}"
  "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${kube_minor}"
)
kwok_ldflags=(
  "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  "-X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}"
)
# shellcheck disable=SC2034 # read through the nameref below
etcd_ldflags=()
# shellcheck disable=SC2034
kind_ldflags=()
# shellcheck disable=SC2034
coredns_ldflags=("-X github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}")
# shellcheck disable=SC2034
local_path_ldflags=("-X main.VERSION=${LOCAL_PATH_PROVISIONER_VERSION}")
# shellcheck disable=SC2034
adapter_ldflags=()

# name | module folder | package | ldflags array name
tools=(
  "kube-apiserver|kubernetes|k8s.io/kubernetes/cmd/kube-apiserver|kube_ldflags"
  "kube-controller-manager|kubernetes|k8s.io/kubernetes/cmd/kube-controller-manager|kube_ldflags"
  "kube-scheduler|kubernetes|k8s.io/kubernetes/cmd/kube-scheduler|kube_ldflags"
  "kubectl|kubernetes|k8s.io/kubernetes/cmd/kubectl|kube_ldflags"
  "etcd|etcd|go.etcd.io/etcd/server/v3|etcd_ldflags"
  "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok|kwok_ldflags"
  "kwokctl|kwok|sigs.k8s.io/kwok/cmd/kwokctl|kwok_ldflags"
  "helm|helm|helm.sh/helm/v3/cmd/helm|helm_ldflags"
  "kind|kind|sigs.k8s.io/kind|kind_ldflags"
)
node_tools=(
  "kubelet|kubernetes|k8s.io/kubernetes/cmd/kubelet|kube_ldflags"
  "kubeadm|kubernetes|k8s.io/kubernetes/cmd/kubeadm|kube_ldflags"
  "kube-proxy|kubernetes|k8s.io/kubernetes/cmd/kube-proxy|kube_ldflags"
  "coredns|coredns|github.com/flux-rtmpd/flux-rtmpd/hack/k8s/coredns|coredns_ldflags"
  "local-path-provisioner|local-path-provisioner|github.com/rancher/local-path-provisioner|local_path_ldflags"
)
adapter_tools=(
  "prometheus-adapter|prometheus-adapter|sigs.k8s.io/prometheus-adapter/cmd/adapter|adapter_ldflags"
)
# kwok's default stages (what kwokctl feeds its controller), copied from the module.
kwok_stage_files=(
  kustomize/stage/node/fast/node-initialize.yaml
  kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  kustomize/stage/pod/fast/pod-ready.yaml
  kustomize/stage/pod/fast/pod-complete.yaml
  kustomize/stage/pod/fast/pod-delete.yaml
)

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cache_key() {
  {
    printf '%s\n' "$KUBE_VERSION" "$ETCD_VERSION" "$KWOK_VERSION" "$HELM_VERSION" "$KIND_VERSION" \
      "$RECIPE_REVISION" "${tools[@]}" "${kwok_stage_files[@]}" \
      "${kube_ldflags[@]}" "${helm_ldflags[@]}" "${kwok_ldflags[@]}"
    printf '%s\n' "$COREDNS_VERSION" "$LOCAL_PATH_PROVISIONER_VERSION" "${node_tools[@]}" \
      "${coredns_ldflags[@]}" "${local_path_ldflags[@]}"
    local m
    for m in kubernetes etcd kwok helm kind coredns local-path-provisioner; do
      cat "$here/$m/go.mod" "$here/$m/go.sum" "$here/$m"/*.go
    done
  } | sha256sum | cut -c1-12
}

adapter_cache_key() {
  {
    printf '%s\n' "$PROMETHEUS_ADAPTER_VERSION" "$RECIPE_REVISION" "${adapter_tools[@]}" "${adapter_ldflags[@]}"
    cat "$here/prometheus-adapter/go.mod" "$here/prometheus-adapter/go.sum" "$here/prometheus-adapter"/*.go
  } | sha256sum | cut -c1-12
}

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/flux-rtmpd"
out_dir="$cache_root/k8s-$(cache_key)"

selected=("${tools[@]}")
if [[ "${1:-}" == --node ]]; then
  selected=("${node_tools[@]}")
  shift
elif [[ "${1:-}" == --adapter ]]; then
  selected=("${adapter_tools[@]}")
  out_dir="$cache_root/prometheus-adapter-$(adapter_cache_key)"
  shift
fi
bin_dir="$out_dir/bin"
stages_file="$out_dir/share/kwok-stages.yaml"

all_built() {
  local t
  for t in "${selected[@]}"; do
    [[ -x "$bin_dir/${t%%|*}" ]] || return 1
  done
  [[ "${selected[0]}" != "${tools[0]}" || -s "$stages_file" ]]
}

case "${1:-}" in
  --bin-dir) echo "$bin_dir"; exit 0 ;;
  --check) all_built; exit $? ;;
  "") ;;
  *) die "unknown argument: $1 (use [--node | --adapter] [--bin-dir | --check])" ;;
esac

if all_built; then
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || die "go is not on PATH (Go >= 1.26 is needed to build the control plane)"
mkdir -p "$bin_dir" "$(dirname "$stages_file")"

# One builder at a time per cache folder: a second clone waits instead of racing.
exec 9>"$out_dir/.lock"
if ! flock -n 9; then
  log "another build holds $out_dir/.lock, waiting for it"
  flock 9
fi

export CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=readonly"
started=$SECONDS
log "building into $bin_dir ($(go env GOVERSION), -p 2; a cold build takes tens of minutes)"

for t in "${selected[@]}"; do
  IFS='|' read -r name module pkg flags_var <<<"$t"
  dest="$bin_dir/$name"
  if [[ -x "$dest" ]]; then
    log "$name: cached"
    continue
  fi
  declare -n flags_ref="$flags_var"
  t0=$SECONDS
  tmp="$bin_dir/.$name.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  log "$name: building $pkg"
  if ! (cd "$here/$module" && go build -p 2 -trimpath -ldflags "-s -w ${flags_ref[*]}" -o "$tmp" "$pkg"); then
    rm -f "$tmp"
    die "$name: go build failed (module hack/k8s/$module)"
  fi
  mv -f "$tmp" "$dest"
  trap - EXIT
  unset -n flags_ref
  log "$name: built in $((SECONDS - t0))s"
done

if [[ "${selected[0]}" == "${tools[0]}" && ! -s "$stages_file" ]]; then
  kwok_dir="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  [[ -n "$kwok_dir" ]] || die "cannot locate the sigs.k8s.io/kwok module source"
  tmp="$stages_file.tmp.$$"
  for f in "${kwok_stage_files[@]}"; do
    echo "---"
    cat "$kwok_dir/$f"
  done >"$tmp"
  mv -f "$tmp" "$stages_file"
  log "kwok stages: written to $stages_file"
fi

log "done in $((SECONDS - started))s"
echo "$bin_dir"

#!/usr/bin/env bash
# `make e2e-kind`: the user's journey on a real kind cluster, for a machine with
# Docker (and the GitHub workflow .github/workflows/e2e-kind.yml):
#   create the cluster → build both images (hack/images.sh) → kind load them →
#   helm install the chart → kubectl apply examples/rtmpserver.yaml → Ready →
#   port-forward → publish with ffmpeg → stream list, JPEG snapshot, /metrics of
#   rtmpd and of the operator → delete and check the clean-up → helm uninstall →
#   delete the cluster.
# Only the cluster creation and the image loading are kind's: every other step is
# e2e/lib/steps.sh, the code the local suite (`make e2e`) runs too.
#
# Needs: docker (running), kind, kubectl, helm, ffmpeg, curl, node.
# Environment:
#   KIND_CLUSTER_NAME  cluster name (default flux-rtmpd-e2e)
#   KIND_NODE_IMAGE    node image (default: kind's own)
#   E2E_KIND_KEEP=1    keep the cluster (and the work dir) afterwards
#   E2E_TIMEOUT        seconds per wait (default 180)
#   IMAGE_REGISTRY     image name prefix (default ghcr.io/fluxiot, as hack/images.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source-path=SCRIPTDIR/../lib
# shellcheck source=steps.sh
source "$repo/e2e/lib/steps.sh"

for tool in docker kind kubectl helm ffmpeg curl node; do
  command -v "$tool" >/dev/null || { e2e_log "$tool is not on PATH (needed: docker kind kubectl helm ffmpeg curl node)"; exit 1; }
done
docker info >/dev/null 2>&1 || { e2e_log "no Docker engine answers (docker info failed): make e2e-kind needs Docker"; exit 1; }

cluster="${KIND_CLUSTER_NAME:-flux-rtmpd-e2e}"
registry="${IMAGE_REGISTRY:-ghcr.io/fluxiot}"
release=rtmpd-operator
operator_ns=rtmpd-system
app_ns=e2e-media
key="kind$RANDOM"
version="$(node -p 'require(process.argv[1]).version' "$repo/package.json")"
work="$(mktemp -d "${TMPDIR:-/tmp}/flux-rtmpd-kind.XXXXXX")"
pids=()
created=0


cleanup() {
  local rc=$? pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if ((rc != 0 && created)); then
    e2e_log "failed (exit $rc); cluster state and logs in $work"
    kubectl get rtmpservers,deployments,pods,pvc,svc -A -o wide >"$work/state.txt" 2>&1 || true
    kind export logs "$work/kind-logs" --name "$cluster" >/dev/null 2>&1 || true
  fi
  if [[ "${E2E_KIND_KEEP:-0}" == 1 ]]; then
    e2e_log "E2E_KIND_KEEP=1: kind cluster $cluster and $work kept (kind delete cluster --name $cluster)"
  else
    if ((created)); then kind delete cluster --name "$cluster" >&2 || true; fi
    ((rc == 0)) && rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT

# port_forward TARGET NAMESPACE REMOTE_PORT...: forwards free local ports (kept
# running until the end) and sets `forwarded` to them, in order. Not in a
# subshell, so the kubectl process is ours to stop.
forwarded=()
port_forward() {
  local target="$1" ns="$2"; shift 2
  local log="$work/port-forward-${target//\//-}.log" spec=() p
  for p in "$@"; do spec+=(":$p"); done
  kubectl -n "$ns" port-forward "$target" "${spec[@]}" >"$log" 2>&1 &
  pids+=("$!")
  forwarded=()
  for p in "$@"; do
    retry 30 "kubectl port-forward $target to $p" grep -q "^Forwarding from 127.0.0.1:[0-9]* -> $p\$" "$log"
    forwarded+=("$(sed -n "s/^Forwarding from 127.0.0.1:\([0-9]*\) -> $p\$/\1/p" "$log" | head -n 1)")
  done
}

# --- kind-specific: the cluster and the images ----------------------------------
e2e_log "creating kind cluster $cluster"
kind_args=(create cluster --name "$cluster" --config "$here/kind-config.yaml" --wait 180s --kubeconfig "$work/kubeconfig")
[[ -n "${KIND_NODE_IMAGE:-}" ]] && kind_args+=(--image "$KIND_NODE_IMAGE")
created=1
kind "${kind_args[@]}" >&2
export KUBECONFIG="$work/kubeconfig"

e2e_log "building the images ($registry/rtmpd:$version, $registry/rtmpd-operator:$version)"
IMAGE_REGISTRY="$registry" "$repo/hack/images.sh" >&2
kind load docker-image --name "$cluster" "$registry/rtmpd:$version" "$registry/rtmpd-operator:$version" >&2

# --- the journey: the same steps as make e2e ------------------------------------
helm_install "$release" "$operator_ns" --set "image.repository=$registry/rtmpd-operator"
kubectl create namespace "$app_ns" >&2
name="$(apply_rtmpserver "$app_ns" "$repo/examples/rtmpserver.yaml")"
wait_children "$app_ns" "$name"
wait_ready "$app_ns" "$name"

port_forward "service/$name" "$app_ns" 1935 8082
rtmp_port="${forwarded[0]}" http_port="${forwarded[1]}"
e2e_log "service/$name forwarded: rtmp 127.0.0.1:$rtmp_port, http 127.0.0.1:$http_port"
publish "rtmp://127.0.0.1:$rtmp_port/live/$key" 90 >"$work/publish.log" 2>&1 &
pids+=("$!")
check_api "http://127.0.0.1:$http_port" live "$key" "$work/api"

port_forward "service/$release-metrics" "$operator_ns" 8080
metrics_port="${forwarded[0]}"
check_operator_metrics "http://127.0.0.1:$metrics_port"

for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
pids=()
delete_and_check_cleanup "$app_ns" "$name"
kubectl -n "$app_ns" delete pvc -l "app.kubernetes.io/instance=$name" --wait=false >&2
helm_uninstall "$release" "$operator_ns"
e2e_log "kind e2e passed"

#!/usr/bin/env bash
# `make e2e-kind` (and the last part of `make test`): the product on a real kind
# cluster, built and run with no image registry.
#
# Named steps, run in order; each prints its time, the run ends with
# "e2e-kind: N passed, N failed". To add a check, write a function (here, in
# e2e/kind/steps.sh or, if the local suite runs it too, e2e/lib/steps.sh) and a
# `step NAME function args` line below.
#
# The whole run holds one machine-wide lock (hack/docker/engine.sh), so runs
# from several clones take turns; the cluster's name is unique per clone. A
# Docker engine is started if none answers and stopped at the end by the run
# that started it. Everything built is cached by hack/ (see the README).
#
# Needs: node (the repo's, after `make setup`), ffmpeg, ffprobe, curl, openssl (test certificates), go (for the
# first build of the Kubernetes binaries), root or sudo (Debian packages, dockerd).
# `e2e/kind/run.sh --prepare` stops after the Docker engine, the tools, the images
# and the node image are built (and cached).
# Environment:
#   KIND_CLUSTER_NAME  cluster name (default flux-rtmpd-<hash of this clone's path>)
#   KIND_NODE_IMAGE    a node image to use instead of building one (e.g. kindest/node:v1.36.3)
#   IMAGE_BASE         local (default: base images from Debian and npm) or registry (Docker Hub)
#   IMAGE_REGISTRY     name prefix of every image the run builds, loads and runs: rtmpd, its -transcode
#                      variant, the operator (default ghcr.io/fluxiot, as hack/images.sh)
#   E2E_KIND_KEEP=1    keep the cluster, the work dir and the Docker engine afterwards
#   E2E_TIMEOUT        seconds per wait (default 300: real pods on a busy 2-core machine start slowly)
set -euo pipefail
export E2E_TIMEOUT="${E2E_TIMEOUT:-300}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=e2e/lib/steps.sh
source "$repo/e2e/lib/steps.sh"
# shellcheck source=e2e/kind/steps.sh
source "$here/steps.sh"
progress_name=e2e-kind
# shellcheck source=hack/docker/engine.sh
source "$repo/hack/docker/engine.sh"
# shellcheck source=hack/kind-cluster.sh
source "$repo/hack/kind-cluster.sh"

for tool in node ffmpeg ffprobe curl openssl go; do
  command -v "$tool" >/dev/null || { e2e_log "$tool is not on PATH (needed: node ffmpeg ffprobe curl openssl go)"; exit 1; }
done

export KIND_CLUSTER="${KIND_CLUSTER_NAME:-flux-rtmpd-$(printf '%s' "$repo" | sha256sum | cut -c1-8)}"
registry="${IMAGE_REGISTRY:-ghcr.io/fluxiot}"
version="$(node -p 'require(process.argv[1]).version' "$repo/package.json")"
release=rtmpd-operator
operator_ns=rtmpd-system
operator_pods="app.kubernetes.io/instance=$release,app.kubernetes.io/component=operator"
app_ns=e2e-media
key="kind$RANDOM"
# The reconnecting publisher's stream: its recordings are apart from the first publish's.
live_key="${key}r"
work="$(mktemp -d "${TMPDIR:-/tmp}/flux-rtmpd-kind.XXXXXX")"
export KUBECONFIG="$work/kubeconfig"
pids=()
passed=0
current=""
started=$SECONDS

stop_background() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  pids=()
}

cleanup() {
  local rc=$?
  stop_background
  if ((rc != 0)); then
    e2e_log "FAILED in step ${current:-?} (exit $rc); state and logs in $work"
    if grep -qx "$KIND_CLUSTER" <<<"$(kind get clusters 2>/dev/null)"; then
      kubectl get rtmpservers,deployments,statefulsets,pods,pvc,svc,leases -A -o wide >"$work/state.txt" 2>&1 || true
      kind export logs "$work/kind-logs" --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
    fi
  fi
  if [[ "${E2E_KIND_KEEP:-0}" == 1 ]]; then
    e2e_log "E2E_KIND_KEEP=1: cluster $KIND_CLUSTER (KUBECONFIG=$KUBECONFIG), $work and the Docker engine are kept"
  else
    kind delete cluster --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
    ((rc == 0)) && rm -rf "$work"
    docker_session_end
  fi
  echo "e2e-kind: $passed passed, $((rc == 0 ? 0 : 1)) failed ($((SECONDS - started))s)"
  exit "$rc"
}
trap cleanup EXIT

# step NAME COMMAND...: one named check; a failure ends the run (the later steps
# build on it) and names the step.
step() {
  current="$1"
  shift
  local t0=$SECONDS
  e2e_log "── $current"
  "$@"
  passed=$((passed + 1))
  e2e_log "── $current: ok in $((SECONDS - t0))s"
}

# port_forward TARGET NAMESPACE REMOTE_PORT...: forwards free local ports (kept
# running until the end) and sets `forwarded` to them, in order.
forwarded=()
port_forward() {
  local target="$1" ns="$2"
  shift 2
  local log="$work/port-forward-${target//\//-}.log" spec=() p
  for p in "$@"; do spec+=(":$p"); done
  kubectl -n "$ns" port-forward "$target" "${spec[@]}" >"$log" 2>&1 &
  pids+=("$!")
  forwarded=()
  for p in "$@"; do
    retry 30 "kubectl port-forward $target to $p" grep -q "^Forwarding from 127.0.0.1:[0-9]* -> $p\$" "$log"
    forwarded+=("$(sed -n "/^Forwarding from 127.0.0.1:\([0-9]*\) -> $p\$/{s//\1/p;q}" "$log")")
  done
}

# --- the machine: Docker, the tools, the images, the cluster --------------------
use_tools() {
  "$repo/hack/k8s/build.sh" >"$work/k8s-build.log" 2>&1 || { e2e_log "hack/k8s/build.sh failed: $work/k8s-build.log"; return 1; }
  PATH="$("$repo/hack/k8s/build.sh" --bin-dir):$PATH"
  export PATH
  e2e_log "kind $(kind version | cut -d' ' -f2), kubectl and helm from $(dirname "$(command -v kind)")"
}

node_image() {
  kind_node_image
  e2e_log "node image: $KIND_NODE_IMAGE"
}

create_cluster() {
  kind delete cluster --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
  kind_cluster_config "$here/kind-config.yaml" >"$work/kind-config.yaml"
  kind_cluster_create "$KIND_CLUSTER" "$work/kind-config.yaml" "$KUBECONFIG" "$e2e_timeout"
}

# --- the product on it ------------------------------------------------------------
nodeport() { loopback_port "$KIND_CLUSTER-control-plane" "$1"; }

journey_through_port_forward() {
  port_forward "service/$name" "$app_ns" 1935 8082
  local rtmp="${forwarded[0]}" http="${forwarded[1]}"
  e2e_log "service/$name forwarded: rtmp 127.0.0.1:$rtmp, http 127.0.0.1:$http"
  publish "rtmp://127.0.0.1:$rtmp/live/$key" 60 >"$work/publish.log" 2>&1 &
  pids+=("$!")
  check_api "http://127.0.0.1:$http" live "$key" "$work/api"
  check_snapshot_size "$work/api/snapshot.jpg" 640 360
  check_playback "rtmp://127.0.0.1:$rtmp" "http://127.0.0.1:$http" live "$key" 640 360
  stop_background
}

operator_metrics_of_leader() {
  port_forward "pod/$(lease_holder "$operator_ns" rtmpd-operator.media.fluxiot.io)" "$operator_ns" 8080
  check_operator_metrics "http://127.0.0.1:${forwarded[0]}"
}

# A publisher that reconnects runs through the NodePort from here to the end.
rtmp_np="" http_np=""
publisher_through_nodeport() {
  rtmp_np="$(nodeport 31935)" http_np="$(nodeport 31882)"
  e2e_log "NodePorts published on 127.0.0.1: rtmp $rtmp_np, http $http_np"
  publish_reconnecting "rtmp://127.0.0.1:$rtmp_np/live/$live_key" 900 "$work/publisher-events.txt" >"$work/publisher.log" 2>&1 &
  pids+=("$!")
  retry 60 "rtmp/live/$live_key through the NodePort" stream_listed "http://127.0.0.1:$http_np" "rtmp/live/$live_key"
  check_playback "rtmp://127.0.0.1:$rtmp_np" "http://127.0.0.1:$http_np" live "$live_key" 640 360
}

# The recordings before a pod's deletion: kept on the volume, seen by the new pod, playable.
delete_pod_during_publish() {
  local old since outage files
  sleep 10 # some seconds of recording
  old="$(pods_of "$app_ns" "app.kubernetes.io/instance=$name")"
  since="$(date +%s.%N)"
  e2e_log "deleting pod $old while the publisher is live"
  kubectl -n "$app_ns" delete pod "$old" --wait=false >&2
  outage="$(outage_after "http://127.0.0.1:$http_np" "rtmp/live/$live_key" "$since" "$work/publisher-events.txt")"
  e2e_log "pod deletion: $outage"
  echo "pod deletion: $outage" >>"$work/outages.txt"
  retry 60 "the recordings of both pods on the volume" recordings_at_least 2 "$app_ns" "recordings-$name-0" live "$live_key" || return 1
  mapfile -t files < <(recordings_on_volume "$app_ns" "recordings-$name-0" live "$live_key")
  check_recording_plays "${files[0]}" "$work/before-deletion.mp4" 5
  local new seen
  new="$(pods_of "$app_ns" "app.kubernetes.io/instance=$name")"
  seen="$(recordings_seen_by_pod "$app_ns" "$new" "$(recordings_dir)/live/$live_key")"
  grep -qx "$(basename "${files[0]#*:}")" <<<"$seen" ||
    e2e_die "pod $new does not see $(basename "${files[0]#*:}") (it sees: $seen)" || return 1
  e2e_log "pod $new sees the recording $(basename "${files[0]#*:}") made by $old"
}

recordings_dir() {
  kubectl -n "$app_ns" get deployment,statefulset -l "app.kubernetes.io/instance=$name" -o \
    jsonpath='{.items[0].spec.template.spec.containers[0].volumeMounts[?(@.name=="recordings")].mountPath}'
}

# A change of the RtmpServer rolls its pods: what the live publisher sees.
rolling_update() {
  local since outage
  # RTMPS and HTTPS (spec.tls) with a self-signed certificate: new listeners and a
  # new Secret volume, a change rtmpd cannot take live, so the operator rolls the pods.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$name" \
    -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
  kubectl -n "$app_ns" create secret tls "$name-tls" --cert "$work/tls.crt" --key "$work/tls.key" >&2
  since="$(date +%s.%N)"
  kubectl -n "$app_ns" patch rtmpserver "$name" --type merge -p "{\"spec\":{\"tls\":{\"secretName\":\"$name-tls\",\"https\":true}}}" >&2
  outage="$(outage_after "http://127.0.0.1:$http_np" "rtmp/live/$live_key" "$since" "$work/publisher-events.txt")"
  e2e_log "rolling update: $outage"
  echo "rolling update: $outage" >>"$work/outages.txt"
  wait_ready "$app_ns" "$name"
}

# The fleet: the same RtmpServer scaled to 3 replicas, each with its own
# ReadWriteOnce volumes, the live publisher still on its pod.
# After rolling_update: the live stream over RTMPS on 443 (the unprivileged rtmpd
# binds it through the pod's sysctl) and HTTPS-FLV, through the Service.
rtmps_through_port_forward() {
  port_forward "service/$name" "$app_ns" 443 8443
  check_playback "rtmps://127.0.0.1:${forwarded[0]}" "https://127.0.0.1:${forwarded[1]}" live "$live_key" 640 360
}

fleet_scale_out() {
  kubectl -n "$app_ns" scale rtmpserver "$name" --replicas=3 >&2
  wait_ready "$app_ns" "$name"
  local claims
  claims="$(kubectl -n "$app_ns" get pvc -l "app.kubernetes.io/instance=$name" -o jsonpath='{range .items[*]}{.metadata.name} {.spec.accessModes[0]}{"\n"}{end}')"
  [[ "$(grep -c ' ReadWriteOnce$' <<<"$claims")" -eq 6 ]] || e2e_die "expected 6 ReadWriteOnce claims (2 per pod), got: $claims" || return 1
  retry 60 "3 pods in the fleet's Leases" fleet_pod_leases_are "$app_ns" "$name" 3
  retry 60 "rtmp/live/$live_key through the NodePort" stream_listed "http://127.0.0.1:$http_np" "rtmp/live/$live_key"
}

fleet_plays_anywhere() {
  local owner selector="app.kubernetes.io/instance=$name"
  owner="$(stream_owner "$app_ns" "$name" "rtmp/live/$live_key")" || e2e_die "no claim of rtmp/live/$live_key" || return 1
  plays_through "rtmp://127.0.0.1:$rtmp_np" "http://127.0.0.1:$http_np" live "$live_key" 20 || return 1
  # Players that landed on another pod than the owner were served by a relay from it.
  # Read anew until one shows: a read through the API server's pod proxy can fail once.
  retry 30 "a relay started on a pod other than the owner $owner" relayed_besides "$app_ns" "$selector" "$owner" ||
    e2e_die "no play landed on a pod other than the owner $owner" || return 1
  e2e_log "owner $owner; relays started on the other pods: $(relays_started_besides "$app_ns" "$selector" "$owner")"
}

fleet_status() {
  retry 60 "the RtmpServer's status: 1 stream, 3 pods" fleet_status_is "$app_ns" "$name" 1 3
  local printed
  printed="$(kubectl -n "$app_ns" get rtmpserver "$name")"
  e2e_log "kubectl get rtmp: $(tr -s ' ' <<<"$printed" | tr '\n' ';')"
  awk 'NR == 2 { exit !($4 == 1) }' <<<"$printed" || e2e_die "the STREAMS column does not show 1" || return 1
}

fleet_delete_owner() {
  local owner since outage
  owner="$(stream_owner "$app_ns" "$name" "rtmp/live/$live_key")" || e2e_die "no claim of rtmp/live/$live_key" || return 1
  since="$(date +%s.%N)"
  e2e_log "deleting the owner $owner while the publisher is live"
  kubectl -n "$app_ns" delete pod "$owner" --wait=false >&2
  outage="$(outage_after "http://127.0.0.1:$http_np" "rtmp/live/$live_key" "$since" "$work/publisher-events.txt")"
  e2e_log "owner deletion (3 replicas): $outage; now owned by $(stream_owner "$app_ns" "$name" "rtmp/live/$live_key")"
  echo "owner deletion (3 replicas): $outage" >>"$work/outages.txt"
  plays_through "rtmp://127.0.0.1:$rtmp_np" "http://127.0.0.1:$http_np" live "$live_key" 4
}

# --- forwarding and the PROXY protocol, on two small RtmpServers of their own ------
# "origin" stands for a second origin and serves RTMP and RTMPS (a certificate of
# a CA the suite makes); "edge" forwards each stream of app live to it twice
# (spec.forwards): over RTMP to a stream key only a Secret holds (urlSecrets), and
# over RTMPS trusting that CA (caSecret). "balancer", a relay pod, sends edge the
# PROXY protocol; edge's spec.service.proxyProtocol trusts that pod's address only.
origin_host="origin.$app_ns.svc"
forward_key="${key}f" proxy_key="${key}p"
# The destination's stream key, which only the Secret edge-forward holds.
restream_key="youtube$RANDOM$RANDOM"
edge_token="" edge_rtmp="" edge_http="" origin_rtmp="" origin_http="" forward_publisher="" balancer_ip="" headerless=""

# small_rtmpserver NAME [SPEC LINES]: an RtmpServer of one small pod that neither
# records nor takes snapshots, with SPEC LINES (YAML indented by 2) added to its spec.
small_rtmpserver() {
  cat <<YAML
apiVersion: media.fluxiot.io/v1alpha1
kind: RtmpServer
metadata: { name: $1 }
spec:
  resources: { requests: { cpu: 50m, memory: 96Mi }, limits: { memory: 512Mi } }
  storage: { recordings: { size: 64Mi }, keyframes: { size: 64Mi }, reclaimPolicy: Delete }
  recording: { enabled: false }
  snapshot: { enabled: false }
${2:-}
YAML
}

restream_servers() {
  make_private_ca "$work" "$origin_host"
  kubectl -n "$app_ns" create secret tls origin-tls --cert "$work/$origin_host.crt" --key "$work/$origin_host.key" >&2
  small_rtmpserver origin '  tls: { secretName: origin-tls }' | kubectl -n "$app_ns" apply -f - >&2
  kubectl -n "$app_ns" create secret generic edge-forward-ca --from-file=ca.crt="$work/ca.crt" >&2
  kubectl -n "$app_ns" create secret generic edge-forward --from-literal=origin="rtmp://$origin_host:1935/restream/$restream_key" >&2
  edge_token="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  kubectl -n "$app_ns" create secret generic edge-api-token --from-literal=token="$edge_token" >&2
  balancer_ip="$(run_balancer "$app_ns" balancer "$registry/rtmpd:$version" "edge.$app_ns.svc" 1935)"
  e2e_log "balancer pod at $balancer_ip"
  small_rtmpserver edge "$(
    cat <<YAML
  service:
    proxyProtocol: { from: ["$balancer_ip/32"] }
  auth: { apiTokenSecret: { name: edge-api-token, key: token } }
  forwards:
    rules:
      - app: live
        urlSecrets: [{ name: edge-forward, key: origin }]
        urls: ["rtmps://$origin_host:443/tls/{key}"]
    caSecret: { name: edge-forward-ca, key: ca.crt }
YAML
  )" | kubectl -n "$app_ns" apply -f - >&2
  wait_ready "$app_ns" origin
  wait_ready "$app_ns" edge
}

# ffmpeg publishes to edge through a port-forward: from the pod's loopback,
# outside proxyProtocol.from, so rtmpd reads no header and takes it as RTMP (a
# client that reaches rtmpd directly works alongside the balancer).
forward_to_origin() {
  local id="rtmp/live/$forward_key"
  port_forward service/edge "$app_ns" 1935 8082
  edge_rtmp="rtmp://127.0.0.1:${forwarded[0]}" edge_http="http://127.0.0.1:${forwarded[1]}"
  port_forward service/origin "$app_ns" 1935 8082
  origin_rtmp="rtmp://127.0.0.1:${forwarded[0]}" origin_http="http://127.0.0.1:${forwarded[1]}"
  publish "$edge_rtmp/live/$forward_key" 900 >"$work/forward-publish.log" 2>&1 &
  forward_publisher=$!
  pids+=("$!")
  retry 60 "$id on edge" stream_listed "$edge_http" "$id"
  retry 60 "both forwards of $id sending" forwards_are "$edge_http" "$id" \
    "rtmp://$origin_host:1935/restream/*** sending" "rtmps://$origin_host:443/tls/*** sending" ||
    e2e_die "edge's forwards of $id: $(forwards_of "$edge_http" "$id" | tr '\n' ';')" || return 1
  e2e_log "edge forwards $id: $(forwards_of "$edge_http" "$id" | tr '\n' ';')"
  retry 60 "rtmp/restream/<the Secret's key> on origin, 2 s of video" video_frames_at_least "$origin_http" "rtmp/restream/$restream_key" 50
  check_playback "$origin_rtmp" "$origin_http" restream "$restream_key" 640 360
  retry 60 "rtmp/tls/$forward_key on origin, 2 s of video" video_frames_at_least "$origin_http" "rtmp/tls/$forward_key" 50
  check_playback "$origin_rtmp" "$origin_http" tls "$forward_key" 640 360
  check_secret_not_shown "$restream_key"
}

# check_secret_not_shown SECRET: edge's API (with the token), its /metrics and its
# log name the destination, redacted, and never show its stream key, SECRET.
check_secret_not_shown() {
  local pod redacted="\"destination\":\"rtmp://$origin_host:1935/restream/***\""
  pod="$(pods_of "$app_ns" app.kubernetes.io/instance=edge)"
  curl -fsS -H "Authorization: Bearer $edge_token" "$edge_http/api/v1/rtmp/streams" >"$work/edge-api.json"
  curl -fsS "$edge_http/metrics" >"$work/edge-metrics.txt"
  kubectl -n "$app_ns" logs "$pod" >"$work/edge.log"
  grep -qF "$redacted" "$work/edge-api.json" && grep -qF "$redacted" "$work/edge.log" ||
    e2e_die "edge's API or log does not name the destination as $redacted" || return 1
  ! grep -F "$1" "$work/edge-api.json" "$work/edge-metrics.txt" "$work/edge.log" >&2 ||
    e2e_die "edge shows the destination's stream key (above)" || return 1
  e2e_log "edge's API and log name the destination as rtmp://$origin_host:1935/restream/***; they and /metrics never show its key"
}

# README: a changed Secret applies from a stream's next publish; the live one keeps its destination.
forward_follows_secret() {
  local moved="youtube$RANDOM$RANDOM" pod t0 id="rtmp/live/$forward_key"
  local url="rtmp://$origin_host:1935/restream/$moved"
  pod="$(pods_of "$app_ns" app.kubernetes.io/instance=edge)"
  kubectl -n "$app_ns" create secret generic edge-forward --from-literal=origin="$url" --dry-run=client -o yaml |
    kubectl -n "$app_ns" replace -f - >&2
  t0=$SECONDS
  retry 180 "the kubelet to update the Secret's file in $pod" pod_file_is "$app_ns" "$pod" /etc/rtmpd-secrets/edge-forward/origin "$url"
  e2e_log "the changed Secret reached $pod's file after $((SECONDS - t0))s"
  stream_listed "$origin_http" "rtmp/restream/$restream_key" || e2e_die "the live stream's forward left its destination" || return 1
  ! stream_listed "$origin_http" "rtmp/restream/$moved" || e2e_die "the live stream was forwarded to the new key too" || return 1
  kill "$forward_publisher"
  retry 30 "$id to end on edge" stream_gone "$edge_http" "$id"
  publish "$edge_rtmp/live/$forward_key" 900 >"$work/forward-publish-2.log" 2>&1 &
  pids+=("$!")
  retry 60 "the next publish of $id forwarded to the Secret's new key" stream_listed "$origin_http" "rtmp/restream/$moved"
  check_playback "$origin_rtmp" "$origin_http" restream "$moved" 640 360
}

# Through the balancer: ffmpeg's connection reaches the balancer pod through a
# port-forward (on the pod's loopback), and the balancer's own connection to
# edge's Service comes from the pod's address, the one proxyProtocol.from trusts.
# Edge takes the client the PROXY header names as the publisher's address.
proxy_protocol_client_address() {
  local id="rtmp/live/$proxy_key" address
  port_forward pod/balancer "$app_ns" 1935 1936
  headerless="rtmp://127.0.0.1:${forwarded[1]}"
  publish "rtmp://127.0.0.1:${forwarded[0]}/live/$proxy_key" 900 >"$work/proxy-publish.log" 2>&1 &
  pids+=("$!")
  retry 60 "$id on edge through the balancer" stream_listed "$edge_http" "$id"
  address="$(node -p 'JSON.parse(process.argv[1]).publisher.remote_address' "$(stream_of "$edge_http" "$id" "$edge_token")")"
  [[ "$address" == "$balancer_client_address" ]] ||
    e2e_die "edge's API gives $id's publisher as $address, the PROXY header named $balancer_client_address" || return 1
  e2e_log "edge's API gives the publisher through the balancer as $address, the address its PROXY header named"
  check_playback "$edge_rtmp" "$edge_http" live "$proxy_key" 640 360
}

# edge_logged_refusal_from IP: edge's log (saved in the work dir) has a
# bad_proxy_header refusal of a connection from IP.
edge_logged_refusal_from() {
  kubectl -n "$app_ns" logs "$(pods_of "$app_ns" app.kubernetes.io/instance=edge)" >"$work/edge.log" &&
    grep '"reason":"bad_proxy_header"' "$work/edge.log" | grep -F "\"balancer\":\"$1:" >/dev/null
}

# A connection from the trusted address without a header is refused and counted.
proxy_protocol_refuses_headerless() {
  local series='rtmpd_connections_refused_total{protocol="rtmp",reason="bad_proxy_header"}' before
  before="$(metric_sample "$edge_http" "$series")"
  if timeout 30 ffprobe -v error -rw_timeout 10000000 "$headerless/live/$proxy_key" >"$work/headerless.log" 2>&1; then
    e2e_die "ffprobe played through the balancer without a PROXY header" || return 1
  fi
  retry 10 "edge to count the refusal in $series" metric_above "$edge_http" "$series" "$before"
  # The log reaches kubectl through the container runtime, after the count reached /metrics.
  retry 30 "edge's log to show a bad_proxy_header refusal of a connection from $balancer_ip" edge_logged_refusal_from "$balancer_ip" ||
    e2e_die "edge's log has no bad_proxy_header refusal of a connection from $balancer_ip" || return 1
  e2e_log "without a header from the balancer: ffprobe refused ($(head -c 200 "$work/headerless.log" | tr '\n' ' ')), $series $before -> $(metric_sample "$edge_http" "$series")"
}

# --- adaptive bitrate on the transcode image --------------------------------------
# "abr" has a transcode rule and no spec.image: the operator runs the image whose
# ffmpeg transcodes. One cheap rendition (240p) of the 640x360 publish.
abr_key="${key}t"

transcode_server() {
  small_rtmpserver abr "$(
    cat <<YAML
  transcode:
    rules:
      - app: live
        renditions: [{ name: 240p, height: 240, videoBitrate: 300, audioBitrate: 64 }]
YAML
  )" | kubectl -n "$app_ns" apply -f - >&2
  wait_ready "$app_ns" abr
  local image
  image="$(kubectl -n "$app_ns" get pods -l app.kubernetes.io/instance=abr -o jsonpath='{.items[0].spec.containers[0].image}')"
  [[ "$image" == "$registry/rtmpd:$version-transcode" ]] || e2e_die "abr's pod runs $image, not the transcode image" || return 1
  e2e_log "abr's pod runs $image"
}

# rendition_live HTTP_BASE SOURCE_ID RENDITION_ID: the source's transcode runs with the
# rendition, which is listed as transcoded from the source.
rendition_live() {
  local source rendition
  source="$(stream_of "$1" "$2")" && rendition="$(stream_of "$1" "$3")" || return 1
  node -e '
    const [source, rendition, id] = process.argv.slice(1).map((a, i) => (i < 2 ? JSON.parse(a) : a));
    const ok = source.transcode?.state === "running" && source.transcode.renditions.some((r) => r.stream_id === id) &&
      rendition.transcoded_from === source.stream_id;
    process.exit(ok ? 0 : 1);' "$source" "$rendition" "$3"
}

transcode_rendition() {
  local source="rtmp/live/$abr_key" rendition="rtmp/live/${abr_key}_240p" master
  port_forward service/abr "$app_ns" 1935 8082
  local rtmp="rtmp://127.0.0.1:${forwarded[0]}" http="http://127.0.0.1:${forwarded[1]}"
  publish "$rtmp/live/$abr_key" 900 >"$work/abr-publish.log" 2>&1 &
  pids+=("$!")
  retry 120 "$rendition, transcoded from $source, live" rendition_live "$http" "$source" "$rendition" ||
    e2e_die "$source: $(stream_of "$http" "$source")" || return 1
  e2e_log "$source: $(node -p 'JSON.stringify(JSON.parse(process.argv[1]).transcode)' "$(stream_of "$http" "$source")")"
  # rtmpd answers once the source and each rendition has an HLS segment (up to 15 s), which this request starts.
  master="$(curl -fsS --max-time 30 "$http/live/$abr_key/master.m3u8")"
  grep -qx "\.\./${abr_key}_240p/index\.m3u8" <<<"$master" || e2e_die "master.m3u8 does not list the rendition: $master" || return 1
  e2e_log "master.m3u8 lists the source and ../${abr_key}_240p/index.m3u8"
  check_playback "$rtmp" "$http" live "${abr_key}_240p" 426 240
}

step docker docker_session_begin
step tools use_tools
step images env IMAGE_REGISTRY="$registry" "$repo/hack/images.sh"
step images-small-and-safe check_images "$registry" "$version"
step node-image node_image
# --prepare: only the machine's part above (all of it cached), so that make test
# builds it while vitest runs and the full run finds it done.
[[ "${1:-}" != --prepare ]] || exit 0
step cluster create_cluster
step load-images kind_cluster_load "$KIND_CLUSTER" "$registry" "$version"
# The operator runs the rtmpd images the run loaded (the transcode variant's repository follows rtmpdImage's).
step operator helm_install "$release" "$operator_ns" --set "image.repository=$registry/rtmpd-operator" \
  --set "rtmpdImage.repository=$registry/rtmpd" --set replicaCount=2
step operator-pods check_pods_secure "$operator_ns" "$operator_pods" rtmpd-operator.js
step leader-election check_leader_election "$operator_ns" "$operator_pods" rtmpd-operator.media.fluxiot.io
kubectl create namespace "$app_ns" >&2
name="$(apply_rtmpserver "$app_ns" "$here/rtmpserver.yaml")"
step rtmpserver-children wait_children "$app_ns" "$name"
step rtmpserver-ready wait_ready "$app_ns" "$name"
step rtmpd-pods check_pods_secure "$app_ns" "app.kubernetes.io/instance=$name" rtmpd.js
step journey-port-forward journey_through_port_forward
step operator-metrics operator_metrics_of_leader
step dns check_dns "$app_ns" "$name" "$registry/rtmpd:$version"
step nodeport-publish-play publisher_through_nodeport
step delete-pod-during-publish delete_pod_during_publish
step fleet-scale-out fleet_scale_out
step fleet-20-plays-any-pod fleet_plays_anywhere
step fleet-status-counts fleet_status
step fleet-delete-owner fleet_delete_owner
step rolling-update rolling_update
step rtmps-https rtmps_through_port_forward
stop_background
step delete-and-cleanup delete_and_check_cleanup "$app_ns" "$name"
step restream-servers restream_servers
step forward-rtmp-rtmps forward_to_origin
step forward-secret-change forward_follows_secret
step proxy-protocol-client-address proxy_protocol_client_address
step proxy-protocol-refuses-headerless proxy_protocol_refuses_headerless
stop_background
step transcode-server transcode_server
step transcode-rendition transcode_rendition
stop_background
step helm-uninstall helm_uninstall "$release" "$operator_ns"
e2e_log "kind e2e passed; what the live publisher saw: $(tr '\n' ';' <"$work/outages.txt")"

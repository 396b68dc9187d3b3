#!/usr/bin/env bash
# The user's journey as steps both end-to-end suites run: `make e2e` (vitest,
# e2e/local, on the local control plane) and `make e2e-kind` (e2e/kind/run.sh).
# Only cluster creation, image loading and how rtmpd is reached differ between them.
#
# Source it (`source e2e/lib/steps.sh`) or run one step:
#   e2e/lib/steps.sh helm-install RELEASE NAMESPACE [HELM ARGS...]
#   e2e/lib/steps.sh apply-rtmpserver NAMESPACE FILE        prints the RtmpServer's name
#   e2e/lib/steps.sh stream-secret NAMESPACE SECRET KEY     prints a stream key's secret
#   e2e/lib/steps.sh wait-children NAMESPACE NAME           StatefulSet, Services, ConfigMap, PVCs exist
#   e2e/lib/steps.sh wait-ready NAMESPACE NAME [TIMEOUT]    condition Ready=True
#   e2e/lib/steps.sh publish RTMP_URL SECONDS               ffmpeg test pattern + tone, H.264/AAC
#   e2e/lib/steps.sh check-api HTTP_BASE APP KEY OUTDIR     stream listed, JPEG snapshot, /metrics
#   e2e/lib/steps.sh check-operator-metrics METRICS_BASE    the operator leads and reconciles
#   e2e/lib/steps.sh delete-and-check-cleanup NAMESPACE NAME
#   e2e/lib/steps.sh helm-uninstall RELEASE NAMESPACE
#
# Needs kubectl and helm on PATH pointed at the cluster (KUBECONFIG), curl, ffmpeg, node.
# Progress goes to stderr; stdout carries only the values a step prints.
set -euo pipefail

e2e_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
e2e_chart="$e2e_repo/charts/rtmpd-operator"
e2e_timeout="${E2E_TIMEOUT:-180}"

e2e_log() { printf 'e2e: %s\n' "$*" >&2; }
e2e_die() { e2e_log "FAILED: $*"; return 1; }

# retry SECONDS WHAT CMD...: CMD until it succeeds, or fail after SECONDS.
retry() {
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || e2e_die "timed out after ${seconds}s waiting for $what" || return 1
    sleep 1
  done
}

# helm-install RELEASE NAMESPACE [HELM ARGS...]: install or upgrade the chart and
# wait until the operator Deployment is Available.
helm_install() {
  local release="$1" ns="$2"; shift 2
  e2e_log "helm install $release into $ns"
  helm upgrade --install "$release" "$e2e_chart" --namespace "$ns" --create-namespace \
    --wait --timeout "${e2e_timeout}s" "$@" >&2
  kubectl -n "$ns" wait --for=condition=Available deployment \
    -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=operator" --timeout="${e2e_timeout}s" >&2
}

# helm-uninstall RELEASE NAMESPACE: the release and its operator Deployment are gone.
helm_uninstall() {
  local release="$1" ns="$2"
  e2e_log "helm uninstall $release"
  helm uninstall "$release" --namespace "$ns" --wait --timeout "${e2e_timeout}s" >&2
  retry 60 "the operator Deployment of $release to go" none_labelled "$ns" deployment "app.kubernetes.io/instance=$release"
}

# apply-rtmpserver NAMESPACE FILE: prints the name of the RtmpServer applied.
apply_rtmpserver() {
  local ns="$1" file="$2" name
  # The file may carry other objects (the Secrets an RtmpServer names) before it.
  name="$(kubectl -n "$ns" apply -f "$file" -o name | sed -n 's|^rtmpserver[^/]*/||p')"
  [[ -n "$name" ]] || e2e_die "kubectl apply -f $file printed no name" || return 1
  e2e_log "applied rtmpserver/$name in $ns"
  echo "$name"
}

# stream-secret NAMESPACE SECRET KEY: prints the secret of stream key KEY from a
# keys Secret (what a publisher appends as ?secret=).
stream_secret() {
  kubectl -n "$1" get secret "$2" -o "jsonpath={.data.$3}" | base64 -d
}

# The PVC names an RtmpServer's pods use, one line each as NAME SHARED|PER_POD:
# an existingClaim and a ReadWriteMany claim (<name>-<volume>) are shared by
# every pod; otherwise each pod has its own (<volume>-<name>-<ordinal>).
# Fails when the RtmpServer cannot be read: an empty list would check no claim.
claims_of() {
  local ns="$1" name="$2" volume existing modes replicas i
  replicas="$(kubectl -n "$ns" get rtmpserver "$name" -o jsonpath='{.spec.replicas}')" || return 1
  for volume in recordings keyframes; do
    existing="$(kubectl -n "$ns" get rtmpserver "$name" -o jsonpath="{.spec.storage.$volume.existingClaim}")" || return 1
    modes="$(kubectl -n "$ns" get rtmpserver "$name" -o jsonpath="{.spec.storage.$volume.accessModes}")" || return 1
    if [[ -n "$existing" ]]; then
      echo "$existing shared"
    elif [[ "$modes" == *ReadWriteMany* ]]; then
      echo "$name-$volume shared"
    else
      for ((i = 0; i < replicas; i++)); do echo "$volume-$name-$i per-pod"; done
    fi
  done
}

exists() { kubectl -n "$1" get "$2" "$3" -o name >/dev/null 2>&1; }

# none_labelled NAMESPACE KIND SELECTOR: no such object is left.
none_labelled() {
  local left
  left="$(kubectl -n "$1" get "$2" -l "$3" -o name)" || return 1
  [[ -z "$left" ]]
}

# owned_by NAMESPACE KIND NAME RTMPSERVER: the object's controller is that RtmpServer.
owned_by() {
  local owner
  owner="$(kubectl -n "$1" get "$2" "$3" -o jsonpath='{.metadata.ownerReferences[?(@.controller==true)].kind}/{.metadata.ownerReferences[?(@.controller==true)].name}')"
  [[ "$owner" == "RtmpServer/$4" ]]
}

# controller_of NAMESPACE KIND NAME: Kind/name of the object's controller, if any.
controller_of() {
  kubectl -n "$1" get "$2" "$3" -o jsonpath='{.metadata.ownerReferences[?(@.controller==true)].kind}/{.metadata.ownerReferences[?(@.controller==true)].name}'
}

# wait-children NAMESPACE NAME: the operator made the StatefulSet, the Services,
# the ConfigMap and the volume claims, each owned by the RtmpServer. Claims follow
# reclaimPolicy: with Delete a shared claim is the RtmpServer's and a per-pod claim
# its StatefulSet's (garbage-collected with it); with Retain nobody owns them.
wait_children() {
  local ns="$1" name="$2" claim sharing policy owner claims
  retry "$e2e_timeout" "statefulset/$name" exists "$ns" statefulset "$name"
  retry 30 "service/$name" exists "$ns" service "$name"
  retry 30 "service/$name-pods" exists "$ns" service "$name-pods"
  retry 30 "configmap/$name-rtmpd" exists "$ns" configmap "$name-rtmpd"
  for kind in statefulset service configmap; do
    local child="$name"
    [[ "$kind" == configmap ]] && child="$name-rtmpd"
    owned_by "$ns" "$kind" "$child" "$name" || e2e_die "$kind/$child is not controlled by rtmpserver/$name" || return 1
  done
  policy="$(kubectl -n "$ns" get rtmpserver "$name" -o jsonpath='{.spec.storage.reclaimPolicy}')"
  claims="$(claims_of "$ns" "$name")" || e2e_die "cannot read the claims of rtmpserver/$name" || return 1
  while read -r claim sharing; do
    retry "$e2e_timeout" "pvc/$claim" exists "$ns" pvc "$claim"
    owner="$(controller_of "$ns" pvc "$claim")"
    if [[ "$policy" == Delete ]]; then
      case "$sharing/$owner" in
        shared/RtmpServer/"$name" | per-pod/StatefulSet/"$name") ;;
        *) e2e_die "pvc/$claim ($sharing) is controlled by '$owner' (reclaimPolicy Delete)" || return 1 ;;
      esac
    elif [[ "$owner" != / ]]; then
      e2e_die "pvc/$claim is controlled by $owner although reclaimPolicy is $policy" || return 1
    fi
  done <<<"$claims"
  e2e_log "rtmpserver/$name owns its statefulset, services, configmap; claims: $(tr '\n' ' ' <<<"$claims")(reclaimPolicy $policy)"
}

# wait-ready NAMESPACE NAME [TIMEOUT]
wait_ready() {
  local ns="$1" name="$2" timeout="${3:-$e2e_timeout}"
  e2e_log "waiting for rtmpserver/$name to be Ready"
  if ! kubectl -n "$ns" wait --for=condition=Ready "rtmpserver/$name" --timeout="${timeout}s" >&2; then
    kubectl -n "$ns" get rtmpserver "$name" -o yaml >&2 || true
    kubectl -n "$ns" get statefulset,pods,pvc -l "app.kubernetes.io/instance=$name" -o wide >&2 || true
    e2e_die "rtmpserver/$name did not become Ready"
    return 1
  fi
  kubectl -n "$ns" get rtmpserver "$name" -o wide >&2
}

# publish RTMP_URL SECONDS: pushes a live test pattern with a tone, as OBS would
# (H.264 with a keyframe every second, AAC), in real time for SECONDS.
publish() {
  local url="$1" seconds="$2"
  e2e_log "publishing to $url for ${seconds}s"
  exec ffmpeg -hide_banner -loglevel error -nostdin -re \
    -f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=44100" \
    -t "$seconds" -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 25 -keyint_min 25 \
    -c:a aac -b:a 64k -ar 44100 -f flv "$url"
}

# stream_listed HTTP_BASE STREAM_ID: the stream list names STREAM_ID with a video track.
stream_listed() {
  curl -fsS --max-time 5 "$1/api/v1/rtmp/streams" 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      // An empty or cut answer (curl failed while a pod restarts) is "not yet", not a stack trace.
      let streams = [];
      try { ({ streams } = JSON.parse(s)); } catch {}
      const st = streams.find((x) => x.stream_id === process.argv[1]);
      process.exit(st && st.video && st.video.codec && st.bytes_in > 0 ? 0 : 1);
    });' "$2"
}

# is_jpeg FILE: starts with the JPEG SOI marker and is not tiny.
is_jpeg() {
  [[ -s "$1" && "$(head -c 3 "$1" | od -An -tx1 | tr -d ' \n')" == ffd8ff && "$(wc -c <"$1")" -gt 1000 ]]
}

fetch_snapshot() {
  curl -fsS --max-time 15 -o "$3" "$1/api/v1/rtmp/streams/$2/snapshot" 2>/dev/null && is_jpeg "$3"
}

# check-api HTTP_BASE APP KEY OUTDIR: with a publisher live on APP/KEY, the API
# lists it, serves a JPEG snapshot, and /metrics counts it.
check_api() {
  local base="$1" app="$2" key="$3" out="$4"
  local id="rtmp/$app/$key" encoded="rtmp%2F$app%2F$key"
  mkdir -p "$out"
  retry 60 "$base/health" curl -fsS --max-time 5 -o /dev/null "$base/health"
  retry 60 "$id in $base/api/v1/rtmp/streams" stream_listed "$base" "$id"
  curl -fsS "$base/api/v1/rtmp/streams" >"$out/streams.json"
  curl -fsS "$base/api/v1/rtmp/streams/$encoded" >"$out/stream.json"
  e2e_log "listed: $(cat "$out/stream.json")"
  retry 60 "a JPEG snapshot of $id" fetch_snapshot "$base" "$encoded" "$out/snapshot.jpg"
  e2e_log "snapshot: $(wc -c <"$out/snapshot.jpg") bytes of JPEG in $out/snapshot.jpg"
  curl -fsS "$base/metrics" >"$out/metrics.txt"
  grep -Eq '^rtmpd_publishers(\{[^}]*\})? [1-9]' "$out/metrics.txt" ||
    e2e_die "/metrics does not count the live publisher (rtmpd_publishers)" || return 1
  grep -Eq "^rtmpd_stream_video_frames_total\{[^}]*key=\"$key\"[^}]*\} [1-9]" "$out/metrics.txt" ||
    e2e_die "/metrics has no video frames for key=\"$key\"" || return 1
  e2e_log "metrics: $(grep -c '^rtmpd_' "$out/metrics.txt") rtmpd_ series, the stream counted"
}

# operator_leads_and_reconciled METRICS_BASE: the operator's /metrics shows it
# leading and a successful reconcile (controller-runtime's metric names).
operator_leads_and_reconciled() {
  local body
  body="$(curl -fsS --max-time 5 "$1/metrics")" || return 1
  grep -Eq '^controller_runtime_reconcile_total\{[^}]*result="(success|requeue_after)"[^}]*\} [1-9]' <<<"$body" &&
    grep -Eq '^leader_election_master_status(\{[^}]*\})? 1$' <<<"$body"
}

# check-operator-metrics METRICS_BASE: the operator's /metrics shows it leading
# and reconciling. Read until it does: the counter moves when a reconcile returns,
# after the children and the status it wrote, which a step may have seen already.
check_operator_metrics() {
  retry 60 "the operator's /metrics to show it leading (leader_election_master_status 1) and a successful reconcile" \
    operator_leads_and_reconciled "$1" || return 1
  e2e_log "operator metrics: leading, reconciles counted"
}

# gone NAMESPACE KIND NAME: the API server says NotFound; any other failure (the API
# unreachable, a type kubectl cannot resolve) is no proof that it went.
gone() {
  local err
  if err="$(kubectl -n "$1" get "$2" "$3" -o name 2>&1 >/dev/null)"; then return 1; fi
  [[ "$err" == *"(NotFound)"* ]]
}

# kept NAMESPACE CLAIM: the claim is there, not being deleted, and has no owner.
# Nothing deletes a claim but the garbage collector, for an owner that went (the
# operator only sets owners), so one with none now is not deleted later: no wait
# after its RtmpServer's deletion shows more.
kept() {
  local meta
  meta="$(kubectl -n "$1" get pvc "$2" -o jsonpath='{.metadata.deletionTimestamp}{.metadata.ownerReferences}')" || return 1
  [[ -z "$meta" ]]
}

# delete-and-check-cleanup NAMESPACE NAME: deletes the RtmpServer; garbage
# collection removes what it owned; claims follow spec.storage.reclaimPolicy.
delete_and_check_cleanup() {
  local ns="$1" name="$2" policy listed claims claim
  policy="$(kubectl -n "$ns" get rtmpserver "$name" -o jsonpath='{.spec.storage.reclaimPolicy}')"
  listed="$(claims_of "$ns" "$name")" || e2e_die "cannot read the claims of rtmpserver/$name" || return 1
  mapfile -t claims < <(cut -d' ' -f1 <<<"$listed")
  e2e_log "deleting rtmpserver/$name (reclaimPolicy $policy)"
  kubectl -n "$ns" delete rtmpserver "$name" --wait=true --timeout="${e2e_timeout}s" >&2
  retry "$e2e_timeout" "statefulset/$name to be garbage-collected" gone "$ns" statefulset "$name"
  retry 60 "service/$name to be garbage-collected" gone "$ns" service "$name"
  retry 60 "configmap/$name-rtmpd to be garbage-collected" gone "$ns" configmap "$name-rtmpd"
  retry 60 "the pods of $name to go" none_labelled "$ns" pods "app.kubernetes.io/instance=$name"
  for claim in "${claims[@]}"; do
    if [[ "$policy" == Delete ]]; then
      retry 60 "pvc/$claim to be deleted (reclaimPolicy Delete)" gone "$ns" pvc "$claim"
    else
      kept "$ns" "$claim" || e2e_die "pvc/$claim is gone, going or owned although reclaimPolicy is $policy" || return 1
    fi
  done
  if [[ "$policy" == Delete ]]; then
    e2e_log "clean: rtmpserver/$name and everything it owned are gone, claims included"
  else
    e2e_log "clean: rtmpserver/$name and everything it owned are gone; the claims are kept ($policy)"
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  step="${1:-}"
  [[ -n "$step" ]] || { sed -n '2,20p' "$0" >&2; exit 2; }
  shift
  case "$step" in
    helm-install | helm-uninstall | apply-rtmpserver | stream-secret | wait-children | wait-ready | publish | check-api | \
      check-operator-metrics | delete-and-check-cleanup)
      "${step//-/_}" "$@" ;;
    *) e2e_die "unknown step: $step"; exit 2 ;;
  esac
fi

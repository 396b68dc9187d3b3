#!/usr/bin/env bash
# The kind e2e's own steps (e2e/kind/run.sh), for what only real pods show: the
# images, the processes' users, leader election, DNS, NodePorts, playback,
# volumes that outlive pods, what a pod deletion or a rolling update does to a
# live publisher, and the Secrets, certificates and addresses forwarding and the
# PROXY protocol take on real pods. The journey shared with the local suite is e2e/lib/steps.sh.
# Needs kubectl (KUBECONFIG), docker, ffmpeg, ffprobe, curl, node; sourced after
# e2e/lib/steps.sh (e2e_log, e2e_die, retry, stream_listed, e2e_timeout).
# shellcheck disable=SC2154,SC2016
set -euo pipefail

# check_images REGISTRY VERSION: the images are small, run as 1000:1000, have no
# shell, are labelled with the licenses of what they carry (rtmpd's ffmpeg: LGPL,
# GPL in the transcode variant, which links libx264), and rtmpd serves /health on
# a read-only root filesystem; the transcode variant's ffmpeg has the encoders a
# transcode needs.
check_images() {
  local registry="$1" version="$2" image size user id port limit encoders license
  local -A licenses=(
    ["$registry/rtmpd:$version"]='Apache-2.0 AND LGPL-2.1-or-later'
    ["$registry/rtmpd:$version-transcode"]='Apache-2.0 AND GPL-2.0-or-later'
    ["$registry/rtmpd-operator:$version"]='Apache-2.0'
  )
  for image in "$registry/rtmpd:$version" "$registry/rtmpd:$version-transcode" "$registry/rtmpd-operator:$version"; do
    size="$(docker image inspect -f '{{.Size}}' "$image")"
    user="$(docker image inspect -f '{{.Config.User}}' "$image")"
    license="$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.licenses"}}' "$image")"
    [[ "$license" == "${licenses[$image]}" ]] || e2e_die "$image is labelled '$license', not '${licenses[$image]}'" || return 1
    limit=$((300 * 1000 * 1000))
    ((size < limit)) || e2e_die "$image is $((size / 1000000)) MB (limit $((limit / 1000000)) MB)" || return 1
    [[ "$user" == 1000:1000 ]] || e2e_die "$image runs as '$user', not 1000:1000" || return 1
    id="$(docker create "$image")"
    if docker cp "$id:/bin/sh" - >/dev/null 2>&1; then
      docker rm "$id" >/dev/null
      e2e_die "$image has a shell (/bin/sh)" || return 1
    fi
    docker rm "$id" >/dev/null
    e2e_log "$image: $((size / 1000000)) MB, user $user, no shell, licenses $license"
  done
  image="$registry/rtmpd:$version-transcode"
  encoders="$(docker run --rm --entrypoint /usr/local/bin/ffmpeg "$image" -hide_banner -encoders | awk '$2 == "libx264" || $2 == "aac" { print $2 }' | sort | tr '\n' ' ')"
  [[ "$encoders" == "aac libx264 " ]] || e2e_die "$image: its ffmpeg's encoders include '$encoders', not aac and libx264" || return 1
  e2e_log "$image: ffmpeg encodes with $encoders"
  id="$(docker run -d --read-only --tmpfs /data/rtmp:uid=1000,gid=1000 -p 127.0.0.1::8082 "$registry/rtmpd:$version")"
  port="$(loopback_port "$id" 8082)"
  if ! retry 30 "rtmpd on a read-only root filesystem to answer /health" curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/health"; then
    docker logs "$id" >&2 || true
    docker rm -f "$id" >/dev/null
    return 1
  fi
  docker rm -f "$id" >/dev/null
  e2e_log "rtmpd serves /health from a read-only root filesystem"
}

# loopback_port CONTAINER PORT: the port on 127.0.0.1 docker publishes the
# container's PORT/tcp on (the first, if several). awk reads docker's whole answer:
# a reader that leaves early would kill its writer with SIGPIPE, which pipefail makes a failure.
loopback_port() {
  docker port "$1" "$2/tcp" | awk -F: '$1 == "127.0.0.1" && !port { port = $2 } END { print port }'
}

# pods_of NAMESPACE SELECTOR: the names of the Running pods.
pods_of() {
  kubectl -n "$1" get pods -l "$2" --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'
}

# check_pods_secure NAMESPACE SELECTOR SCRIPT: the pods are Ready (their probes
# pass), and the process running SCRIPT runs as uid 1000 (read from the kind
# nodes' process tables: the images have no shell to ask). Restarts are reported:
# on a machine this busy a liveness probe can time out once.
check_pods_secure() {
  local ns="$1" selector="$2" script="$3" pods uids restarts
  kubectl -n "$ns" wait --for=condition=Ready pod -l "$selector" --timeout="${e2e_timeout}s" >&2
  restarts="$(kubectl -n "$ns" get pods -l "$selector" -o jsonpath='{range .items[*]}{.status.containerStatuses[*].restartCount}{" "}{end}')"
  pods="$(pods_of "$ns" "$selector" | wc -l)"
  uids="$(for node in $(kind_nodes); do docker exec "$node" ps -eo uid=,args=; done | awk -v s="$script" 'index($0, s) { print $1 }' | sort | uniq -c)"
  [[ "$(awk '{ n += $1 } END { print n + 0 }' <<<"$uids")" -ge "$pods" ]] ||
    e2e_die "found fewer $script processes than $pods Ready pods: $uids" || return 1
  [[ "$(awk '{ print $2 }' <<<"$uids" | sort -u)" == 1000 ]] || e2e_die "$script runs as uid(s) $uids, not 1000" || return 1
  e2e_log "$pods pod(s) of $selector Ready (restarts: $restarts), $script running as uid 1000"
}

# lease_holder NAMESPACE LEASE: the pod holding it (the identity is <pod>_<random>).
lease_holder() {
  local identity
  identity="$(kubectl -n "$1" get lease "$2" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null)" || return 1
  echo "${identity%%_*}"
}
# running_pods_are NAMESPACE SELECTOR N: counted anew on every call (a retry of
# `test "$(pods_of …)"` would only repeat the count taken before it started).
running_pods_are() { [[ "$(pods_of "$1" "$2" | wc -l)" -eq "$3" ]]; }
holder_changed() { local h; h="$(lease_holder "$1" "$2")" && [[ -n "$h" && "$h" != "$3" ]] && kubectl -n "$1" get pod "$h" >/dev/null 2>&1; }

# check_leader_election NAMESPACE SELECTOR LEASE: one of the operator's pods holds
# the Lease; when it is deleted, another takes over.
check_leader_election() {
  local ns="$1" selector="$2" lease="$3" leader next
  retry 60 "two Running operator pods" running_pods_are "$ns" "$selector" 2
  retry 60 "a holder of lease/$lease" holder_changed "$ns" "$lease" ""
  leader="$(lease_holder "$ns" "$lease")"
  grep -qx "$leader" <<<"$(pods_of "$ns" "$selector")" || e2e_die "lease/$lease is held by $leader, not an operator pod" || return 1
  e2e_log "lease/$lease held by $leader; deleting it"
  kubectl -n "$ns" delete pod "$leader" --wait=false >&2
  retry 90 "another pod to take lease/$lease over from $leader" holder_changed "$ns" "$lease" "$leader"
  next="$(lease_holder "$ns" "$lease")"
  e2e_log "lease/$lease taken over by $next"
  retry 120 "two Running operator pods again" running_pods_are "$ns" "$selector" 2
}

# check_playback RTMP_BASE HTTP_BASE APP KEY WIDTH HEIGHT: ffprobe reads the live
# stream over RTMP and HTTP-FLV (H.264 at that size, and AAC).
check_playback() {
  local rtmp="$1" http="$2" app="$3" key="$4" size="$5x$6" url streams
  for url in "$rtmp/$app/$key" "$http/$app/$key.flv"; do
    streams="$(timeout 30 ffprobe -v error -rw_timeout 15000000 -show_entries stream=codec_name,width,height -of csv=p=0 "$url" | tr '\n' ' ')" ||
      e2e_die "ffprobe could not play $url" || return 1
    [[ "$streams" == *"h264,$5,$6"* && "$streams" == *aac* ]] || e2e_die "$url: expected h264 $size and aac, got: $streams" || return 1
    e2e_log "played $url: $streams"
  done
}

# check_snapshot_size JPEG WIDTH HEIGHT: the snapshot decodes at that size.
check_snapshot_size() {
  local size
  size="$(ffprobe -v error -show_entries stream=width,height -of csv=p=0 "$1")" || e2e_die "$1 does not decode" || return 1
  [[ "$size" == "$2,$3" ]] || e2e_die "the snapshot is $size, the stream $2x$3" || return 1
  e2e_log "snapshot decodes at $2x$3, the stream's size"
}

# check_dns NAMESPACE SERVICE IMAGE: a pod resolves the Service's name (CoreDNS)
# to its cluster IP. The pod runs node from IMAGE (it has no shell).
check_dns() {
  local ns="$1" svc="$2" image="$3" ip got
  ip="$(kubectl -n "$ns" get service "$svc" -o jsonpath='{.spec.clusterIP}')"
  kubectl -n "$ns" run dns-check --image="$image" --image-pull-policy=Never --restart=Never --command -- \
    node -e "require('dns').lookup('$svc.$ns.svc.cluster.local', (e, a) => { if (e) throw e; console.log(a); })" >&2
  kubectl -n "$ns" wait --for=jsonpath='{.status.phase}'=Succeeded pod/dns-check --timeout=120s >&2 ||
    { kubectl -n "$ns" logs dns-check >&2 || true; e2e_die "the DNS lookup pod did not succeed"; return 1; }
  got="$(kubectl -n "$ns" logs dns-check)"
  kubectl -n "$ns" delete pod dns-check --wait=false >&2
  [[ "$got" == "$ip" ]] || e2e_die "$svc.$ns.svc.cluster.local resolved to '$got', the Service's IP is $ip" || return 1
  e2e_log "$svc.$ns.svc.cluster.local resolves to $ip in a pod (CoreDNS)"
}

# publish_reconnecting RTMP_URL SECONDS EVENTS: publishes like an encoder with
# automatic reconnection: whenever ffmpeg's connection ends it tries again a
# second later, until SECONDS are over; a connection that does not answer for
# 15 s is given up, as an encoder's own timeout does (ffmpeg has none by default:
# a connect through the NodePort's docker-proxy to a pod that was just deleted
# waited out the kernel's SYN retries, 2 minutes and more, under load).
# EVENTS gets "<epoch> start|exit <code>".
publish_reconnecting() {
  local url="$1" deadline=$((SECONDS + $2)) events="$3" rc
  while ((SECONDS < deadline)); do
    echo "$(date +%s.%N) start" >>"$events"
    rc=0
    ffmpeg -hide_banner -loglevel error -nostdin -re \
      -f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=44100" \
      -t "$((deadline - SECONDS))" -c:v libx264 -preset ultrafast -tune zerolatency -pix_fmt yuv420p -g 25 -keyint_min 25 \
      -c:a aac -b:a 64k -ar 44100 -rw_timeout 15000000 -f flv "$url" || rc=$?
    echo "$(date +%s.%N) exit $rc" >>"$events"
    sleep 1
  done
}

# outage_after HTTP_BASE STREAM_ID SINCE EVENTS: waits for the stream to be live
# again after SINCE (epoch seconds) and prints what the publisher saw: when its
# connection dropped and how long until the stream was back.
outage_after() {
  local base="$1" id="$2" since="$3" events="$4" dropped back
  retry "$e2e_timeout" "the publisher's connection to drop" \
    awk -v t="$since" '$2 == "exit" && $1 >= t { found = 1 } END { exit !found }' "$events"
  dropped="$(awk -v t="$since" '$2 == "exit" && $1 >= t { print $1; exit }' "$events")"
  retry "$e2e_timeout" "$id to be live again" stream_listed "$base" "$id"
  back="$(date +%s.%N)"
  awk -v s="$since" -v d="$dropped" -v b="$back" \
    'BEGIN { printf "connection dropped %.1fs after the change, stream live again %.1fs after the drop\n", d - s, b - d }'
}

# kind_nodes: the node containers of the cluster in KIND_CLUSTER.
kind_nodes() { kind get nodes --name "$KIND_CLUSTER"; }

# recordings_on_volume NAMESPACE CLAIM APP KEY: the fMP4 recordings of APP/KEY on
# the claim's volume, read from the node directory local-path provisioned.
recordings_on_volume() {
  local node
  for node in $(kind_nodes); do
    docker exec "$node" sh -c "ls -1 /var/local-path-provisioner/*_$1_$2/$3/$4/*.mp4 2>/dev/null" | sed "s|^|$node:|" || true
  done
}

# recordings_at_least N NAMESPACE CLAIM APP KEY: succeeds once the volume holds N
# recordings of APP/KEY (a file appears with its first whole fragment, a second
# or so after the stream is live).
recordings_at_least() {
  local n="$1"
  shift
  (($(recordings_on_volume "$@" | wc -l) >= n))
}

# check_recording_plays NODE:PATH OUT MIN_SECONDS: the recording, copied out of
# the node, plays for at least MIN_SECONDS.
check_recording_plays() {
  local node="${1%%:*}" path="${1#*:}" duration
  docker exec "$node" cat "$path" >"$2"
  ffmpeg -v error -i "$2" -f null - || e2e_die "$path does not decode" || return 1
  # The last video packet's time, not the duration the encoder announced in the metadata.
  duration="$(ffprobe -v error -select_streams v:0 -show_entries packet=pts_time -of csv=p=0 "$2" | tail -n 1)"
  awk -v d="$duration" -v m="$3" 'BEGIN { exit !(d >= m) }' || e2e_die "$path plays ${duration}s, less than $3s" || return 1
  e2e_log "recording $(basename "$path") plays ${duration}s"
}

# recordings_seen_by_pod NAMESPACE POD DIR: the files the pod sees in DIR
# (listed by node inside the pod: the image has no shell).
recordings_seen_by_pod() {
  kubectl -n "$1" exec "$2" -- node -e "console.log(require('fs').readdirSync(process.argv[1]).join('\n'))" "$3"
}

# pod_metric NAMESPACE POD METRIC: a pod's sample of an unlabelled METRIC, read
# through the API server's pod proxy (no port-forward per pod). awk reads to the
# end: leaving early would kill kubectl with SIGPIPE, which pipefail makes a failure.
pod_metric() {
  kubectl get --raw "/api/v1/namespaces/$1/pods/$2:8082/proxy/metrics" |
    awk -v m="$3" '$1 == m && !found { found = 1; print $2 }'
}

# relays_started_besides NAMESPACE SELECTOR OWNER: the relays the Running pods
# other than OWNER have started, summed (a pod whose counter cannot be read adds none).
relays_started_besides() {
  local pod n relays=0
  for pod in $(pods_of "$1" "$2"); do
    [[ "$pod" == "$3" ]] && continue
    n="$(pod_metric "$1" "$pod" rtmpd_fleet_relays_started_total)" || n=0
    relays=$((relays + ${n:-0}))
  done
  echo "$relays"
}
# relayed_besides NAMESPACE SELECTOR OWNER: a pod other than OWNER has started a
# relay (read anew on every call).
relayed_besides() { (($(relays_started_besides "$@") > 0)); }

# stream_owner NAMESPACE FLEET STREAM_ID: the pod holding the stream's claim (its Lease's annotation).
stream_owner() {
  kubectl -n "$1" get leases -l "media.fluxiot.io/fleet=$2,media.fluxiot.io/lease=stream" -o json | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const claim = JSON.parse(s).items.find((l) => l.metadata.annotations["media.fluxiot.io/stream"] === process.argv[1]);
      if (!claim) process.exit(1);
      console.log(claim.metadata.annotations["media.fluxiot.io/pod"]);
    });' "$3"
}

# fleet_pod_leases_are NAMESPACE FLEET N: N pods keep a Lease in the fleet.
fleet_pod_leases_are() {
  [[ "$(kubectl -n "$1" get leases -l "media.fluxiot.io/fleet=$2,media.fluxiot.io/lease=pod" -o name | wc -l)" -eq "$3" ]]
}

# fleet_status_is NAMESPACE NAME STREAMS PODS: the RtmpServer's status counts STREAMS
# live streams and reports PODS pods.
fleet_status_is() {
  [[ "$(kubectl -n "$1" get rtmpserver "$2" -o jsonpath='{.status.streams} {.status.pods[*].name}' | awk '{ print $1, NF - 1 }')" == "$3 $4" ]]
}

# plays_through RTMP_BASE HTTP_BASE APP KEY N: N successive players through the
# same Service, alternately over RTMP and HTTP-FLV; each must get H.264 video,
# whichever pod its connection lands on.
plays_through() {
  local rtmp="$1" http="$2" app="$3" key="$4" n="$5" i url got
  for ((i = 1; i <= n; i++)); do
    if ((i % 2)); then url="$rtmp/$app/$key"; else url="$http/$app/$key.flv"; fi
    got="$(timeout 30 ffprobe -v error -rw_timeout 15000000 -select_streams v:0 -show_entries stream=codec_name,width -of csv=p=0 "$url")" ||
      e2e_die "play $i of $n ($url) failed" || return 1
    [[ "$got" == "h264,640" ]] || e2e_die "play $i of $n ($url): expected h264 at 640 wide, got '$got'" || return 1
  done
  e2e_log "$n successive plays through the Service succeeded"
}

# --- forwarding and the PROXY protocol ------------------------------------------

# make_private_ca DIR HOST: a test CA (DIR/ca.crt) and a certificate for HOST that
# it signed (DIR/HOST.crt, DIR/HOST.key), as a private origin serving RTMPS has.
make_private_ca() {
  local dir="$1" host="$2"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=flux-rtmpd e2e CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$host" \
    -addext "subjectAltName=DNS:$host" -addext basicConstraints=critical,CA:FALSE -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -keyout "$dir/$host.key" -out "$dir/$host.crt" 2>/dev/null
}

# The balancer: a TCP relay (node, in the rtmpd image: it has no shell) that
# listens on 1935 and sends each connection on to TARGET_HOST:TARGET_PORT behind
# a PROXY protocol v2 header naming the client 203.0.113.7:51000, as an NLB or
# HAProxy's send-proxy-v2 does; on 1936 it relays without a header.
# shellcheck disable=SC2034 # read by run.sh
balancer_client_address=203.0.113.7:51000
# shellcheck disable=SC2016
balancer_script='
const net = require("net");
const [host, port] = [process.argv[1], Number(process.argv[2])];
// signature, version 2 PROXY, TCP over IPv4, 12 bytes: source and destination address, source and destination port
const header = (to) => Buffer.concat([
  Buffer.from("0d0a0d0a000d0a515549540a2111000c", "hex"),
  Buffer.from([203, 0, 113, 7, ...to.remoteAddress.split(".").map(Number), 51000 >> 8, 51000 & 255, port >> 8, port & 255]),
]);
for (const [listen, withHeader] of [[1935, true], [1936, false]])
  net.createServer((client) => {
    const upstream = net.connect(port, host, () => {
      if (withHeader) upstream.write(header(upstream));
      client.pipe(upstream);
      upstream.pipe(client);
    });
    for (const [a, b] of [[client, upstream], [upstream, client]]) a.on("error", () => b.destroy()).on("close", () => b.destroy());
  }).listen(listen);
'

# run_balancer NAMESPACE POD IMAGE TARGET_HOST TARGET_PORT: starts the balancer pod
# and prints its address (what the target sees connections from: the pod network
# is routed, not masqueraded, and kube-proxy only rewrites the Service's address).
run_balancer() {
  local ns="$1" pod="$2" image="$3"
  kubectl -n "$ns" run "$pod" --image="$image" --image-pull-policy=Never --restart=Never --command -- \
    node -e "$balancer_script" "$4" "$5" >&2
  kubectl -n "$ns" wait --for=condition=Ready "pod/$pod" --timeout="${e2e_timeout}s" >&2
  kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.podIP}'
}

# stream_of HTTP_BASE STREAM_ID [API_TOKEN]: the stream's entry in the stream list (JSON).
stream_of() {
  local auth=() list
  [[ -z "${3:-}" ]] || auth=(-H "Authorization: Bearer $3")
  list="$(curl -fsS --max-time 5 "${auth[@]}" "$1/api/v1/rtmp/streams")" || return 1
  node -e '
    const st = JSON.parse(process.argv[1]).streams.find((x) => x.stream_id === process.argv[2]);
    if (!st) process.exit(1);
    console.log(JSON.stringify(st));' "$list" "$2"
}

# forwards_of HTTP_BASE STREAM_ID: the stream's forwards, one "DESTINATION STATE" a line, sorted.
forwards_of() {
  local entry
  entry="$(stream_of "$1" "$2")" || return 1
  node -e 'for (const f of JSON.parse(process.argv[1]).forwards) console.log(f.destination, f.state)' "$entry" | sort
}

# forwards_are HTTP_BASE STREAM_ID "DESTINATION STATE"...: the stream's forwards are those.
forwards_are() {
  local base="$1" id="$2" got
  shift 2
  got="$(forwards_of "$base" "$id")" && [[ "$got" == "$(printf '%s\n' "$@" | sort)" ]]
}

# pod_file_is NAMESPACE POD PATH CONTENT: the file in the pod holds CONTENT (read by
# node in the pod: the image has no shell).
pod_file_is() {
  [[ "$(kubectl -n "$1" exec "$2" -- node -e 'process.stdout.write(require("fs").readFileSync(process.argv[1], "utf8"))' "$3" 2>/dev/null)" == "$4" ]]
}

# metric_sample HTTP_BASE SERIES: the value of one series of /metrics (0 if absent),
# SERIES as printed, labels included.
metric_sample() {
  curl -fsS --max-time 5 "$1/metrics" | awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }'
}

# metric_above HTTP_BASE SERIES VALUE: the series has passed VALUE.
metric_above() { awk -v v="$(metric_sample "$1" "$2")" -v b="$3" 'BEGIN { exit !(v > b) }'; }

# stream_gone HTTP_BASE STREAM_ID: the stream list answers without it.
stream_gone() { curl -fsS --max-time 5 -o /dev/null "$1/health" && ! stream_listed "$1" "$2"; }

# video_frames_at_least HTTP_BASE STREAM_ID N: the stream has received N video frames.
video_frames_at_least() {
  local entry
  entry="$(stream_of "$1" "$2")" || return 1
  (($(node -p 'JSON.parse(process.argv[1]).video_frames' "$entry") >= $3))
}

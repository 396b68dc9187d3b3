#!/usr/bin/env bash
# A real Kubernetes control plane on this machine, built from source (hack/k8s/build.sh):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, which plays
# the kubelet for fake Nodes (Pods become Running and Ready; no containers run). The
# API server has the aggregation layer on; prometheus-adapter is built for the tests
# that register it as an APIService.
# Everything listens on 127.0.0.1 only, on free ports picked at start.
#
#   hack/cluster.sh up                       build if needed, start, wait until usable;
#                                            prints the `env` lines on stdout
#   hack/cluster.sh down                     stop exactly the recorded processes, remove state
#   hack/cluster.sh status                   what is running
#   hack/cluster.sh env                      export KUBECONFIG=... and PATH=<pinned bin>:$PATH
#   hack/cluster.sh kubeconfig-for-sa NS SA  write a kubeconfig authenticating as that
#                                            ServiceAccount (TokenRequest); prints its path
#
# Environment:
#   FLUX_RTMPD_CLUSTER_DIR      state dir (default <repo>/.cluster): pki, kubeconfigs, logs, pids
#   FLUX_RTMPD_CLUSTER_NODES    number of fake nodes (default 2)
#   FLUX_RTMPD_CLUSTER_TIMEOUT  seconds to wait for each step (default 120)
#   FLUX_RTMPD_ETCD_PORT, FLUX_RTMPD_APISERVER_PORT   fixed ports instead of free ones
#   FLUX_RTMPD_HPA_SYNC_SECONDS the HorizontalPodAutoscaler controller's period (default 2)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${FLUX_RTMPD_CLUSTER_DIR:-$repo/.cluster}"
nodes="${FLUX_RTMPD_CLUSTER_NODES:-2}"
timeout="${FLUX_RTMPD_CLUSTER_TIMEOUT:-120}"
# Tests wait for the HorizontalPodAutoscaler controller: it looks every 2 s instead of 15 s.
hpa_sync_seconds="${FLUX_RTMPD_HPA_SYNC_SECONDS:-2}"
readonly service_cidr=10.96.0.0/16 service_ip=10.96.0.1 pod_cidr=10.244.0.1/16
readonly components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

bin_dir() { "$repo/hack/k8s/build.sh" --bin-dir; }

# --- processes ---------------------------------------------------------------

pid_of() { cat "$state/pids/$1.pid" 2>/dev/null || true; }

# Alive and still ours: the command line mentions our state dir, so a recycled pid
# of some other process is never mistaken for (or killed as) a component.
alive() {
  local pid
  pid="$(pid_of "$1")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$state/"* ]]
}

# How a component started by this shell ended: its exit status, or the signal
# that killed it (an empty log usually means a signal).
exit_reason() {
  local pid status=0
  pid="$(pid_of "$1")"
  [[ -n "$pid" ]] || { echo "no pid recorded"; return; }
  wait "$pid" 2>/dev/null || status=$?
  if ((status == 127)); then echo "pid $pid is not a child of this shell"
  elif ((status > 128)); then echo "killed by signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null))"
  else echo "exit status $status"; fi
}

# start NAME BINARY ARGS...: detached, stdio to the log, pid recorded.
start() {
  local name="$1"; shift
  mkdir -p "$state/pids" "$state/logs"
  # setsid: a Ctrl-C in the caller's terminal does not reach the control plane.
  # No inherited descriptors: callers reading our stdout (execFile) are not held open.
  setsid "$@" </dev/null >"$state/logs/$name.log" 2>&1 9>&- &
  local pid=$! i
  echo "$pid" >"$state/pids/$name.pid"
  # Until the child has exec'd its binary, its command line is still this script's and
  # alive() would call it gone (an empty log and a failed start on a busy machine).
  for ((i = 0; i < 200; i++)); do
    alive "$name" && return 0
    kill -0 "$pid" 2>/dev/null || return 0 # gone already: wait_for reports how it ended
    sleep 0.05
  done
}

log_tail() {
  local f="$state/logs/$1.log"
  [[ -f "$f" ]] || { echo "(no log at $f)"; return; }
  echo "--- last 25 lines of $f ---"
  tail -n 25 "$f"
}

# wait_for COMPONENT WHAT CMD...: poll CMD until it succeeds; fail early if the
# component died, or after $timeout seconds, with the tail of its log.
wait_for() {
  local name="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then
      log "error: $name exited while waiting for $what: $(exit_reason "$name")"
      log_tail "$name" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "error: timed out after ${timeout}s waiting for $what"
      log_tail "$name" >&2
      exit 1
    fi
    sleep 0.5
  done
}

stop_all() {
  local name pid i
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    alive "$name" || continue
    pid="$(pid_of "$name")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      alive "$name" || break
      sleep 0.2
    done
    if alive "$name"; then
      log "$name (pid $pid) ignored TERM for 10s, killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# --- ports -------------------------------------------------------------------

# Free means no socket at all uses it locally: a port that is only the local end of
# some outgoing connection still makes bind() fail.
port_free() { [[ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]]; }

# alloc_port VAR [FIXED]: VAR := FIXED (checked free) or a free port below the
# kernel's ephemeral range (where outgoing connections take theirs), not already
# handed out in this run. Sets a global, so no subshell loses `taken`.
taken=" "
alloc_port() {
  local var="$1" fixed="${2:-}" p i low=32768
  if [[ -n "$fixed" ]]; then
    port_free "$fixed" || die "port $fixed (from the environment) is already in use"
    taken+="$fixed "
    printf -v "$var" '%s' "$fixed"
    return
  fi
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 12000)) || die "the ephemeral port range starts at $low: set FLUX_RTMPD_APISERVER_PORT and FLUX_RTMPD_ETCD_PORT"
  for ((i = 0; i < 200; i++)); do
    p=$((10000 + RANDOM % (low - 10000)))
    [[ "$taken" == *" $p "* ]] && continue
    if port_free "$p"; then
      taken+="$p "
      printf -v "$var" '%s' "$p"
      return
    fi
  done
  die "no free port found"
}

# --- pki -------------------------------------------------------------------------

# cert NAME SUBJECT EXTENSIONS: an EC key and a certificate signed by the cluster CA.
cert() {
  local name="$1" subj="$2" ext="$3" pki="$state/pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$name.key" 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

make_pki() {
  local pki="$state/pki"
  command -v openssl >/dev/null || die "openssl is required (apt-get install -y openssl)"
  mkdir -p "$pki"
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=flux-rtmpd-cluster-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/ca.crt" 2>/dev/null || die "openssl could not create the CA"
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=flux-rtmpd-admin" "$client"
  cert controller-manager "/CN=system:kube-controller-manager" "$client"
  cert scheduler "/CN=system:kube-scheduler" "$client"
  # The aggregation layer (APIServices such as custom.metrics.k8s.io): the API server
  # proxies to an extension server with this client certificate, signed by a CA of its
  # own that the extension server trusts for the forwarded user (X-Remote-User).
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/front-proxy-ca.key" 2>/dev/null
  openssl req -x509 -new -key "$pki/front-proxy-ca.key" -subj "/CN=flux-rtmpd-front-proxy-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/front-proxy-ca.crt" 2>/dev/null || die "openssl could not create the front-proxy CA"
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/front-proxy-client.key" 2>/dev/null
  openssl req -new -key "$pki/front-proxy-client.key" -subj "/CN=front-proxy-client" -out "$pki/front-proxy-client.csr" 2>/dev/null
  printf '%s\n' "$client" >"$pki/front-proxy-client.ext"
  openssl x509 -req -in "$pki/front-proxy-client.csr" -CA "$pki/front-proxy-ca.crt" -CAkey "$pki/front-proxy-ca.key" \
    -CAcreateserial -days 365 -sha256 -extfile "$pki/front-proxy-client.ext" -out "$pki/front-proxy-client.crt" 2>/dev/null
  rm -f "$pki/front-proxy-client.csr" "$pki/front-proxy-client.ext"
  # Service-account token signing pair.
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key" 2>/dev/null
  openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  chmod 600 "$pki"/*.key
}

# write_kubeconfig FILE USER NAMESPACE CREDENTIALS: a kubeconfig for this
# cluster; CREDENTIALS are the user's YAML lines (a client cert pair or a token).
write_kubeconfig() {
  local file="$1" user="$2" namespace="$3" credentials="$4"
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: flux-rtmpd
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $state/pki/ca.crt
users:
- name: $user
  user:
$credentials
contexts:
- name: flux-rtmpd
  context:
    cluster: flux-rtmpd
    user: $user${namespace:+
    namespace: $namespace}
current-context: flux-rtmpd
EOF
  chmod 600 "$file.tmp"
  mv -f "$file.tmp" "$file"
}

# kubeconfig FILE USER: a kubeconfig for the client cert pki/USER.{crt,key}.
kubeconfig() {
  write_kubeconfig "$1" "$2" "" "    client-certificate: $state/pki/$2.crt
    client-key: $state/pki/$2.key"
}

# --- commands --------------------------------------------------------------------

# What a running cluster was started from: this script and the binaries. A cluster
# started by another version (say, before the aggregation layer) is not reused.
fingerprint() {
  cat "${BASH_SOURCE[0]}" <(printf '%s' "$bin") | sha256sum | cut -d' ' -f1
}

healthy() {
  [[ -f "$state/ready" && "$(cat "$state/ready")" == "$(fingerprint)" ]] || return 1
  local c
  for c in "${components[@]}"; do alive "$c" || return 1; done
  KUBECONFIG="$state/kubeconfig" "$bin/kubectl" get --raw /readyz --request-timeout=5s >/dev/null 2>&1
}

print_env() {
  printf "export KUBECONFIG='%s'\n" "$state/kubeconfig"
  printf "export FLUX_RTMPD_K8S_BIN='%s'\n" "$bin"
  printf "export PATH='%s':\"\$PATH\"\n" "$bin"
}

fake_nodes() {
  local i
  for ((i = 0; i < nodes; i++)); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
status:
  capacity: {cpu: "32", memory: 256Gi, pods: "250", ephemeral-storage: 1Ti}
  allocatable: {cpu: "32", memory: 256Gi, pods: "250", ephemeral-storage: 1Ti}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
EOF
  done
}

cmd_up() {
  local t0=$SECONDS
  "$repo/hack/k8s/build.sh" >/dev/null || die "building the control plane failed (see the build.sh lines above)"
  # The custom metrics API the autoscaling test registers (an APIService) runs it.
  "$repo/hack/k8s/build.sh" --adapter >/dev/null || die "building prometheus-adapter failed (see the build.sh lines above)"
  bin="$(bin_dir)"
  command -v ss >/dev/null || die "ss (iproute2) is required to find free ports"
  command -v curl >/dev/null || die "curl is required for health checks"

  mkdir -p "$state"
  exec 9>"$state/.lock"
  flock 9

  if healthy; then
    log "cluster already running ($state)"
    print_env
    return
  fi
  if [[ -d "$state/pids" ]]; then
    log "cleaning up a previous cluster that is not healthy"
    stop_all
  fi
  # Keep the lock file (we hold it); drop everything else.
  find "$state" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +

  # A failed start stops what it started and keeps the logs for reading.
  trap 'rc=$?; if ((rc != 0)); then stop_all; log "stopped the partial cluster; logs kept in $state/logs"; fi' EXIT
  make_pki
  local etcd_peer_port kcm_port sched_port kwok_port
  alloc_port ETCD_PORT "${FLUX_RTMPD_ETCD_PORT:-}"
  alloc_port APISERVER_PORT "${FLUX_RTMPD_APISERVER_PORT:-}"
  alloc_port etcd_peer_port
  alloc_port kcm_port
  alloc_port sched_port
  alloc_port kwok_port
  cat >"$state/ports.env" <<EOF
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$etcd_peer_port
APISERVER_PORT=$APISERVER_PORT
CONTROLLER_MANAGER_PORT=$kcm_port
SCHEDULER_PORT=$sched_port
KWOK_PORT=$kwok_port
EOF
  kubeconfig "$state/kubeconfig" admin
  kubeconfig "$state/controller-manager.kubeconfig" controller-manager
  kubeconfig "$state/scheduler.kubeconfig" scheduler

  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  start etcd "$bin/etcd" --name=flux-rtmpd --data-dir="$state/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="flux-rtmpd=http://127.0.0.1:$etcd_peer_port" \
    --unsafe-no-fsync --log-level=warn
  wait_for etcd "etcd /health" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  log "starting kube-apiserver on https://127.0.0.1:$APISERVER_PORT"
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --tls-cert-file="$state/pki/apiserver.crt" --tls-private-key-file="$state/pki/apiserver.key" \
    --client-ca-file="$state/pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$state/pki/sa.pub" --service-account-signing-key-file="$state/pki/sa.key" \
    --service-cluster-ip-range="$service_cidr" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true --profiling=false \
    --cert-dir="$state/pki/apiserver-generated" \
    --requestheader-client-ca-file="$state/pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$state/pki/front-proxy-client.crt" --proxy-client-key-file="$state/pki/front-proxy-client.key"
  wait_for kube-apiserver "kube-apiserver /readyz" \
    curl -fsS --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" --key "$state/pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz"

  log "starting kube-controller-manager, kube-scheduler, kwok"
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig="$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$state/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$state/pki/controller-manager-generated" \
    --controllers='*' --use-service-account-credentials=true --leader-elect=false \
    --service-account-private-key-file="$state/pki/sa.key" --root-ca-file="$state/pki/ca.crt" \
    --cluster-signing-cert-file="$state/pki/ca.crt" --cluster-signing-key-file="$state/pki/ca.key" \
    --service-cluster-ip-range="$service_cidr" --cluster-name=flux-rtmpd --profiling=false \
    --horizontal-pod-autoscaler-sync-period="${hpa_sync_seconds}s"
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig="$state/scheduler.kubeconfig" \
    --authentication-kubeconfig="$state/scheduler.kubeconfig" \
    --authorization-kubeconfig="$state/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$sched_port" --cert-dir="$state/pki/scheduler-generated" \
    --leader-elect=false --profiling=false
  start kwok "$bin/kwok" \
    --kubeconfig="$state/kubeconfig" --config="$(dirname "$bin")/share/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --server-address="127.0.0.1:$kwok_port" --node-ip=127.0.0.1 --node-port="$kwok_port" \
    --node-lease-duration-seconds=40 --cidr="$pod_cidr"
  wait_for kube-controller-manager "kube-controller-manager /healthz" curl -fsSk "https://127.0.0.1:$kcm_port/healthz"
  wait_for kube-scheduler "kube-scheduler /healthz" curl -fsSk "https://127.0.0.1:$sched_port/healthz"
  wait_for kwok "kwok /healthz" curl -fsS "http://127.0.0.1:$kwok_port/healthz"

  local kubectl=("$bin/kubectl" --kubeconfig="$state/kubeconfig")
  log "creating $nodes fake nodes"
  fake_nodes | "${kubectl[@]}" apply -f - >/dev/null || die "could not create the fake nodes"
  wait_for kwok "$nodes nodes Ready" \
    "${kubectl[@]}" wait --for=condition=Ready node -l type=kwok --timeout=2s
  # Pods are refused until the default ServiceAccount exists.
  wait_for kube-controller-manager "the default ServiceAccount" \
    "${kubectl[@]}" get serviceaccount default -n default
  fingerprint >"$state/ready"
  trap - EXIT
  log "cluster up in $((SECONDS - t0))s: eval \"\$(hack/cluster.sh env)\" to use it"
  print_env
}

cmd_down() {
  if [[ ! -d "$state" ]]; then
    log "no cluster at $state"
    return
  fi
  exec 9>>"$state/.lock"
  flock 9
  stop_all
  rm -rf "$state"
  log "cluster down"
}

cmd_status() {
  if [[ ! -d "$state/pids" ]]; then
    echo "no cluster at $state"
    return 1
  fi
  bin="$(bin_dir)"
  local c ok=0
  for c in "${components[@]}"; do
    if alive "$c"; then
      printf '%-24s running (pid %s)\n' "$c" "$(pid_of "$c")"
    else
      printf '%-24s NOT running (log: %s)\n' "$c" "$state/logs/$c.log"
      ok=1
    fi
  done
  if KUBECONFIG="$state/kubeconfig" "$bin/kubectl" get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
    echo "kube-apiserver /readyz: ok ($(grep APISERVER_PORT "$state/ports.env"))"
    KUBECONFIG="$state/kubeconfig" "$bin/kubectl" get nodes -o wide 2>/dev/null || true
  else
    echo "kube-apiserver /readyz: not ready"
    ok=1
  fi
  return "$ok"
}

cmd_env() {
  bin="$(bin_dir)"
  healthy || log "warning: no healthy cluster at $state (run hack/cluster.sh up)"
  print_env
}

cmd_kubeconfig_for_sa() {
  local ns="${1:-}" sa="${2:-}"
  [[ -n "$ns" && -n "$sa" ]] || die "usage: hack/cluster.sh kubeconfig-for-sa NAMESPACE SERVICEACCOUNT"
  bin="$(bin_dir)"
  [[ -f "$state/ports.env" ]] || die "no cluster at $state (run hack/cluster.sh up)"
  # shellcheck source=/dev/null
  source "$state/ports.env"
  local token out="$state/sa/$ns.$sa.kubeconfig"
  token="$("$bin/kubectl" --kubeconfig="$state/kubeconfig" create token "$sa" -n "$ns" --duration=24h)" ||
    die "could not get a token for serviceaccount $ns/$sa (does it exist?)"
  mkdir -p "$state/sa"
  write_kubeconfig "$out" "$ns.$sa" "$ns" "    token: $token"
  echo "$out"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  kubeconfig-for-sa) shift; cmd_kubeconfig_for_sa "$@" ;;
  *) die "usage: hack/cluster.sh up|down|status|env|kubeconfig-for-sa NAMESPACE SERVICEACCOUNT" ;;
esac

#!/usr/bin/env bash
# Installs everything flux-rtmpd needs on a fresh Debian machine, idempotently:
# the Debian packages the tests and the server call, then the npm packages
# (which bring Node 24 itself as the `node` devDependency). Chromium is the
# browser the console's tests drive (playwright-core, no browser download).
set -euo pipefail
cd "$(dirname "$0")/.."

# command → Debian package that provides it
declare -A packages=(
  [ffmpeg]=ffmpeg
  [ffprobe]=ffmpeg
  [rtmpdump]=rtmpdump
  [prometheus]=prometheus
  [promtool]=prometheus
  [shellcheck]=shellcheck
  [openssl]=openssl
  [nginx]=nginx-light
  [chromium]=chromium
  [gst-launch-1.0]=gstreamer1.0-tools
  [haproxy]=haproxy # sends the PROXY protocol in the load-balancer tests
  [gcc]=gcc # the benchmark's relay in C (hack/bench/floor/proxy.c)
  [ss]=iproute2 # free ports for the local control plane, listeners' accept queues in the tests
  [nmap]=nmap # the scanner test: an internet scanner's probes against every listener
)
missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${packages[$cmd]}")
done
# nginx-rtmp is a module, not a command: the benchmark's peer needs it.
[ -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=(libnginx-mod-rtmp)
# GStreamer's flvdemux and souphttpsrc: a player other than ffmpeg for the playback tests.
[[ "$(dpkg-query -W -f='${Status}' gstreamer1.0-plugins-good 2>/dev/null)" == *'ok installed' ]] || missing+=(gstreamer1.0-plugins-good)
# GStreamer's RTMP clients (rtmp2sink, rtmp2src, librtmp's rtmpsrc) and h264parse for the interop test.
[[ "$(dpkg-query -W -f='${Status}' gstreamer1.0-plugins-bad 2>/dev/null)" == *'ok installed' ]] || missing+=(gstreamer1.0-plugins-bad)

if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.flux-rtmpd-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

#!/usr/bin/env bash
# The kind cluster's pod network, standing in for kindnetd (whose source the Go
# module proxy does not serve): every few seconds it reads the nodes' pod CIDRs
# and writes this node's CNI config (ptp veth pairs, host-local addresses from
# its own pod CIDR) and a route to each other node's pod CIDR through that
# node's address. Runs in a hostNetwork DaemonSet pod (hack/kind/cni.yaml).
set -euo pipefail

conf=/etc/cni/net.d/10-flux-rtmpd-ptp.conflist
: "${NODE_NAME:?the pod spec sets NODE_NAME}"

config() {
  cat <<JSON
{
  "cniVersion": "0.4.0",
  "name": "flux-rtmpd-ptp",
  "plugins": [
    { "type": "ptp", "mtu": 1500, "ipMasq": false,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$1" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
}

while true; do
  nodes="$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.podCIDR}{" "}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' 2>&1)" ||
    { echo "cni: cannot list nodes yet: $nodes" >&2; sleep 2; continue; }
  while read -r name cidr address; do
    [[ -n "$cidr" && -n "$address" ]] || continue
    if [[ "$name" == "$NODE_NAME" ]]; then
      if [[ "$(cat "$conf" 2>/dev/null)" != "$(config "$cidr")" ]]; then
        config "$cidr" >"$conf.tmp" && mv -f "$conf.tmp" "$conf"
        echo "cni: $conf written for pod CIDR $cidr" >&2
      fi
    elif [[ "$(ip route show "$cidr")" != *"via $address "* ]]; then
      ip route replace "$cidr" via "$address"
      echo "cni: route $cidr via $address ($name)" >&2
    fi
  done <<<"$nodes"
  sleep 5
done

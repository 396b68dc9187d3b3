#!/usr/bin/env bash
# The kind node image for the pinned Kubernetes, made here from the package
# registries alone (kind's own images come from Docker Hub):
#   - a kind base image: kind's base files on the local Debian base with Debian's
#     systemd, containerd, runc and CNI plugins (base.Dockerfile)
#   - kubelet, kubeadm, kubectl and every image kubeadm asks for (kube-apiserver,
#     -controller-manager, -scheduler, kube-proxy, etcd, CoreDNS, pause), built by
#     hack/k8s/build.sh from the Go module proxy (pause: gcc from its C source)
#   - the pod network (cni.sh, cni.yaml) and the volumes (storage.yaml: rancher's
#     local-path-provisioner, also from the Go module proxy)
# assembled as `kind build node-image` does it: binaries copied into a container
# of the base image, images imported into its containerd, `docker commit`.
# The result, flux-rtmpd.local/kind-node:<version>-<key>, is cached like the base
# images (hack/images/cache.sh). Prints KIND_NODE_IMAGE=... on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
progress_name=${progress_name:-kind-image}
# shellcheck source=hack/lib/progress.sh
source "$here/../lib/progress.sh"
# shellcheck source=hack/images/cache.sh
source "$here/../images/cache.sh"
# shellcheck source=hack/docker/engine.sh
source "$here/../docker/engine.sh"

logs="$flux_cache_root/images/logs"
docker_session_begin
trap docker_session_end EXIT

# Captured first: a failure of base.sh in a process substitution would go unnoticed.
base="$("$repo/hack/images/base.sh")"
while IFS='=' read -r name value; do declare "$name=$value"; done <<<"$base"
logged "$logs/k8s-control-plane.log" "Kubernetes binaries (hack/k8s/build.sh)" "$repo/hack/k8s/build.sh"
logged "$logs/k8s-node.log" "node binaries (hack/k8s/build.sh --node)" "$repo/hack/k8s/build.sh" --node
bin="$("$repo/hack/k8s/build.sh" --bin-dir)"
kind_module="$(cd "$repo/hack/k8s/kind" && go list -m -f '{{.Dir}}' sigs.k8s.io/kind)"
kube_version="$("$bin/kubeadm" version -o short)"

key="$(printf '%s\n' "$bin" "$DEBIAN_IMAGE" "$kind_module" "$(cat "$here"/*)" | sha256sum | cut -c1-12)"
KIND_NODE_IMAGE="flux-rtmpd.local/kind-node:$kube_version-$key"
base_image="flux-rtmpd.local/kind-base:$key"
cni_image="flux-rtmpd.local/kind-cni:$key"
provisioner_image="flux-rtmpd.local/local-path-provisioner:$key"
helper_image="flux-rtmpd.local/local-path-helper:$key"
sandbox_image="$(sed -n 's/^ *sandbox_image = "\(.*\)"/\1/p' "$kind_module/images/base/files/etc/containerd/config.toml")"

# static_image TAG BINARY: an image with only that static binary, its entrypoint.
static_image() {
  local dir
  dir="$(mktemp -d)"
  mkdir -p "$dir/usr/local/bin"
  cp "$2" "$dir/usr/local/bin/"
  tar -C "$dir" -c . | docker import --change 'ENV PATH=/usr/local/bin' \
    --change "ENTRYPOINT [\"/usr/local/bin/$(basename "$2")\"]" - "$1" >/dev/null
  rm -rf "$dir"
}

# debian_image TAG PACKAGES FILE...: the Debian base with those packages and files in /usr/local/bin.
debian_image() {
  local tag="$1" apt_packages="$2" dir
  shift 2
  dir="$(mktemp -d)"
  cp "$@" "$dir/"
  {
    echo "FROM $DEBIAN_IMAGE"
    [[ -z "$apt_packages" ]] || echo "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $apt_packages && rm -rf /var/lib/apt/lists/*"
    echo "COPY . /usr/local/bin/"
  } >"$dir/Dockerfile"
  docker build -q -t "$tag" "$dir" >/dev/null
  rm -rf "$dir"
}

# The images kubeadm pulls for this version, under the names it asks for.
component_images() {
  local image pause_c
  for image in $("$bin/kubeadm" config images list --kubernetes-version "$kube_version"); do
    case "$image" in
      */kube-apiserver:* | */kube-controller-manager:* | */kube-scheduler:*)
        static_image "$image" "$bin/$(basename "${image%:*}")" ;;
      */kube-proxy:*) debian_image "$image" "iptables nftables conntrack" "$bin/kube-proxy" ;;
      # kubeadm names the etcd it was tested with; hack/k8s/etcd pins the newest 3.6.
      */etcd:*) static_image "$image" "$bin/etcd" ;;
      */coredns:*) static_image "$image" "$bin/coredns" ;;
      */pause:*)
        pause_c="$(cd "$repo/hack/k8s/kubernetes" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
        gcc -Os -static -o "$work/pause" "$pause_c"
        static_image "$image" "$work/pause"
        # also under the name kind's containerd config gives the sandbox image
        docker tag "$image" "$sandbox_image" && echo "$sandbox_image"
        ;;
      *) say "kubeadm asks for $image, which this script does not know how to build"; return 1 ;;
    esac
    echo "$image"
  done
  debian_image "$cni_image" iproute2 "$here/cni.sh" "$bin/kubectl" && echo "$cni_image"
  static_image "$provisioner_image" "$bin/local-path-provisioner" && echo "$provisioner_image"
  docker tag "$DEBIAN_IMAGE" "$helper_image" && echo "$helper_image"
}

build_node_image() {
  work="$(mktemp -d "${TMPDIR:-/tmp}/flux-rtmpd-kind-node.XXXXXX")"
  cp -r "$kind_module/images/base/files" "$work/files"
  chmod -R u+w,a+rX "$work/files"
  docker build --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -f "$here/base.Dockerfile" -t "$base_image" "$work"
  component_images >"$work/images.txt"
  mapfile -t images <"$work/images.txt"
  echo "component images: ${images[*]}"
  docker save "${images[@]}" -o "$work/images.tar"
  sed "s|@CNI_IMAGE@|$cni_image|" "$here/cni.yaml" >"$work/default-cni.yaml"
  sed "s|@PROVISIONER_IMAGE@|$provisioner_image|; s|@HELPER_IMAGE@|$helper_image|" "$here/storage.yaml" >"$work/default-storage.yaml"
  echo "$kube_version" >"$work/version"

  local id
  id="$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined "$base_image" infinity)"
  for b in kubelet kubeadm kubectl; do docker cp "$bin/$b" "$id:/usr/bin/$b"; done
  docker exec "$id" mkdir -p /kind/manifests
  docker cp "$work/version" "$id:/kind/version"
  docker cp "$work/default-cni.yaml" "$id:/kind/manifests/default-cni.yaml"
  docker cp "$work/default-storage.yaml" "$id:/kind/manifests/default-storage.yaml"
  docker exec "$id" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 & for _ in $(seq 50); do ctr version >/dev/null 2>&1 && exit; sleep 0.2; done; cat /tmp/containerd.log; exit 1'
  docker exec -i "$id" ctr --namespace=k8s.io images import --all-platforms --no-unpack - <"$work/images.tar"
  docker exec "$id" ctr --namespace=k8s.io images list -q
  # containerd stays a zombie (sleep is PID 1): wait until it is no longer running.
  docker exec "$id" bash -c 'pkill -x containerd; while pgrep -x -r D,R,S containerd >/dev/null; do sleep 0.2; done; rm -rf /tmp/*'
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' "$id" "$KIND_NODE_IMAGE"
  docker rm -f -v "$id"
  docker rmi "${images[@]}" "$base_image" >/dev/null || true
  rm -rf "$work"
}

cached_image "$KIND_NODE_IMAGE" build_node_image
say "$KIND_NODE_IMAGE: $(docker image inspect -f '{{.Size}}' "$KIND_NODE_IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }')"
echo "KIND_NODE_IMAGE=$KIND_NODE_IMAGE"

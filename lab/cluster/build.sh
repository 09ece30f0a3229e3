#!/usr/bin/env bash
# Builds the real Kubernetes control plane the tests run (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl), etcd and helm, and the binaries of the
# test bed's real nodes (kubelet, kube-proxy, containerd + its runc shim + ctr), from the
# pinned Go tools modules in lab/cluster/tools/. The binaries go to cache folders outside the
# repo, keyed on the tools modules and the build flags below, so only the first run pays.
# Two keys: the control plane's (tools/k8s, etcd, helm) and the nodes' (tools/node,
# containerd), so a change on one side does not rebuild the other.
#
#   bash lab/cluster/build.sh                  build if needed, print the bin dir last
#   bash lab/cluster/build.sh --print-bindir   print the control plane's bin dir if built, else exit 3
#   bash lab/cluster/build.sh --print-nodedir  print the nodes' bin dir if built, else exit 3
#
# ~/.cache/vipfarm/current is a symlink to the last bin dir built; the TypeScript library
# asks --print-bindir instead, so it never runs binaries of other pinned versions.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tools="$here/tools"

# Pinned releases. The go.mod files hold the same versions; keep both in step.
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.22.0
CONTAINERD_VERSION=v2.4.2

k8s_major=${K8S_VERSION#v}; k8s_major=${k8s_major%%.*}
k8s_minor=${K8S_VERSION#v*.}; k8s_minor=${k8s_minor%%.*}
k8s_ldflags=""
# Both packages carry the version: the servers report component-base's, kubectl's client
# side reports client-go's; without them everything says v0.0.0-master.
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$k8s_major"
  k8s_ldflags+=" -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done
k8s_ldflags="-s -w$k8s_ldflags"
etcd_ldflags="-s -w"
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
containerd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION#v}"
# No cgo: no btrfs/devmapper/zfs snapshotters (overlayfs is what the nodes use).
containerd_tags="no_btrfs,no_devmapper,no_zfs"

# name|module dir|main package|ldflags
targets=(
  "kube-apiserver|k8s|k8s.io/kubernetes/cmd/kube-apiserver|$k8s_ldflags"
  "kube-controller-manager|k8s|k8s.io/kubernetes/cmd/kube-controller-manager|$k8s_ldflags"
  "kube-scheduler|k8s|k8s.io/kubernetes/cmd/kube-scheduler|$k8s_ldflags"
  "kubectl|k8s|k8s.io/kubernetes/cmd/kubectl|$k8s_ldflags"
  "etcd|etcd|go.etcd.io/etcd/server/v3|$etcd_ldflags"
  "helm|helm|helm.sh/helm/v3/cmd/helm|$helm_ldflags"
)
# name|module dir|main package|ldflags|build tags
node_targets=(
  "kubelet|node|k8s.io/kubernetes/cmd/kubelet|$k8s_ldflags"
  "kube-proxy|node|k8s.io/kubernetes/cmd/kube-proxy|$k8s_ldflags"
  "containerd|containerd|github.com/containerd/containerd/v2/cmd/containerd|$containerd_ldflags|$containerd_tags"
  "containerd-shim-runc-v2|containerd|github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2|$containerd_ldflags|$containerd_tags"
  "ctr|containerd|github.com/containerd/containerd/v2/cmd/ctr|$containerd_ldflags|$containerd_tags"
)

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/vipfarm"

# Go's tarball install is often not on a non-login shell's PATH (the key includes Go's version).
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="$PATH:/usr/local/go/bin"; fi

go_version() { command -v go >/dev/null 2>&1 && go env GOVERSION 2>/dev/null || echo none; }

# The key covers everything that changes the binaries: module files, flags, Go itself.
# compute_key "MODULE..." TARGET...
compute_key() {
  local mods=$1; shift
  {
    for m in $mods; do cat "$tools/$m/go.mod" "$tools/$m/go.sum"; done
    printf '%s\n' "$@"
    echo "CGO_ENABLED=0 $(go_version)"
  } | sha256sum | cut -c1-16
}

key=$(compute_key "k8s etcd helm" "${targets[@]}")
bindir="$cache_root/bin-$key"
# The nodes' images (pause, busybox) are made from pause.c of the pinned k8s module and
# Debian's static busybox: both are in the key.
node_images=(pause.tar busybox.tar)
images_key() { echo "images v1"; sha256sum /bin/busybox 2>/dev/null || echo "no busybox"; }
node_key=$(compute_key "node containerd" "${node_targets[@]}" "$(images_key)")
nodedir="$cache_root/node-$node_key"

# complete DIR TARGET...
complete() {
  local dir=$1; shift
  [ -f "$dir/.complete" ] || return 1
  local f
  for t in "$@"; do
    f="$dir/${t%%|*}"
    case $f in *.tar) [ -f "$f" ] ;; *) [ -x "$f" ] ;; esac || return 1
  done
}

if [ "${1:-}" = "--print-bindir" ]; then
  if complete "$bindir" "${targets[@]}"; then echo "$bindir"; exit 0; fi
  echo "lab/cluster/build.sh: control-plane binaries not built for key $key (expected $bindir); run: bash lab/cluster/build.sh" >&2
  exit 3
fi
if [ "${1:-}" = "--print-nodedir" ]; then
  if complete "$nodedir" "${node_targets[@]}" "${node_images[@]}"; then echo "$nodedir"; exit 0; fi
  echo "lab/cluster/build.sh: node binaries (kubelet, kube-proxy, containerd) not built for key $node_key (expected $nodedir); run: bash lab/cluster/build.sh" >&2
  exit 3
fi

if ! command -v go >/dev/null 2>&1; then
  echo "lab/cluster/build.sh: ERROR: 'go' is not on PATH; Go >= 1.26 is needed to build the Kubernetes control plane for the tests" >&2
  exit 1
fi

mkdir -p "$cache_root"
# Several engineers (and CI) may run the suite at once: one builder at a time, the others
# wait and then find the binaries ready.
exec 9>"$cache_root/build.lock"
if ! flock -n 9; then
  echo "lab/cluster/build.sh: another build holds $cache_root/build.lock, waiting..."
  flock 9
fi

export GOTOOLCHAIN=local CGO_ENABLED=0
staging=""
trap '[ -z "$staging" ] || rm -rf "$staging"' EXIT

# build_images DIR: the pause image (the sandbox of every pod) and a busybox image (tests'
# ordinary pods), as docker-archives for `ctr images import`. No registry: buildah from scratch.
build_images() {
  local out=$1 w="$1/.images" pause_c
  pause_c="$(cd "$tools/node" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  if [ ! -x /bin/busybox ] || ! command -v buildah >/dev/null || ! command -v gcc >/dev/null; then
    echo "lab/cluster/build.sh: ERROR: the node images need /bin/busybox (busybox-static), buildah and gcc: bash scripts/setup.sh" >&2
    exit 1
  fi
  mkdir -p "$w/pause" "$w/busybox/bin"
  local B=(buildah --root "$w/root" --runroot "$w/run" --storage-driver vfs) c
  gcc -Os -static -DVERSION="$K8S_VERSION" -o "$w/pause/pause" "$pause_c"
  c=$("${B[@]}" from scratch)
  "${B[@]}" copy "$c" "$w/pause/pause" /pause
  "${B[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  "${B[@]}" commit -q "$c" localhost/vipfarm-lab/pause:1 >/dev/null
  cp /bin/busybox "$w/busybox/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$w/busybox/bin/$a" ] || ln -s busybox "$w/busybox/bin/$a"; done
  c=$("${B[@]}" from scratch)
  "${B[@]}" copy "$c" "$w/busybox/" /
  "${B[@]}" config --env PATH=/bin --cmd '["/bin/sh"]' "$c"
  "${B[@]}" commit -q "$c" localhost/vipfarm-lab/busybox:1 >/dev/null
  "${B[@]}" push -q localhost/vipfarm-lab/pause:1 "docker-archive:$out/pause.tar:localhost/vipfarm-lab/pause:1" >/dev/null
  "${B[@]}" push -q localhost/vipfarm-lab/busybox:1 "docker-archive:$out/busybox.tar:localhost/vipfarm-lab/busybox:1" >/dev/null
  "${B[@]}" rm -a >/dev/null 2>&1 || true
  rm -rf "$w"
}

# build_set WHAT DIR TARGET...: builds the targets into DIR (atomically: staging, then mv).
build_set() {
  local what=$1 dir=$2; shift 2
  staging="$dir.tmp.$$"
  rm -rf "$staging"; mkdir -p "$staging"
  local total_start t name mod pkg ldflags tags start
  total_start=$(date +%s)
  for t in "$@"; do
    IFS='|' read -r name mod pkg ldflags tags <<<"$t"
    start=$(date +%s)
    echo "lab/cluster/build.sh: building $name ($pkg)..."
    if ! (cd "$tools/$mod" && go build -trimpath ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$staging/$name" "$pkg"); then
      echo "lab/cluster/build.sh: ERROR: building $name from $tools/$mod failed (see the go errors above)" >&2
      exit 1
    fi
    echo "lab/cluster/build.sh: built $name in $(( $(date +%s) - start ))s"
  done
  if [ "$what" = "node binaries" ]; then
    start=$(date +%s)
    build_images "$staging"
    echo "lab/cluster/build.sh: built the node images (pause, busybox) in $(( $(date +%s) - start ))s"
  fi
  touch "$staging/.complete"
  rm -rf "$dir"
  mv "$staging" "$dir"
  staging=""
  echo "lab/cluster/build.sh: $what built in $(( $(date +%s) - total_start ))s"
}

if complete "$bindir" "${targets[@]}"; then
  echo "lab/cluster/build.sh: cached control-plane binaries (k8s $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION) in $bindir"
else
  echo "lab/cluster/build.sh: building control plane with $(go_version): k8s $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION -> $bindir"
  build_set "control plane" "$bindir" "${targets[@]}"
fi
ln -sfn "$bindir" "$cache_root/current"

if complete "$nodedir" "${node_targets[@]}" "${node_images[@]}"; then
  echo "lab/cluster/build.sh: cached node binaries (kubelet, kube-proxy $K8S_VERSION, containerd $CONTAINERD_VERSION) in $nodedir"
else
  echo "lab/cluster/build.sh: building node binaries with $(go_version): kubelet, kube-proxy $K8S_VERSION, containerd $CONTAINERD_VERSION -> $nodedir"
  build_set "node binaries" "$nodedir" "${node_targets[@]}"
fi
echo "$bindir"

#!/usr/bin/env bash
# Builds the real Kubernetes control plane the tests run (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl), etcd and helm from the pinned Go tools
# modules in lab/cluster/tools/. The binaries go to a cache folder outside the repo,
# keyed on the tools modules and the build flags below, so only the first run pays.
#
#   bash lab/cluster/build.sh                 build if needed, print the bin dir last
#   bash lab/cluster/build.sh --print-bindir  print the bin dir if it is built, else exit 3
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

# name|module dir|main package|ldflags
targets=(
  "kube-apiserver|k8s|k8s.io/kubernetes/cmd/kube-apiserver|$k8s_ldflags"
  "kube-controller-manager|k8s|k8s.io/kubernetes/cmd/kube-controller-manager|$k8s_ldflags"
  "kube-scheduler|k8s|k8s.io/kubernetes/cmd/kube-scheduler|$k8s_ldflags"
  "kubectl|k8s|k8s.io/kubernetes/cmd/kubectl|$k8s_ldflags"
  "etcd|etcd|go.etcd.io/etcd/server/v3|$etcd_ldflags"
  "helm|helm|helm.sh/helm/v3/cmd/helm|$helm_ldflags"
)

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/vipfarm"

# Go's tarball install is often not on a non-login shell's PATH (the key includes Go's version).
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="$PATH:/usr/local/go/bin"; fi

go_version() { command -v go >/dev/null 2>&1 && go env GOVERSION 2>/dev/null || echo none; }

# The key covers everything that changes the binaries: module files, flags, Go itself.
compute_key() {
  {
    for m in k8s etcd helm; do cat "$tools/$m/go.mod" "$tools/$m/go.sum"; done
    printf '%s\n' "${targets[@]}"
    echo "CGO_ENABLED=0 $(go_version)"
  } | sha256sum | cut -c1-16
}

key=$(compute_key)
bindir="$cache_root/bin-$key"

complete() {
  [ -f "$bindir/.complete" ] || return 1
  for t in "${targets[@]}"; do [ -x "$bindir/${t%%|*}" ] || return 1; done
}

if [ "${1:-}" = "--print-bindir" ]; then
  if complete; then echo "$bindir"; exit 0; fi
  echo "lab/cluster/build.sh: control-plane binaries not built for key $key (expected $bindir); run: bash lab/cluster/build.sh" >&2
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

if complete; then
  ln -sfn "$bindir" "$cache_root/current"
  echo "lab/cluster/build.sh: cached control-plane binaries (k8s $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION) in $bindir"
  echo "$bindir"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0
echo "lab/cluster/build.sh: building control plane with $(go_version): k8s $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION -> $bindir"
staging="$bindir.tmp.$$"
rm -rf "$staging"; mkdir -p "$staging"
trap 'rm -rf "$staging"' EXIT
total_start=$(date +%s)
for t in "${targets[@]}"; do
  IFS='|' read -r name mod pkg ldflags <<<"$t"
  start=$(date +%s)
  echo "lab/cluster/build.sh: building $name ($pkg)..."
  if ! (cd "$tools/$mod" && go build -trimpath -ldflags "$ldflags" -o "$staging/$name" "$pkg"); then
    echo "lab/cluster/build.sh: ERROR: building $name from $tools/$mod failed (see the go errors above)" >&2
    exit 1
  fi
  echo "lab/cluster/build.sh: built $name in $(( $(date +%s) - start ))s"
done
touch "$staging/.complete"
rm -rf "$bindir"
mv "$staging" "$bindir"
trap - EXIT
ln -sfn "$bindir" "$cache_root/current"
echo "lab/cluster/build.sh: control plane built in $(( $(date +%s) - total_start ))s"
echo "$bindir"

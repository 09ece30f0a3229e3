#!/usr/bin/env bash
# The vipfarm demo: sets everything up (scripts/setup.sh), then runs a 3-node farm of
# agents in network namespaces with real traffic through a failover (dist/demo/src/demo.js).
# `--dataplane` shows the kernel filter alone with a fixed bucket split; `--kubernetes`
# runs it the Kubernetes way: a local control plane, real nodes (containerd + kubelet +
# kube-proxy in namespaces) running the project's image, `helm install`. Needs root.
# Whatever happens (Ctrl-C included), the namespaces it made are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, nftables)" >&2; exit 1; }

args=()
need_cluster=0
case "${1:-}" in
  --dataplane) script=dist/lab/netns/demo-dataplane.js ;;
  --kubernetes)
    need_cluster=1
    script=dist/demo/src/demo-kubernetes.js; shift; args=("$@") ;;
  "") script=dist/demo/src/demo.js ;;
  -h|--help)
    echo "usage: bash scripts/demo.sh [--dataplane | --kubernetes [--duration SEC]]"
    echo "  (none)        3 agents in network namespaces, live traffic, a SIGKILL takeover and a rejoin"
    echo "  --dataplane   the kernel filter alone, with a fixed bucket split"
    echo "  --kubernetes  a local control plane, real nodes running the project's image, the chart and a FarmCluster; use kubectl while traffic flows"
    exit 0 ;;
  *) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
esac

bash scripts/setup.sh >&2
# the control plane and node binaries are built from Go modules once and cached (~8 min the
# first time); the image is built by buildah, cached per source tree (minutes the first time)
[ "$need_cluster" = 1 ] && bash lab/cluster/build.sh >&2

node "$script" "${args[@]}" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # the demo's test bed names its namespaces vf<pid mod 10000>0-*; normally it already
  # deleted them itself, this catches a kill -9
  for ns in $(ip netns list | awk '{print $1}' | grep "^vf$((pid % 10000))0-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait "$pid"

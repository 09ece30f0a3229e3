#!/usr/bin/env bash
# The vipfarm demo: sets everything up (scripts/setup.sh), then runs a 3-node farm in
# network namespaces with real traffic (dist/test/netns/demo-dataplane.js). Needs root.
# Whatever happens (Ctrl-C included), the namespaces it made are removed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, nftables)" >&2; exit 1; }

bash scripts/setup.sh

node dist/test/netns/demo-dataplane.js &
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

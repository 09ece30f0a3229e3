#!/usr/bin/env bash
# Installs and builds everything vipfarm needs on a fresh Debian machine (buildah and
# debootstrap are for the container image; runc, the CNI plugins and busybox-static for the
# test bed's real nodes: lab/cluster/realnodes.ts). Idempotent:
# each step is skipped when its result is already there and up to date. keepalived is what `npm run bench -- peers` compares with.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '[setup] %s\n' "$*"; }
t0=$(date +%s)

need_pkgs=()
for p in nftables libnftnl-dev libmnl-dev iproute2 tcpdump openssl buildah debootstrap \
         runc containernetworking-plugins busybox-static keepalived; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: installing ${need_pkgs[*]} needs root" >&2; exit 1; }
  step "apt-get install ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

lock_sum=$(sha256sum package-lock.json | cut -c1-16)
if [ ! -f node_modules/.vipfarm-lock ] || [ "$(cat node_modules/.vipfarm-lock)" != "$lock_sum" ]; then
  step "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > node_modules/.vipfarm-lock
fi

node_dir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ ! -f native/build/Release/vipfarm_native.node ] || \
   [ -n "$(find native/src native/binding.gyp -newer native/build/Release/vipfarm_native.node 2>/dev/null | head -1)" ]; then
  step "building native module (node-gyp, headers from $node_dir)"
  (cd native && ../node_modules/.bin/node-gyp rebuild --nodedir="$node_dir" --loglevel=error >/dev/null)
fi

step "compiling TypeScript"
# A CI clone starts clean; locally stale outputs are overwritten (other runs may be using dist/)
[ "${CI:-}" = true ] && rm -rf dist
node_modules/.bin/tsc -p tsconfig.json

step "ready in $(( $(date +%s) - t0 ))s"

#!/usr/bin/env bash
# Builds the repository's Dockerfile without a Docker engine: buildah (chroot isolation, vfs
# storage) with NODE_IMAGE set to a local base made here, because no registry image may be
# pulled: Debian bookworm from debootstrap (deb.debian.org) plus this machine's Node.js
# (the nodejs package's files and its npm) and CA bundle. The base is cached.
#
#   test/operator/build-image.sh TAG [CONTEXT]   build CONTEXT (default: git HEAD) as TAG
#   VIPFARM_IMAGE_STORE=dir                      buildah storage (default ~/.cache/vipfarm/image)
# Prints the buildah storage flags on the last line, for `buildah $flags run ...`.
set -euo pipefail
tag=${1:?usage: build-image.sh TAG [CONTEXT]}
repo=$(cd "$(dirname "$0")/../.." && pwd)
store=${VIPFARM_IMAGE_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/vipfarm/image}
flags="--root $store/root --runroot $store/run --storage-driver vfs"
B() { buildah $flags "$@"; }
mkdir -p "$store"
tmp=$(mktemp -d /var/tmp/vipfarm-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

base="localhost/vipfarm-node-base:bookworm-node$(node --version)"
if ! B inspect --type image "$base" >/dev/null 2>&1; then
  rootfs=$tmp/rootfs
  echo "[build-image] debootstrap bookworm" >&2
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
  # Node.js as this machine has it (the image's NODE_IMAGE must have node >= 20 and its headers).
  dpkg -L nodejs | while read -r f; do if [ -f "$f" ] || [ -L "$f" ]; then echo "${f#/}"; fi; done \
    | tar -C / -cf - -T - | tar -C "$rootfs" -xf -
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  rm -rf "${rootfs:?}$npm_dir" && mkdir -p "$rootfs$(dirname "$npm_dir")" && cp -a "$npm_dir" "$rootfs$npm_dir"
  ln -sf "$npm_dir/bin/npm-cli.js" "$rootfs/usr/bin/npm"
  env_args=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    # Registries here are reached through a TLS proxy whose CA only the host bundle has.
    mkdir -p "$rootfs/etc/ssl/certs" && cp "$NODE_EXTRA_CA_CERTS" "$rootfs/etc/ssl/certs/host-ca.crt"
    env_args+=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt)
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  echo "[build-image] committing $base" >&2
  ctr=$(B from scratch)
  tar -C "$rootfs" -cf "$tmp/rootfs.tar" .
  B add "$ctr" "$tmp/rootfs.tar" / >/dev/null
  B config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${env_args[@]}" "$ctr"
  B commit -q "$ctr" "$base" >/dev/null
  B rm "$ctr" >/dev/null
  rm -rf "$rootfs" "$tmp/rootfs.tar"
fi

ctx=${2:-}
if [ -z "$ctx" ]; then
  ctx=$tmp/context
  mkdir -p "$ctx"
  git -C "$repo" archive HEAD | tar -C "$ctx" -x
fi
echo "[build-image] buildah bud $tag from $ctx" >&2
B bud --isolation chroot --network host --build-arg NODE_IMAGE="$base" -t "$tag" "$ctx" >"$tmp/bud.log" 2>&1 \
  || { tail -40 "$tmp/bud.log" >&2; exit 1; }
echo "$flags"

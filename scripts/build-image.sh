#!/usr/bin/env bash
# Builds the vipfarm image (both programs, see the Dockerfile) and optionally pushes it to
# your registry, then prints the `helm install` that uses it. The chart's default image is
# not published anywhere: build and push your own.
#
#   scripts/build-image.sh [--tag IMAGE] [--push REGISTRY/REPO:TAG] [--node-image IMAGE|local]
#
#   --tag IMAGE         local name of the image (default localhost/vipfarm:<package version>)
#   --push REF          also push it as REF (e.g. registry.example.com/infra/vipfarm:0.1.0);
#                       log in first (docker login / buildah login)
#   --node-image IMAGE  the Dockerfile's NODE_IMAGE (default node:20-bookworm-slim); "local"
#                       builds one without any registry: Debian bookworm from debootstrap plus
#                       this machine's Node.js and CA bundle (buildah only; cached)
#   --context DIR       build DIR instead of the committed tree (git HEAD)
#
# Builder: `docker build` when a Docker engine answers, else buildah (chroot isolation, no
# daemon). VIPFARM_BUILDER=docker|buildah forces one. VIPFARM_IMAGE_STORE=DIR keeps buildah's
# images in DIR (vfs storage; for machines where overlay storage does not work, and tests).
#
# Stdout is only key=value lines, for scripts: image=, pushed=, builder=, buildah_flags=,
# helm_set= (the --set arguments naming the image for the chart). Progress goes to stderr.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$repo/package.json').version")
tag=localhost/vipfarm:$version
push=""
node_image=""
ctx=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=${2:?--tag needs IMAGE}; shift 2 ;;
    --push) push=${2:?--push needs REGISTRY/REPO:TAG}; shift 2 ;;
    --node-image) node_image=${2:?--node-image needs IMAGE or local}; shift 2 ;;
    --context) ctx=${2:?--context needs DIR}; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
# A reference without a tag would make helm's image.tag empty (the chart then uses its appVersion).
for ref in "$tag" ${push:+"$push"}; do
  [[ "${ref##*/}" == *:* ]] || { echo "build-image: $ref has no :TAG" >&2; exit 2; }
done
log() { echo "[build-image] $*" >&2; }

builder=${VIPFARM_BUILDER:-}
if [ -z "$builder" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker
  elif command -v buildah >/dev/null; then builder=buildah
  else echo "build-image: neither a Docker engine nor buildah found; install one (apt-get install buildah)" >&2; exit 1
  fi
fi

tmp=$(mktemp -d /var/tmp/vipfarm-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$ctx" ]; then
  ctx=$tmp/context
  mkdir -p "$ctx"
  git -C "$repo" archive HEAD | tar -C "$ctx" -x
  log "context: git HEAD $(git -C "$repo" rev-parse --short HEAD) (uncommitted changes are not in the image)"
fi

flags=()
if [ -n "${VIPFARM_IMAGE_STORE:-}" ]; then
  store=$VIPFARM_IMAGE_STORE
  mkdir -p "$store"
  flags=(--root "$store/root" --runroot "$store/run" --storage-driver vfs)
fi
B() { buildah "${flags[@]}" "$@"; }

# NODE_IMAGE made here from debootstrap and the host's Node.js: for machines that reach
# Debian's mirror but no container registry.
local_base() {
  local base="localhost/vipfarm-node-base:bookworm-node$(node --version)"
  if B inspect --type image "$base" >/dev/null 2>&1; then echo "$base"; return; fi
  local rootfs=$tmp/rootfs
  log "debootstrap bookworm for $base"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
  # Node.js as this machine has it (NODE_IMAGE must have node >= 20 and its headers).
  dpkg -L nodejs | while read -r f; do if [ -f "$f" ] || [ -L "$f" ]; then echo "${f#/}"; fi; done \
    | tar -C / -cf - -T - | tar -C "$rootfs" -xf -
  local npm_dir
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  rm -rf "${rootfs:?}$npm_dir" && mkdir -p "$rootfs$(dirname "$npm_dir")" && cp -a "$npm_dir" "$rootfs$npm_dir"
  ln -sf "$npm_dir/bin/npm-cli.js" "$rootfs/usr/bin/npm"
  local env_args=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    # Registries here are reached through a TLS proxy whose CA only the host bundle has.
    mkdir -p "$rootfs/etc/ssl/certs" && cp "$NODE_EXTRA_CA_CERTS" "$rootfs/etc/ssl/certs/host-ca.crt"
    env_args+=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt)
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  log "committing $base"
  local ctr
  ctr=$(B from scratch)
  tar -C "$rootfs" -cf "$tmp/rootfs.tar" .
  B add "$ctr" "$tmp/rootfs.tar" / >/dev/null
  B config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${env_args[@]}" "$ctr"
  B commit -q "$ctr" "$base" >/dev/null
  B rm "$ctr" >/dev/null
  rm -rf "$rootfs" "$tmp/rootfs.tar"
  echo "$base"
}

build_args=()
if [ "$node_image" = local ]; then
  [ "$builder" = buildah ] || { echo "build-image: --node-image local needs buildah" >&2; exit 2; }
  node_image=$(local_base)
fi
[ -n "$node_image" ] && build_args=(--build-arg "NODE_IMAGE=$node_image")

log "$builder: building $tag${node_image:+ on $node_image}"
if [ "$builder" = docker ]; then
  docker build "${build_args[@]}" -t "$tag" "$ctx" >&2
  if [ -n "$push" ]; then
    docker tag "$tag" "$push"
    log "pushing $push"
    docker push "$push" >&2
  fi
else
  B bud --isolation chroot --network host "${build_args[@]}" -t "$tag" "$ctx" >"$tmp/bud.log" 2>&1 \
    || { tail -40 "$tmp/bud.log" >&2; exit 1; }
  if [ -n "$push" ]; then
    log "pushing $push"
    B push "$tag" "docker://$push" >&2
  fi
fi

# What the chart needs to run this image: the reference users pull (the pushed one, if any).
final=${push:-$tag}
echo "image=$final"
[ -n "$push" ] && echo "pushed=$push"
echo "builder=$builder"
[ "$builder" = buildah ] && echo "buildah_flags=${flags[*]}"
helm_set="--set image.repository=${final%:*} --set image.tag=${final##*:}"
echo "helm_set=$helm_set"
log "done. Install the chart with this image:"
log "  helm install vipfarm ./helm/vipfarm -n vipfarm-system --create-namespace $helm_set"
[ -z "$push" ] && log "  (a cluster pulls from a registry: rerun with --push REGISTRY/REPO:TAG, or load $tag into each node's runtime)"
exit 0

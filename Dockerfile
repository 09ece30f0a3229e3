# One image for both programs of vipfarm; the command picks one:
#   operator: node /app/dist/operator/src/main.js ...      (the Helm chart's Deployment)
#   agent:    node /app/dist/agent/src/main.js --kubernetes --farm NAME   (the operator's DaemonSets)
#
# NODE_IMAGE must provide Node.js >= 20 on Debian bookworm (the runtime libraries below are
# bookworm's). The build stage has the compilers and -dev packages; the runtime stage only
# node, libnftnl and libmnl (what vipfarm_native.node links besides libc/libstdc++).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 make g++ pkg-config libnftnl-dev libmnl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY common/ common/
COPY native/ native/
COPY agent/ agent/
COPY operator/ operator/
# Headers from the node installation itself: node-gyp must not download anything.
RUN node_dir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" \
 && cd native && ../node_modules/.bin/node-gyp rebuild --nodedir="$node_dir"
RUN node_modules/.bin/tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libnftnl11 libmnl0 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/common ./dist/common
COPY --from=build /src/dist/native ./dist/native
COPY --from=build /src/dist/agent ./dist/agent
COPY --from=build /src/dist/operator ./dist/operator
COPY --from=build /src/native/build/Release/vipfarm_native.node ./native/build/Release/vipfarm_native.node
ENV NODE_ENV=production
# The agent needs root with NET_ADMIN and NET_RAW (the DaemonSet grants only those); the
# chart runs the operator as user 65532.
CMD ["node", "/app/dist/operator/src/main.js", "--help"]

# syntax=docker/dockerfile:1
#
# nova-temporal: one application tree, /opt/nova-temporal, two ways to run it.
#
#   docker build -t nova-temporal .                          # control plane (default target)
#   docker run nova-temporal                                 # node dist/src/control-plane/main.js, as user node
#   docker build --target compute -t nova-temporal-compute . # same tree + the host tools the worker runs
#   docker run --network host --privileged ... nova-temporal-compute  # node dist/src/worker.js, as root (docs/production.md)
#
# The usual way to run the compute worker is NOT a container: it runs on each
# compute host under systemd (deploy/systemd/nova-temporal-compute.service),
# from this same tree copied to /opt/nova-temporal (docs/production.md).

ARG NODE_MAJOR=20

# ---------------------------------------------------------------- build
FROM node:${NODE_MAJOR}-bookworm AS build

# native/ (our N-API binding over libvirt) and better-sqlite3 compile here.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvirt-dev pkg-config python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/nova-temporal

# .npmrc says nodedir=/usr (Debian's node headers on our hosts); the node
# image keeps its headers under /usr/local, and the environment wins over
# the project .npmrc, so node-gyp builds offline against the running node.
ENV npm_config_nodedir=/usr/local

COPY package.json package-lock.json .npmrc ./
COPY native/ native/
# npm ci also runs native/'s install script (node-gyp rebuild).
RUN npm ci --no-audit --no-fund

COPY tsconfig.json ./
COPY src/ src/
# Only src/ is in the context (.dockerignore), so tsc emits dist/src/ alone;
# then the dev dependencies (typescript, node-gyp, test tools) are dropped.
RUN npx tsc -p tsconfig.json \
 && test -f dist/src/control-plane/main.js \
 && test -f dist/src/worker.js \
 && test -f native/build/Release/libvirt_binding.node \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf native/build/Release/obj.target native/build/Release/.deps

# ---------------------------------------------------------------- app
FROM node:${NODE_MAJOR}-bookworm-slim AS app

# libvirt0: the shared library the binding links (pkg-config --libs libvirt).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvirt0 \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production \
    NT_STATE_DIR=/var/lib/nova-temporal
WORKDIR /opt/nova-temporal
COPY --from=build /opt/nova-temporal/package.json ./
COPY --from=build /opt/nova-temporal/node_modules/ node_modules/
COPY --from=build /opt/nova-temporal/native/ native/
COPY --from=build /opt/nova-temporal/dist/ dist/
RUN install -d -o node -g node -m 0750 /var/lib/nova-temporal

# ---------------------------------------------------------------- compute
# The compute worker (dist/src/worker.js) runs ip, ethtool, nft, ovs-vsctl
# and qemu-img. In a container it needs root, the host's network namespace
# and the libvirt and OVS sockets: see docs/production.md.
FROM app AS compute
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 ethtool nftables openvswitch-switch qemu-utils \
 && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/worker.js"]

# ---------------------------------------------------------------- control plane (default)
FROM app AS control-plane
# The node image's unprivileged user "node", by number so that a runtime can
# check non-root without resolving the name.
USER 1000:1000
EXPOSE 8774
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/control-plane/main.js"]

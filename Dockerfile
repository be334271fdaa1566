# notebook-gateway image: docker build -t notebook-gateway .
# Run: docker run --restart unless-stopped -v /etc/gateway:/etc/gateway:ro -v gateway-data:/var/lib/gateway -p 80:80 -p 443:443 notebook-gateway
# (a restart policy is set by the run, not the image: the gateway exits 70 on a bug, after a gateway.crashed line)
# The image installs the same Debian package as a server does (packaging/build-deb.sh): the gateway
# with its own Node in /usr/lib/notebook-gateway. The base images are arguments so a local build
# can use locally made ones.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md ./
COPY src ./src
COPY nginx-compat ./nginx-compat
COPY packaging ./packaging
RUN DEB_COMPRESSION=gzip bash packaging/build-deb.sh /out

FROM ${BASE_IMAGE}
# The user first, with a fixed uid (10001) that volumes and mounted files can be owned by; the
# package keeps an existing gateway user. tini as PID 1 reaps children (the ssh tunnel) and forwards
# signals (seed 000: Jupyter in Docker without an init crashes kernels). openssh-client for
# `tunnel:`. The capability lets the non-root user bind 80 and 443, and nothing else.
COPY --from=build /out/ /tmp/deb/
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/gateway --no-create-home --shell /usr/sbin/nologin gateway \
 && apt-get update \
 && apt-get install -y --no-install-recommends tini openssh-client libcap2-bin /tmp/deb/notebook-gateway_*.deb \
 && setcap cap_net_bind_service=+ep /usr/lib/notebook-gateway/node \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /tmp/deb
USER gateway
# Config (gateway.yaml, with storage: /var/lib/gateway) is mounted read-only; storage keeps keys and
# certificates. A tunnel's identity file mounted in must be readable by uid 10001 and mode 0600.
VOLUME ["/etc/gateway", "/var/lib/gateway"]
EXPOSE 80 443
# Asks the running gateway's admin endpoint, wherever gateway.yaml puts it (admin: must not be false).
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s \
  CMD ["gateway", "healthz", "--config", "/etc/gateway/gateway.yaml"]
ENTRYPOINT ["/usr/bin/tini", "--", "gateway"]
CMD ["serve", "--config", "/etc/gateway/gateway.yaml"]

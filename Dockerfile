# notebook-gateway image: docker build -t notebook-gateway .
# Run: docker run --restart unless-stopped -v /etc/gateway:/etc/gateway:ro -v gateway-data:/var/lib/gateway -p 80:80 -p 443:443 notebook-gateway
# (a restart policy is set by the run, not the image: the gateway exits 70 on a bug, after a gateway.crashed line)
# The base image is an argument so a local build can use a locally made Node image.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY nginx-compat ./nginx-compat
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# tini as PID 1 reaps children (the ssh tunnel) and forwards signals (seed 000: Jupyter in Docker
# without an init crashes kernels). openssh-client for `tunnel:`. The capability lets the non-root
# user bind 80 and 443, and nothing else. (No ca-certificates: Node trusts its own Mozilla bundle.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini openssh-client libcap2-bin \
 && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")" \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/gateway --shell /usr/sbin/nologin gateway \
 && install -d -o gateway -g gateway -m 0700 /var/lib/gateway \
 && install -d -m 0755 /etc/gateway
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# import-nginx / export-nginx load this lazily.
COPY --from=build /src/dist/nginx-compat ./dist/nginx-compat
USER gateway
# Config (gateway.yaml, with storage: /var/lib/gateway) is mounted read-only; storage keeps keys and certificates.
VOLUME ["/etc/gateway", "/var/lib/gateway"]
EXPOSE 80 443
# The admin endpoint (admin: 127.0.0.1:2019, the default) answers /healthz inside the container.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:2019/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/src/main.js"]
CMD ["serve", "--config", "/etc/gateway/gateway.yaml"]

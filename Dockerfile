# syntax=docker/dockerfile:1
# Build stage: install with dev dependencies, compile TypeScript, then drop dev dependencies.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npm ci --omit=optional --no-audit --no-fund \
    && npm prune --omit=dev --omit=optional

# Run stage: only the compiled code, runtime dependencies and protos.
FROM node:22-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json fulcrum.schema.json ./
COPY protos ./protos
COPY examples/tcp-basic.yaml /etc/fulcrum/fulcrum.yaml
USER 10001:10001
EXPOSE 9000
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["--config", "/etc/fulcrum/fulcrum.yaml"]

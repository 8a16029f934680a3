# syntax=docker/dockerfile:1
# The Baton node image: a bundled node (services/node) on a slim Node.js 20,
# run as the unprivileged `node` user. Mount or layer your handler modules and
# name them in BATON_HANDLERS.

FROM node:20-bookworm-slim AS build
RUN npm install -g pnpm@10
WORKDIR /src
COPY . .
RUN pnpm install --frozen-lockfile && pnpm --filter @baton/node build

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    BATON_HTTP_HOST=0.0.0.0 \
    BATON_HTTP_PORT=9464
WORKDIR /app
COPY --from=build --chown=node:node /src/services/node/dist/ /app/
COPY --from=build --chown=node:node /src/examples/handlers /app/handlers
USER node
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:9464/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/main.mjs"]

# Multi-stage build: compile TypeScript with dev dependencies, then ship only
# the compiled code and production dependencies, running as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
RUN npx tsc -p tsconfig.json

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY sip-profiles ./sip-profiles
COPY routing-rules ./routing-rules
# The embedded store's file (no REDIS_URL): keep it on a volume to survive the container.
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME /app/data
USER node
# SIP over UDP and TCP, SIP over WebSocket, admin API.
EXPOSE 5060/udp 5060/tcp 5066/tcp 8080/tcp
# V8 flags: src/node-flags.ts (the tests run the server with the same ones).
ENTRYPOINT ["node", "--no-allocation-site-pretenuring", "--heap-growing-percent=30", "dist/src/main.js"]

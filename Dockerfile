# One image for every service of the notification orchestrator. The service is chosen
# by the command:
#
#   docker run IMAGE node services/gateway/dist/main.js
#   docker run IMAGE node services/dispatcher/dist/main.js
#   docker run IMAGE node services/sender/dist/main.js
#   docker run IMAGE node services/dlq-monitor/dist/main.js
#   docker run IMAGE node tools/wechat-simulator/dist/main.js   (local use only)
#
# Configuration comes only from environment variables (NATS_URL, GATEWAY_PORT, ...).
#
# Signals: tini is PID 1 (ENTRYPOINT). It forwards SIGTERM/SIGINT to node and reaps
# zombies, so `docker stop`, Compose and Kubernetes reach the services' own handlers,
# which drain in-flight work (up to ~25 s) before exiting. Set the orchestrator's grace
# period above that (Compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
# Override the command (Compose `command:`, Kubernetes `args:`), never the entrypoint;
# if you must replace the entrypoint, run with `docker run --init` instead.

# The base of every stage: Node 20 on Debian with apt-get, npm in the build stages. A build
# argument, so a test can build on a locally made image (test/compose/run.sh).
ARG NODE_IMAGE=node:20-bookworm-slim

# Few layers on purpose: with a copying storage driver (vfs, as in test/compose/run.sh)
# every layer costs a full copy of the filesystem. .dockerignore keeps the context small.

# --- manifests: only the package.json files, so `npm ci` is cached until they change ---
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . ./
RUN find . -type f ! -name package.json -delete && find . -type d -empty -delete

# --- build: install everything, compile the workspace, then drop dev dependencies ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false
COPY --from=manifests /src ./
COPY package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY . ./
RUN npm run build
# Production dependencies only; TypeScript sources, build info, the benchmark and the
# scripts are not needed at run time (the packages' "default" export condition points at dist/).
RUN npm prune --omit=dev \
 && rm -rf libs/*/src tools/*/src services/*/src bench scripts docs tsconfig.json tsconfig.base.json \
 && find . -name '*.tsbuildinfo' -not -path './node_modules/*' -delete

# --- runtime ---
FROM ${NODE_IMAGE} AS runtime
# tini from the distribution, unless the base image already has it.
RUN command -v tini >/dev/null \
 || (apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*)
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the service user: the app cannot rewrite its own code.
COPY --from=build /app /app
# The base image's `node` user, numeric so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# Gateway HTTP port; workers serve /metrics, /healthz, /readyz on METRICS_PORT.
EXPOSE 3000 9464
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "services/gateway/dist/main.js"]

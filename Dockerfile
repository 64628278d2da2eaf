# One Dockerfile for the three services: `--build-arg SERVICE=auth`, `SERVICE=checkin` or
# `SERVICE=processor` (the checkin processor). All are built from the same workspace, lockfile and
# toolchain, so no image can drift from the others; the build stage is identical (and cached) for all
# three, only the `pnpm deploy` filter differs.
#
#   docker build --build-arg SERVICE=auth      -t ncc-auth .
#   docker build --build-arg SERVICE=checkin   -t ncc-checkin .
#   docker build --build-arg SERVICE=processor -t ncc-processor .
#
# test/artifact.test.ts runs the `pnpm deploy` line below and the CMD below on a real Redis, so a
# missing runtime dependency or a wrong start command fails the test suite, not a user's machine.
# Plain Dockerfile syntax only (no RUN --mount): it builds with BuildKit and with the classic builder
# that Debian's docker-compose 1.x uses.

# Node 20: the major version the tests run on (.ci/run, package.json "engines").
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
# corepack fails on registry signatures in some environments; npm installs the pinned pnpm release
# (the same version as package.json "packageManager", so pnpm does not try to switch versions).
ARG PNPM_VERSION=10.34.9
RUN npm install -g "pnpm@${PNPM_VERSION}" && pnpm --version
WORKDIR /src

# Dependencies first, from the lockfile alone: this layer is reused until pnpm-lock.yaml changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc ./
RUN pnpm fetch --frozen-lockfile

COPY . .
RUN pnpm install --offline --frozen-lockfile
# The same build CI runs before the tests: every workspace package compiled to dist/.
RUN pnpm build

# Exactly one service with its production dependencies only. Workspace packages (@ncc/session,
# @ncc/service-kit, @ncc/checkins) are copied in as packages (their "files": dist) and resolve to dist/ through
# their "exports" "import" condition. `--legacy`: pnpm 10's default deploy needs
# inject-workspace-packages=true, which would change how the whole workspace links during development.
ARG SERVICE=auth
RUN case "${SERVICE}" in auth|checkin|processor) ;; *) echo "SERVICE must be auth, checkin or processor, not '${SERVICE}'" >&2; exit 1 ;; esac
RUN pnpm deploy --filter "@ncc/${SERVICE}" --prod --legacy /out

# ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root, run as `node` (uid 1000): the service cannot rewrite its own code.
COPY --from=build /out/ /app/
USER node
# Exec form: node gets SIGTERM directly and shuts down gracefully (runService handles SIGTERM/SIGINT).
# Compose adds `init: true` (tini as PID 1) to reap zombies and forward signals; with plain
# `docker run`, pass `--init` for the same.
CMD ["node", "dist/main.js"]

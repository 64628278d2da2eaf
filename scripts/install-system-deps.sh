#!/usr/bin/env bash
# Installs the system packages the tests need when they are missing: redis-server (and redis-cli),
# and docker-compose (only to validate docker-compose.yml; no Docker engine is installed or needed).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "install: redis-server not found, installing it with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package may start a service on 6379; the tests never use it.
fi
redis-server --version

# Debian's docker-compose 1.x validates a compose file without an engine (`docker-compose config -q`,
# test/compose.test.ts). --no-install-recommends, or apt pulls in the whole Docker engine.
if ! command -v docker-compose >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "install: docker-compose not found, installing it with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  else
    # Outside CI the compose test then skips (saying so); in CI (CI set) it fails.
    echo "install: docker-compose not found and no apt-get; install it to validate docker-compose.yml"
  fi
fi
if command -v docker-compose >/dev/null 2>&1; then docker-compose version --short; fi

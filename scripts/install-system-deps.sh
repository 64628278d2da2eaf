#!/usr/bin/env bash
# Installs the system packages the project needs when they are missing, with the platform's package
# manager when this user may use it — apt-get as root, or through sudo (without a password, or at a
# terminal where sudo can ask for it); Homebrew for redis-server, prometheus and nginx on macOS — and
# says so as it happens. When it may not, it prints one line naming what to install.
#
#   bash scripts/install-system-deps.sh                what the tests need: redis-server (and redis-cli),
#                                                      docker-compose (only to validate docker-compose.yml;
#                                                      no Docker engine is installed or needed), prometheus
#                                                      (only for its promtool, to validate
#                                                      deploy/prometheus/prometheus.yml), nginx (Debian's
#                                                      nginx-light: the gateway test runs
#                                                      deploy/nginx/gateway.conf in it), chromium (for
#                                                      the browser tests)
#   bash scripts/install-system-deps.sh redis-server   what `pnpm start` needs
#
# Exit 1 when redis-server is still missing afterwards; a missing docker-compose, promtool, nginx or
# chromium is only reported (the tests that need one — test/compose.test.ts, the promtool checks of
# test/observability-config.test.ts, test/gateway/nginx.e2e.test.ts, the browser tests — then skip
# outside CI, saying so, and fail in CI).
set -euo pipefail

wanted=("$@")
if [ "${#wanted[@]}" -eq 0 ]; then wanted=(redis-server docker-compose prometheus nginx chromium); fi

# Debian installs nginx in /usr/sbin, which a normal user's PATH often lacks: look there too, so an
# installed nginx is found (and not installed again). test/gateway/nginx.e2e.test.ts looks there as well.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin" ;; esac

APT=""
HOW=""
WHY_NOT=""
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    APT="apt-get" HOW="apt-get"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    APT="sudo apt-get" HOW="sudo apt-get"
  elif command -v sudo >/dev/null 2>&1 && [ -t 0 ]; then
    APT="sudo apt-get" HOW="sudo apt-get (sudo may ask for your password)"
  else
    WHY_NOT="not root, and sudo is missing or needs a password that cannot be asked for here"
  fi
elif ! command -v brew >/dev/null 2>&1; then
  WHY_NOT="neither apt-get nor Homebrew found"
fi

updated=""
apt_install() { # apt_install <package>; set -e does not apply inside a condition, hence the &&s
  if [ -z "$updated" ]; then
    $APT update -qq && updated=yes || return 1
  fi
  # --no-install-recommends: docker-compose would otherwise pull in the whole Docker engine (and
  # prometheus its node exporter, chromium a set of fonts and desktop integration).
  DEBIAN_FRONTEND=noninteractive $APT install -y -qq --no-install-recommends "$1" >/dev/null
}

# install_missing <command> <apt package> <brew package or "">: 0 when <command> is on PATH afterwards.
install_missing() {
  local command="$1" apt_package="$2" brew_package="$3"
  if command -v "$command" >/dev/null 2>&1; then return 0; fi
  if [ -n "$APT" ]; then
    echo "install: $command not found; installing the $apt_package package with $HOW"
    apt_install "$apt_package" || { echo "install: $APT install $apt_package failed"; return 1; }
  elif [ -z "$WHY_NOT" ] && [ -n "$brew_package" ]; then
    echo "install: $command not found; installing it with brew install $brew_package"
    brew install "$brew_package" >/dev/null || { echo "install: brew install $brew_package failed"; return 1; }
  else
    echo "install: $command not found and cannot be installed here (${WHY_NOT:-no package for this platform}); install it yourself: Debian/Ubuntu: sudo apt-get install $apt_package${brew_package:+; macOS: brew install $brew_package}"
    return 1
  fi
  if ! command -v "$command" >/dev/null 2>&1; then
    echo "install: installed $apt_package, but $command is still not on PATH ($PATH)"
    return 1
  fi
}

status=0
for want in "${wanted[@]}"; do
  case "$want" in
    redis-server)
      # The Debian package may start a service on 6379; the tests never use it.
      if install_missing redis-server redis-server redis && install_missing redis-cli redis-tools redis; then
        redis-server --version
      else
        status=1
      fi
      ;;
    docker-compose)
      # Debian's docker-compose 1.x validates a compose file without an engine (`docker-compose config -q`).
      if install_missing docker-compose docker-compose ""; then docker-compose version --short; fi
      ;;
    prometheus)
      # The Debian package brings both prometheus and promtool (`promtool check config`); where systemd
      # runs, it also starts a server on 9090, which the tests never use.
      if install_missing promtool prometheus prometheus; then promtool --version 2>&1 | sed -n 1p; fi
      ;;
    nginx)
      # nginx-light: the smallest Debian build with what deploy/nginx/gateway.conf uses (proxy, map,
      # static files); it provides the `nginx` binary. Debian's package may start a server on port 80,
      # which the tests never use.
      if install_missing nginx nginx-light nginx; then nginx -v 2>&1; fi
      ;;
    chromium)
      # A headless browser for the browser tests of the gateway's page; Homebrew has it only as a cask.
      if install_missing chromium chromium ""; then chromium --version 2>/dev/null || true; fi
      ;;
    *)
      echo "install: unknown dependency '$want' (known: redis-server, docker-compose, prometheus, nginx, chromium)" >&2
      status=1
      ;;
  esac
done
exit "$status"

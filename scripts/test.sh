#!/usr/bin/env bash
# Set up from nothing, lint, and run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The browser extension: its dev tools (web-ext, pinned by extension/package-lock.json) from the npm registry,
# then Mozilla's add-on linter. Errors fail the run; the one expected warning (Firefox ignores
# background.service_worker and runs background.scripts instead) is printed, not fatal.
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
command -v npm >/dev/null 2>&1 || { echo "test: npm (Node.js 20+) is needed to lint the extension" >&2; exit 1; }
(cd extension && npm ci --no-audit --no-fund --loglevel=error && npm run --silent lint)
# The browser tests drive the system Chromium (never a Playwright download); install it where we can.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  else
    echo "test: /usr/bin/chromium is missing, so the browser tests will be skipped;" \
      "install it with: sudo apt-get install -y chromium" >&2
  fi
fi
# The feedback tests start a throwaway PostgreSQL server of their own (Debian's package; never the system's
# cluster): install it where we can.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
  else
    echo "test: PostgreSQL is missing, so the PostgreSQL feedback tests will be skipped;" \
      "install it with: sudo apt-get install -y postgresql" >&2
  fi
fi
# The scale-out test puts two replicas behind HAProxy with Redis for rate limits (Debian's packages; the
# test starts its own of each on loopback ports).
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ] || ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy redis-server
  else
    echo "test: haproxy or redis-server is missing, so the scale-out test will be skipped;" \
      "install them with: sudo apt-get install -y haproxy redis-server" >&2
  fi
fi
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
# Two pytest processes: TensorFlow keeps what in-process training allocated until its process exits (the
# modules marked `trains` grow it to about 4 GB), and the second group starts servers, browsers, the app and
# export children beside the test process. Apart, the peaks do not add up.
status=0
.venv/bin/python -m pytest -m trains || status=$?
.venv/bin/python -m pytest -m "not trains" || status=$?
exit "$status"

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
# Debian packages the tests start their own instances of, installed where we can (as root with apt-get):
# Chromium and Firefox ESR for the extension (never a Playwright or Mozilla download), PostgreSQL for the
# feedback tests (a throwaway cluster, never the system's), HAProxy and Redis for the scale-out test. Where
# one is missing and cannot be installed, its tests are skipped with a reason.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || missing+=(firefox-esr)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  else
    echo "test: ${missing[*]} missing, so their tests will be skipped;" \
      "install them with: sudo apt-get install -y ${missing[*]}" >&2
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

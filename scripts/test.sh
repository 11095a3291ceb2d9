#!/usr/bin/env bash
# Set up from nothing, lint, and run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The browser tests drive the system Chromium (never a Playwright download); install it where we can.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  else
    echo "test: /usr/bin/chromium is missing, so the browser tests will be skipped;" \
      "install it with: sudo apt-get install -y chromium" >&2
  fi
fi
.venv/bin/python -m pytest "$@"

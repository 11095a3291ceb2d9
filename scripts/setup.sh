#!/usr/bin/env bash
# Create .venv (Python 3.10-3.12) and install RealCheck into it. `--dev` adds the test and lint tools.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
[ -n "$python" ] || { echo "setup: Python 3.10-3.12 not found (set PYTHON=/path/to/python)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# Strict editable mode: realcheck.* lives in a tree of links (build/__editable__.*) that editors and type
# checkers resolve like any installed package; the default mode's import hook is invisible to them. A new
# module appears there when this script runs again.
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
.venv/bin/python -m pip install --quiet -e ".${extra}" --config-settings editable_mode=strict
echo "setup: ready; run .venv/bin/realcheck --help"

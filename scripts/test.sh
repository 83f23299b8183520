#!/usr/bin/env bash
# Installs everything the tests need (pip requirements, PosLab editable, Debian's chromium), lints, runs the suite.
# Arguments go to pytest, e.g. `bash scripts/test.sh -m "engine and not slow"` (markers: engine, app, browser, slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
python3 -m ruff check .
exec python3 -m pytest -q "$@"

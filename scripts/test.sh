#!/usr/bin/env bash
# Installs everything the tests need (pip requirements, Debian's chromium) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
exec python3 -m pytest -q "$@"

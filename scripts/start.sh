#!/usr/bin/env bash
# Installs the dependencies and starts PosLab on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec python3 -m ui.serve --server.address localhost --server.headless true "$@"

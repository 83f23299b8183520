#!/usr/bin/env bash
# Installs the dependencies and starts PosLab on http://localhost:8501
#
#   scripts/start.sh [--host] [streamlit options, e.g. --server.port 8502]
#
# --host serves a class from this machine: bound to every interface (0.0.0.0, so students open
# http://<this machine>:8501), path boxes off (POSLAB_DATA_ROOT unset: students upload files instead),
# at most one running job per session (POSLAB_MAX_JOBS_PER_SESSION=1) and one heavy job at a time on the
# server (POSLAB_MAX_HEAVY=1); set either variable beforehand to change it. Other options go to Streamlit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec python3 -m ui.serve "$@"

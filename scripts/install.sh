#!/usr/bin/env bash
# Installs PosLab's Python dependencies and PosLab itself, editable (and, with --test, the test tools and Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -r requirements.txt
# torchvision without dependencies: its torch pin would otherwise pull a CUDA torch (engine/core/tvfix.py).
python3 -m pip install -q --no-deps -r requirements-torchvision.txt
# onnx2torch, timm and the package bundling the PP-OCR classifier, without dependencies for the same reason
# (their other needs are in requirements.txt).
python3 -m pip install -q --no-deps -r requirements-models.txt
# engine/ and ui/ as an editable package (pyproject.toml), with the `poslab` command; its dependencies are those above.
python3 -m pip install -q --no-deps -e .
if [ "${1:-}" = "--test" ]; then
  python3 -m pip install -q -r requirements-test.txt
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
  fi
fi

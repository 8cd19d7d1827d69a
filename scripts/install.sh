#!/usr/bin/env bash
# One install path for users, README and CI: a virtual environment in .venv with the CPU build of
# PyTorch first (an unpinned torch would pull a multi-GB CUDA build), then leukoscope with dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/leukoscope --version

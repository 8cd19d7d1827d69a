#!/usr/bin/env bash
# One install path for users, README and CI: a virtual environment in .venv with the CPU build of
# PyTorch first (an unpinned torch would pull a multi-GB CUDA build), then leukoscope with dev extras
# and Dask (`batch --scheduler` is tested).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,dask]"
# GenTL simulator with TriggerSoftware for the camera integration tests: TLSimu.cti (+ libVirtualFG.so)
# ships only in genicam <= 1.5.0, so unpack that wheel beside the venv's genicam 1.6 (never installed;
# the .cti is loaded by path and does not depend on the Python version: the cp311 x86_64 wheel is used).
if ! compgen -G ".venv/gentl/*/genicam-1.5.0.data/purelib/genicam/TLSimu.cti" >/dev/null; then
    .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        --python-version 3.11 --implementation cp --abi cp311 "genicam==1.5.0" -d .venv/gentl
    .venv/bin/python -m zipfile -e .venv/gentl/genicam-1.5.0-*.whl .venv/gentl/genicam-1.5.0
fi
# Headless Chromium for the report test (tests/e2e/test_report_chromium.py; it fails without it in CI).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
    else
        echo "chromium not found: the report browser test will skip (as root: apt-get install chromium)" >&2
    fi
fi
.venv/bin/leukoscope --version

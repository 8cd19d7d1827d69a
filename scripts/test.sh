#!/usr/bin/env bash
# The whole test suite: lint, format check, type check, then pytest (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
"$BIN/ruff" check src tests benchmarks
"$BIN/ruff" format --check src tests benchmarks
"$BIN/mypy"
"$BIN/pytest" "$@"

"""Running `leukoscope` in-process, as its console script does, for tests that check exit codes."""

from __future__ import annotations

import sys

import pytest

from leukoscope.cli import main


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: object) -> int:
    """Run `leukoscope ARGS` through the console-script entry point; its exit code."""
    monkeypatch.setattr(sys, "argv", ["leukoscope", *map(str, args)])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0

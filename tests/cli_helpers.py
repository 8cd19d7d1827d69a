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


LIVE_ENDPOINT_ENV = "LEUKOSCOPE__PIPELINE__LIVE_ENDPOINT"


def clean_environ() -> dict[str, str]:
    """This process's environment without the user's LEUKOSCOPE settings, for a child process.

    The suite's live endpoint setting is kept (off, tests/conftest.py): a child never publishes on
    the production live port; so is its simulator layer cache folder.
    """
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEUKOSCOPE")}
    env[LIVE_ENDPOINT_ENV] = os.environ.get(LIVE_ENDPOINT_ENV, "")
    if "LEUKOSCOPE_SIMULATOR_CACHE" in os.environ:  # the session's layer cache, not the user's
        env["LEUKOSCOPE_SIMULATOR_CACHE"] = os.environ["LEUKOSCOPE_SIMULATOR_CACHE"]
    return env

"""The suite shares nothing with a running `leukoscope` or a second copy of itself (tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from leukoscope.config import PipelineConfig, Settings, load_settings

from ..cli_helpers import LIVE_ENDPOINT_ENV, clean_environ
from ..integration.pipeline_helpers import _ephemeral_low, free_base_port


def test_no_test_publishes_on_the_production_live_port() -> None:
    assert PipelineConfig().live_endpoint == ""
    assert PipelineConfig(target_cells=3).live_endpoint == ""
    assert Settings().pipeline.live_endpoint == ""
    assert Settings(pipeline={"target_cells": 3}).pipeline.live_endpoint == ""  # type: ignore[arg-type]
    assert load_settings(environ={}).pipeline.live_endpoint == ""
    assert clean_environ()[LIVE_ENDPOINT_ENV] == ""  # what every child process gets


def test_outside_the_suite_the_live_endpoint_is_the_production_port() -> None:
    env = {k: v for k, v in clean_environ().items() if k != LIVE_ENDPOINT_ENV}
    code = (
        "from leukoscope.config import load_settings; print(load_settings().pipeline.live_endpoint)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "tcp://127.0.0.1:5554"


def test_reserved_ports_lie_below_the_ephemeral_range_and_stay_locked() -> None:
    base = free_base_port(5)
    assert base >= 20000 and base + 5 <= _ephemeral_low()
    assert free_base_port(5) != base  # never handed out twice in one process
    lock = Path(tempfile.gettempdir()) / "leukoscope-test-ports" / f"{base}.lock"
    code = (
        "import fcntl, sys\n"
        f"handle = open({str(lock)!r}, 'a')\n"
        "try:\n    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except OSError:\n    sys.exit(3)\n"
    )
    # a second suite (another process) cannot take the range while this one holds it
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 3

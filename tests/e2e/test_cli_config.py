"""The installed `leukoscope` console script: version, config init/validate/show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import leukoscope

CLI = [sys.executable, "-m", "leukoscope"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LEUKOSCOPE")}
    full_env.update(env or {})
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env=full_env, check=False
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert leukoscope.__version__ in result.stdout


def test_validate_reports_each_problem_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        "[pipeline]\nbatch_sise = 4\nhigh_water_mark = 'lots'\n"
        "[rig.camera.exposure_us]\ncolor1 = -5.0\n",
        encoding="utf-8",
    )
    result = run("config", "validate", str(path))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    assert any("pipeline.batch_sise" in line and "unknown key" in line for line in lines)
    assert any("pipeline.high_water_mark = 'lots'" in line for line in lines)
    assert any("rig.camera.exposure_us.color1 = -5.0" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_init_then_validate_then_show(tmp_path: Path) -> None:
    path = tmp_path / "rig.toml"
    assert run("config", "init", str(path)).returncode == 0
    assert run("config", "validate", str(path)).returncode == 0
    again = run("config", "init", str(path))
    assert again.returncode == 2 and "--force" in again.stderr
    shown = run(
        "--config", str(path), "config", "show", env={"LEUKOSCOPE__PIPELINE__BATCH_SIZE": "9"}
    )
    assert shown.returncode == 0
    assert "batch_size = 9" in shown.stdout

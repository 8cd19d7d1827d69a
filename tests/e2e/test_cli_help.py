"""`--help` of every command: flags read as flags (no `<bool>`), config-derived defaults shown."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from leukoscope.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal, so that no help line wraps inside what a test looks for."""
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.setenv("TERMINAL_WIDTH", "240")


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    root = typer.main.get_command(app)

    def walk(command: object, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*path, name])
            walk(sub, [*path, name])

    walk(root, [])
    return paths


COMMANDS = _command_paths()


def test_every_command_is_reached() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"run", "batch", "report", "simulate dataset", "worker classify", "config init"} <= names
    assert len(COMMANDS) > 25


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "leukoscope")
def test_help_has_no_bool_metavar(path: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    result = runner.invoke(app, [*path, "--help"], terminal_width=160)
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output


def test_help_shows_the_configured_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    config = tmp_path / "lab.toml"
    config.write_text('[pipeline]\ntarget_cells = 137\nresults_db = "lab.sqlite"\n')
    result = runner.invoke(app, ["-c", str(config), "run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "137, config pipeline.target_cells" in result.output
    assert "lab.sqlite, config pipeline.results_db" in result.output
    for command in ("report", "review", "runs", "samples", "cells"):
        shown = runner.invoke(app, ["-c", str(config), command, "--help"], terminal_width=200)
        assert "lab.sqlite, config pipeline.results_db" in shown.output, command
    monkeypatch.setenv("LEUKOSCOPE__PIPELINE__TARGET_CELLS", "41")
    result = runner.invoke(app, ["batch", "--help"], terminal_width=200)
    assert "41, config pipeline.target_cells" in result.output


def test_help_with_a_broken_config_still_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    config = tmp_path / "broken.toml"
    config.write_text('[pipeline]\ntarget_cells = "many"\n')
    result = runner.invoke(app, ["-c", str(config), "run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "from config pipeline.target_cells" in result.output

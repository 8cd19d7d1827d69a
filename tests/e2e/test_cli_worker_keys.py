"""`leukoscope keys generate DIR --worker NAME`: one worker host's own key pair, allowed by serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.pipeline.security import allow_list

from ..cli_helpers import run_cli


def test_worker_keys_are_written_allowed_and_refused_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    assert run_cli(monkeypatch, "keys", "generate", keys) == 0
    assert run_cli(monkeypatch, "keys", "generate", keys, "--worker", "scope-2") == 0
    assert "scope-2.key_secret" in capsys.readouterr().out
    assert (keys / "scope-2.key_secret").stat().st_mode & 0o077 == 0
    assert "scope-2" in allow_list(keys).values()
    assert run_cli(monkeypatch, "keys", "generate", keys, "--worker", "scope-2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--force" in err[0], err


def test_a_worker_key_name_is_a_name_not_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    assert run_cli(monkeypatch, "keys", "generate", keys) == 0
    capsys.readouterr()
    assert run_cli(monkeypatch, "keys", "generate", keys, "--worker", "../evil") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "worker key name" in err[0], err
    assert not (tmp_path / "evil.key").exists()

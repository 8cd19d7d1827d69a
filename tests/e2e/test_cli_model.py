"""`leukoscope model list` and `model promote` through the CLI: promotion needs a passing
validation (PASS on real acquisitions); the config file keeps every other key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from leukoscope.classifier.checkpoint import file_digest, read_checkpoint, save_checkpoint
from leukoscope.classifier.shipped import DEFAULT_MODEL
from leukoscope.config import load_settings
from leukoscope.results.validations import ValidationRecord, record_validation
from tests.cli_helpers import run_cli

RIG = "0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)


def _record(model: Path, verdict: str, simulated: bool = False) -> ValidationRecord:
    return ValidationRecord(
        id=0, model_sha256=file_digest(model), rig_digest=RIG, verdict=verdict,
        simulated=simulated, created_s=time.time(), validated_by="Ann Lee", samples=20,
        cells=4000, accuracy=0.95, segmentation_recall=0.97, largest_bias_pp=1.5,
        largest_bias_class="MO", model_path=str(model), failed=(), report="v/validation.json",
    )  # fmt: skip


def test_promote_needs_a_passing_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model, db, config = tmp_path / "lab.pt", tmp_path / "lab.sqlite", tmp_path / "lab.toml"
    state, meta = read_checkpoint(DEFAULT_MODEL)  # another model: same weights, real data
    network = meta.build()
    network.load_state_dict(state)
    data = {"digest": "d" * 64, "cells": 412, "simulated": False, "source": "dataset build"}
    provenance = {**meta.provenance, "training_data": data}
    save_checkpoint(model, network, meta.model_copy(update={"provenance": provenance}))
    config.write_text("# our rig\n[pipeline]\nbatch_size = 16  # small GPU\n")
    before = config.read_text()
    promote = ("model", "promote", model, "--db", db, "--config", config)

    def refused(reason: str) -> None:
        assert run_cli(monkeypatch, *promote) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and reason in err
        assert config.read_text() == before

    refused("has no validation record")
    record_validation(db, _record(model, "FAIL"))
    refused("has no passing validation")
    record_validation(db, _record(model, "PASS", simulated=True))
    refused("1 FAIL, 1 PASS on simulated acquisitions")
    assert run_cli(monkeypatch, "model", "promote", tmp_path / "nope.pt", "--db", db) == 2
    assert "nope.pt: file not found" in capsys.readouterr().err

    record_validation(db, _record(model, "PASS"))
    assert run_cli(monkeypatch, *promote) == 0
    assert f"wrote classifier.model_path = {model}" in capsys.readouterr().out
    text = config.read_text()
    assert text.startswith(before) and "batch_size = 16  # small GPU" in text
    settings = load_settings(config, environ={})
    assert settings.classifier.model_path == model and settings.pipeline.batch_size == 16

    assert run_cli(monkeypatch, "--config", config, "model", "list", "--db", db) == 0
    lines = capsys.readouterr().out.splitlines()
    mine = next(i for i, line in enumerate(lines) if line.startswith(f"* {model}"))
    assert (
        "[configured, in use]" in lines[mine]
        and "trained on real acquisitions, 412 cells" in lines[mine]
    )
    assert lines[mine + 1].split()[0] == "PASS" and f"rig {RIG}" in lines[mine + 1]
    assert "PASS (simulated)" in lines[mine + 2] and "FAIL" in lines[mine + 3]
    assert "by Ann Lee" in lines[mine + 1] and "accuracy 95.0 %" in lines[mine + 1]
    shipped = next(line for line in lines if str(DEFAULT_MODEL) in line)
    assert shipped.startswith("  ") and "[shipped default]" in shipped  # not in use any more
    assert "trained on simulated, 6697 cells" in shipped

"""`leukoscope simulate dataset|acquisition` end to end on tiny outputs."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from leukoscope.acquisition_files.storage import list_fields, read_field
from leukoscope.cli import app
from leukoscope.errors import ParameterError

runner = CliRunner()


def test_simulate_acquisition(tmp_path: Path) -> None:
    out = tmp_path / "acq"
    args = ["simulate", "acquisition", str(out), "--sample", "demo", "--fields", "2"]
    result = runner.invoke(app, [*args, "--frame-size", "128", "--cells-per-field", "4"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 fields of sample demo" in result.output
    assert list_fields(out) == [0, 1] and read_field(out, 1).sample_id == "demo"
    truth = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    assert all(
        {"field", "centre_yx", "bbox_xywh", "class", "cut_by_border"} <= set(c)
        for c in truth["cells"]
    )


def test_simulate_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    args = ["simulate", "dataset", str(out), "--cells", "4", "--composition", "NEU=50,LYM=50"]
    result = runner.invoke(app, [*args, "--seed", "2"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "wrote 4 cells" in text and "NEU 2, LYM 2, MO 0" in text
    assert len(list((out / "fluorescence").rglob("*.png"))) == 4


def test_bad_composition_is_a_clear_error(tmp_path: Path) -> None:
    args = ["simulate", "dataset", str(tmp_path), "--cells", "4", "--composition", "NEU=70"]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, ParameterError)
    assert "sum to 100" in str(result.exception)


def test_lookalike_share_is_bounded(tmp_path: Path) -> None:
    args = ["simulate", "dataset", str(tmp_path / "ds"), "--cells", "4", "--lookalikes", "0.7"]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, ParameterError)
    assert "lookalike_fraction must be in [0, 0.5], got 0.7" in str(result.exception)
    assert not (tmp_path / "ds" / "dataset.json").exists()

"""`leukoscope simulate labels`: a simulated acquisition's ground truth as the labels file that
`validate` reads, checked against the ground truth itself and read back by the labels reader."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from leukoscope.validation.labels import describe_acquisitions, read_labels
from tests.cli_helpers import run_cli


def test_labels_from_the_ground_truth_are_read_back_as_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    folder = tmp_path / "sim-1"
    args = ("--sample", "sim-1", "--fields", "2", "--frame-size", "256", "--cells-per-field", "4")
    assert run_cli(monkeypatch, "simulate", "acquisition", folder, *args, "--seed", "7") == 0
    out = tmp_path / "labels.csv"
    assert run_cli(monkeypatch, "simulate", "labels", folder, "--out", out) == 0
    truth = json.loads((folder / "ground_truth.json").read_text())
    whole = [c for c in truth["cells"] if not c["cut_by_border"]]
    assert whole, "the seed must draw whole cells"
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["fov"]), r["class"]) for r in rows] == [(c["field"], c["class"]) for c in whole]
    for row, cell in zip(rows, whole, strict=True):
        assert (float(row["y_px"]), float(row["x_px"])) == pytest.approx(
            cell["centre_yx"], abs=0.01
        )
    labels = read_labels(out, describe_acquisitions([folder]))
    assert len(labels) == len(whole)
    assert f"wrote {out}: {len(whole)} labelled white cells" in capsys.readouterr().err
    # a folder without ground truth (not simulated) is one clear line
    (tmp_path / "plain").mkdir()
    assert run_cli(monkeypatch, "simulate", "labels", tmp_path / "plain", "--out", out) == 2
    err = capsys.readouterr().err
    assert "no ground_truth.json: not a simulated acquisition" in err and "Traceback" not in err

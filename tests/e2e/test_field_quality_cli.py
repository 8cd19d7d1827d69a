"""Blank, saturated and zero-field samples through `batch` and `report`, from real saved files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from leukoscope.acquisition_files import storage
from leukoscope.results.store import ResultStore

from ..cli_helpers import run_cli
from ..integration.pipeline_helpers import small_acquisition, untrained_checkpoint
from .test_cli_pipeline import cli


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


def rewrite(folder: Path, change: object) -> Path:
    """Rewrite every saved field of `folder` with `change(frame, full_scale)` applied."""
    for fov in storage.list_fields(folder):
        frameset = storage.read_field(folder, fov)
        full = 2**frameset.bit_depth - 1
        frames = tuple(change(f, full).astype(f.dtype) for f in frameset.frames)  # type: ignore[operator]
        storage.write_field(folder, replace(frameset, frames=frames), simulated=True)
    return folder


def test_blank_saturated_and_empty_samples_are_flagged_never_complete(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = small_acquisition(tmp_path / "good", "good", 2, seed=8)
    black = rewrite(
        small_acquisition(tmp_path / "black", "black", 2, seed=9), lambda f, _: np.zeros_like(f)
    )
    glare = small_acquisition(tmp_path / "glare", "glare", 2, seed=10)
    for fov in storage.list_fields(glare):  # fluorescence 20 times over-exposed: nuclei clipped
        frameset = storage.read_field(glare, fov)
        hot = np.minimum(frameset.frames[3].astype(np.int64) * 20, 4095).astype(np.uint16)
        frames = (*frameset.frames[:3], hot)
        storage.write_field(glare, replace(frameset, frames=frames), simulated=True)
    mixed = small_acquisition(tmp_path / "mixed", "mixed", 3, seed=11)
    frameset = storage.read_field(mixed, 1)
    dark = (*frameset.frames[:3], np.zeros_like(frameset.frames[3]))  # the UV light did not fire
    storage.write_field(mixed, replace(frameset, frames=dark), simulated=True)
    empty = small_acquisition(tmp_path / "empty", "empty", 1, seed=12)
    storage.field_path(empty, 0).unlink()
    meta = storage.read_acquisition_meta(empty)
    storage.write_acquisition_meta(empty, meta.model_copy(update={"fields": 0}))

    db = tmp_path / "results.sqlite"
    folders = [str(p) for p in (black, glare, mixed, empty, good)]
    result = cli(tmp_path, model, "batch", *folders, "--cells", "0", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for sample in ("black", "glare", "mixed", "empty"):
        assert f"sample {sample} — incomplete" in result.stdout, result.stdout
    assert "sample good — complete" in result.stdout
    assert "blank: the color1 frame holds no image" in result.stdout
    assert "saturated_nuclei: " in result.stdout

    with ResultStore(db, read_only=True) as store:
        run_id = store.runs()[-1]["run_id"]
        summaries = {s: store.summary(run_id, s) for s in ("black", "glare", "mixed", "empty")}
        stored = store.progress(run_id, "mixed").fields_failed
    blank, glared, one_dark, nothing = (summaries[s] for s in ("black", "glare", "mixed", "empty"))
    assert (blank.fields_failed, blank.fields_blank, blank.cells_counted) == (2, 2, 0)
    assert (glared.fields_failed, glared.fields_saturated, glared.cells_counted) == (2, 2, 0)
    assert (one_dark.fields_failed, one_dark.fields_blank) == (1, 1)
    assert list(stored) == [1] and stored[1].startswith(
        "blank: the fluorescence frame holds no image"
    )
    assert one_dark.cells_counted > 0  # its other fields still count
    assert one_dark.status_reason.startswith("1 field(s) failed (field 1: blank:")
    assert (nothing.fields_total, nothing.cells_counted) == (0, 0)
    assert nothing.status_reason == "no fields of view"

    def report(sample: str, fmt: str = "json") -> str:
        out = tmp_path / f"{sample}.{fmt}"
        code = run_cli(monkeypatch, "report", sample, "--db", db, "--format", fmt, "--out", out)
        assert code == 0
        return out.read_text()

    def codes(document: dict) -> dict[str, str]:  # type: ignore[type-arg]
        return {f["code"]: f["severity"] for f in document["quality_flags"]}

    black_report = json.loads(report("black"))
    assert black_report["sample"]["status"] == "incomplete"
    assert black_report["sample"]["fields_blank"] == 2
    assert codes(black_report)["no_cells"] == "alert"
    assert codes(black_report)["blank_fields"] == "warning"
    assert "failed_fields" not in codes(black_report)
    glare_report = json.loads(report("glare"))
    assert glare_report["sample"]["fields_saturated"] == 2
    assert {"no_cells", "saturated_fields"} <= set(codes(glare_report))
    assert {"blank_fields", "incomplete"} <= set(codes(json.loads(report("mixed"))))
    assert codes(json.loads(report("empty")))["no_cells"] == "alert"
    assert "2 failed: 2 blank" in report("black", "html")

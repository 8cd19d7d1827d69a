"""Training end to end through the CLI on a tiny generated dataset: train, resume, evaluate, paper
experiment, and a clear error for each broken dataset layout."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from leukoscope.classifier.history import read_history
from leukoscope.types import CELL_CLASSES, MODALITIES
from tests.cli_helpers import run_cli

CELLS_PER_CLASS = 4


def write_dataset(root: Path, size: int = 24) -> Path:
    """Mono 8-bit crops: a disc whose radius and brightness depend on the class, plus noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] - size / 2
    for c, cell_class in enumerate(CELL_CLASSES):
        for i in range(CELLS_PER_CLASS):
            disc = (yy**2 + xx**2) < (3 + 1.5 * c) ** 2
            for m, modality in enumerate(MODALITIES):
                image = rng.normal(40 + 10 * m, 8, (size, size))
                image[disc] += 30 + 25 * c
                folder = root / modality.value / cell_class.value
                folder.mkdir(parents=True, exist_ok=True)
                png = np.clip(image, 0, 255).astype(np.uint8)
                cv2.imwrite(str(folder / f"cell{c}{i:02d}.png"), png)
    return root


TRAIN = (
    *("--folds", "2", "--epochs", "1", "--input-size", "16"),
    *("--batch-size", "8", "--threads", "1"),
)


def test_train_resume_and_evaluate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from leukoscope.classifier.checkpoint import load_checkpoint

    data = write_dataset(tmp_path / "data")
    out = tmp_path / "run"
    # Pieces of a run (as parallel processes would run them), then the run that reuses them.
    parts = ("--part", "1", "--part", "final")
    assert run_cli(monkeypatch, "train", data, *TRAIN, "--out", out, *parts) == 0
    assert (out / "fold_1" / "model.pt").is_file() and (out / "final" / "model.pt").is_file()
    assert not (out / "model.pt").exists()
    assert run_cli(monkeypatch, "train", data, "--model", "hs_mm_mimo", *TRAIN, "--out", out) == 0
    captured = capsys.readouterr()
    assert "hs_mm_mimo raw argmax: accuracy" in captured.out
    assert "no prior correction fitted (power 0)" in captured.out  # equal classes
    assert "fold 1: done earlier" in captured.err and "final fit: done earlier" in captured.err
    for fold in (0, 1):
        assert (out / f"fold_{fold}" / "model.pt").is_file()
        assert (out / f"fold_{fold}" / "metrics_confusion.png").is_file()
        history = read_history(out / f"fold_{fold}" / "history.csv")
        assert [r.epoch for r in history] == [1]  # one epoch, scored on the fold's cells
        assert history[0].val_accuracy is not None and 0.0 <= history[0].val_accuracy <= 1.0
        metrics = json.loads((out / f"fold_{fold}" / "metrics.json").read_text())
        assert history[0].val_accuracy == pytest.approx(metrics["accuracy"])
    assert (out / "history.png").is_file() and (out / "final" / "history.png").is_file()
    final_history = read_history(out / "final" / "history.csv")
    assert len(final_history) == 1 and final_history[0].val_accuracy is None
    summary = json.loads((out / "cv.json").read_text())
    assert summary["folds"] == 2 and 0.0 <= summary["accuracy"]["mean"] <= 1.0
    assert len(summary["head_accuracy"]) == 4 and "head_disagreement" in summary
    model, meta = load_checkpoint(out / "model.pt", expect_arch="hs_mm_mimo")
    assert meta.input_size == 16 and meta.in_chans == 1 and len(meta.norm_mean) == 4
    assert meta.metrics["cross_validation"]["folds"] == 2
    correction = meta.metrics["prior_correction"]
    assert 0.0 <= correction["power"] <= 1.0 and meta.class_weights == correction["weights"]
    assert (out / "cv_prior_corrected.md").is_file()
    assert meta.provenance["train_config"]["rho"] == 0.5 and meta.provenance["final_fit"]
    recipe = meta.provenance["train_config"]
    assert recipe["weight_decay"] == 1e-4 and recipe["warmup_epochs"] == 0.0
    assert recipe["balance"] == 0.5 and recipe["scale_jitter"] == 0.0
    assert model.num_heads == 4

    # Without a final fit, the best fold's model ships; another configuration is refused.
    assert run_cli(monkeypatch, "train", data, *TRAIN, "--out", out, "--no-final") == 0
    _, meta = load_checkpoint(out / "model.pt")
    assert meta.provenance["selected_fold"] in (0, 1) and "selected_fold" in meta.metrics
    capsys.readouterr()
    assert run_cli(monkeypatch, "train", data, *TRAIN, "--rho", "0", "--out", out) == 2
    assert "another configuration (rho: 0.5 -> 0.0)" in capsys.readouterr().err

    # Equal classes: the fitted correction is power 0 (none), so the pipeline reads the raw argmax.
    assert meta.class_weights is None
    report = tmp_path / "eval"
    assert run_cli(monkeypatch, "evaluate", out / "model.pt", data, "--out", report) == 0
    printed = capsys.readouterr().out
    assert "## raw argmax" in printed and "## prior-corrected" not in printed
    assert "Head disagreement" in printed
    assert "the pipeline uses the raw (no prior correction) reading" in printed
    written = json.loads((report / "evaluation_raw.json").read_text())
    assert written["cells"] == 5 * CELLS_PER_CLASS
    assert (report / "evaluation_raw_confusion.png").is_file()

    # A model that carries a correction: both readings, the corrected one named as the pipeline's.
    from leukoscope.classifier.checkpoint import save_checkpoint

    weighted = tmp_path / "weighted.pt"
    save_checkpoint(weighted, model, meta.model_copy(update={"class_weights": [1, 1, 1, 1, 1e-6]}))
    assert run_cli(monkeypatch, "evaluate", weighted, data, "--out", report) == 0
    printed = capsys.readouterr().out
    assert "## raw argmax" in printed and "## prior-corrected" in printed
    assert "the pipeline uses the prior-corrected reading" in printed
    corrected = json.loads((report / "evaluation_prior_corrected.json").read_text())
    assert corrected["confusion"][4][4] == 0  # basophils all but forbidden by the weights
    assert sum(map(sum, corrected["confusion"])) == 5 * CELLS_PER_CLASS


def test_recipe_options_and_bad_jitter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from leukoscope.classifier.checkpoint import load_checkpoint

    data = write_dataset(tmp_path / "data", size=16)
    out = tmp_path / "run"
    old = ("--weight-decay", "0.01", "--warmup-epochs", "1", "--jitter", "scale=0.1,gain=0.1")
    assert run_cli(monkeypatch, "train", data, *TRAIN, *old, "--no-final", "--out", out) == 0
    recipe = load_checkpoint(out / "model.pt")[1].provenance["train_config"]
    assert recipe["weight_decay"] == 0.01 and recipe["warmup_epochs"] == 1.0
    assert recipe["scale_jitter"] == 0.1 and recipe["gain_jitter"] == 0.1
    assert recipe["shift_jitter"] == 0.0
    capsys.readouterr()
    bad = ("--jitter", "blur=0.3")
    assert run_cli(monkeypatch, "train", data, *TRAIN, *bad, "--out", tmp_path / "r2") == 2
    assert "jitter 'blur=0.3': expected NAME=VALUE" in capsys.readouterr().err
    huge = ("--jitter", "scale=3")
    assert run_cli(monkeypatch, "train", data, *TRAIN, *huge, "--out", tmp_path / "r3") == 2
    assert "scale_jitter" in capsys.readouterr().err


def test_paper_experiment_writes_both_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_dataset(tmp_path / "data", size=16)
    out = tmp_path / "paper"
    args = ("experiment", "paper", data, "--out", out, "--folds", "2", "--fold-limit", "1")
    assert run_cli(monkeypatch, *args, "--epochs", "1", "--input-size", "16", "--threads", "1") == 0
    printed = capsys.readouterr().out
    assert "## Table 1" in printed and "## Table 2" in printed
    table2 = (out / "table2.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in table2[1:]] == ["ensemble", "mm_mimo", "hs_mm_mimo"]
    assert len((out / "table1.csv").read_text().splitlines()) == 1 + len(MODALITIES)
    settings = (out / "tables.md").read_text()
    assert "weight decay 0.0001, warm-up 0 epoch(s), flips/rotations, balance 0.5" in settings


def _break_missing_class(root: Path) -> str:
    for modality in MODALITIES:
        for png in (root / modality.value / "BAS").iterdir():
            png.unlink()
    return "class BAS has no cells"


def _break_empty_modality(root: Path) -> str:
    for folder in (root / "color2").iterdir():
        for png in folder.iterdir():
            png.unlink()
    return "color2: empty modality folder"


def _break_mismatched_ids(root: Path) -> str:
    (root / "color3" / "EOS" / "cell300.png").rename(root / "color3" / "EOS" / "other.png")
    return "color3/EOS/cell300.png: missing"


def _break_corrupt_png(root: Path) -> str:
    (root / "fluorescence" / "LYM" / "cell101.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return "fluorescence/LYM/cell101.png: unreadable or corrupt PNG"


@pytest.mark.parametrize(
    "breaker",
    [_break_missing_class, _break_empty_modality, _break_mismatched_ids, _break_corrupt_png],
)
def test_broken_dataset_gives_a_clear_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    breaker: object,
) -> None:
    data = write_dataset(tmp_path / "data", size=8)
    assert callable(breaker)
    expected = breaker(data)
    assert run_cli(monkeypatch, "train", data, *TRAIN, "--out", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err


def test_without_input_size_train_keeps_the_crops_own_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leukoscope.classifier.checkpoint import load_checkpoint

    data = write_dataset(tmp_path / "data", size=40)
    out = tmp_path / "run"
    native = ("--folds", "2", "--epochs", "1", "--batch-size", "8", "--threads", "1")
    assert run_cli(monkeypatch, "train", data, *native, "--fold-limit", "1", "--out", out) == 0
    assert load_checkpoint(out / "model.pt")[1].input_size == 40

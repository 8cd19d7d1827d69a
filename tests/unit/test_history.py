"""The per-epoch training history: CSV rows, resume semantics and the plot."""

from __future__ import annotations

from pathlib import Path

from leukoscope.classifier.history import (
    EpochRecord,
    append_epoch,
    plot_histories,
    read_history,
)


def _record(epoch: int, accuracy: float | None = 0.9) -> EpochRecord:
    return EpochRecord(epoch, 1e-3 / epoch, 2.0 / epoch, accuracy, accuracy, 1.5)


def test_rows_round_trip_including_missing_validation(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    append_epoch(path, _record(1))
    append_epoch(path, _record(2, accuracy=None))
    rows = read_history(path)
    assert rows == [_record(1), _record(2, accuracy=None)]
    assert path.read_text().splitlines()[0] == "epoch,lr,loss,val_accuracy,val_macro_f1,seconds"


def test_a_resumed_epoch_replaces_what_an_interrupted_run_left(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    for epoch in (1, 2, 3):
        append_epoch(path, _record(epoch))
    # interrupted after writing epoch 3's row but before its checkpoint: epoch 3 runs again
    append_epoch(path, _record(3, accuracy=0.5))
    rows = read_history(path)
    assert [r.epoch for r in rows] == [1, 2, 3] and rows[-1].val_accuracy == 0.5


def test_no_file_is_an_empty_history_and_the_plot_is_written(tmp_path: Path) -> None:
    assert read_history(tmp_path / "absent.csv") == []
    out = tmp_path / "history.png"
    plot_histories({"fold 0": [_record(1), _record(2)], "empty": []}, out, "title")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

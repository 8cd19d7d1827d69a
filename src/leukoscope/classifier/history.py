"""Per-epoch training history: one CSV row per epoch and a plot, so a user sees whether a run has
converged (loss still falling, validation accuracy still rising, or flat).

`history.csv` columns: epoch (1-based), lr (at the epoch's last step), loss (mean training loss),
val_accuracy and val_macro_f1 (raw argmax on the fold's validation cells; empty for the final fit,
which has none), seconds (wall time of the epoch).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from leukoscope.atomic import atomic_write_figure, atomic_write_text

HISTORY_CSV = "history.csv"
HISTORY_PNG = "history.png"


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did."""

    epoch: int
    lr: float
    loss: float
    val_accuracy: float | None
    val_macro_f1: float | None
    seconds: float


COLUMNS = [f.name for f in fields(EpochRecord)]


def _optional(text: str) -> float | None:
    return float(text) if text else None


def read_history(path: Path) -> list[EpochRecord]:
    """The rows of a history CSV (empty when there is none)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            EpochRecord(
                epoch=int(row["epoch"]),
                lr=float(row["lr"]),
                loss=float(row["loss"]),
                val_accuracy=_optional(row["val_accuracy"]),
                val_macro_f1=_optional(row["val_macro_f1"]),
                seconds=float(row["seconds"]),
            )
            for row in csv.DictReader(handle)
        ]


def write_history(path: Path, records: list[EpochRecord]) -> None:
    """Write the whole history through the one writer (atomic; a regular file or a new path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = asdict(record)
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    atomic_write_text(path, handle.getvalue())


def append_epoch(path: Path, record: EpochRecord) -> None:
    """Add one epoch, dropping rows from that epoch on (left by an interrupted run)."""
    kept = [r for r in read_history(path) if r.epoch < record.epoch]
    write_history(path, [*kept, record])


def plot_histories(histories: dict[str, list[EpochRecord]], path: Path, title: str) -> None:
    """Training loss and validation accuracy / macro-F1 per epoch, one line per run part."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(9.0, 3.6), dpi=110)
    try:
        for name, records in histories.items():
            if not records:
                continue
            epochs = [r.epoch for r in records]
            (line,) = loss_ax.plot(epochs, [r.loss for r in records], label=name)
            scored = [r for r in records if r.val_accuracy is not None]
            if scored:
                x = [r.epoch for r in scored]
                colour = line.get_color()
                val_ax.plot(x, [100 * (r.val_accuracy or 0) for r in scored], color=colour)
                val_ax.plot(
                    x, [100 * (r.val_macro_f1 or 0) for r in scored], color=colour, linestyle="--"
                )
        loss_ax.set_xlabel("epoch")
        loss_ax.set_ylabel("training loss")
        loss_ax.legend(fontsize=7)
        val_ax.set_xlabel("epoch")
        val_ax.set_ylabel("validation %")
        val_ax.set_title("solid: accuracy, dashed: macro-F1 (raw argmax)", fontsize=8)
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_figure(fig, path)
    finally:
        plt.close(fig)

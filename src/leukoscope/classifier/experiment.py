"""The paper's experiment: Table 1 (one `single` per modality) and Table 2 (ensemble, MM-MIMO,
HS-MM-MIMO), with the same folds for every model.

The ensemble is not trained: per fold it averages the softmax of the four Table 1 models on the same
validation cells (the folds depend only on the labels and the seed, so they are identical).
Each model's folds live in `<out>/<name>/` as a `leukoscope train` run, so the experiment resumes
where it stopped and can reuse a `leukoscope train --out <out>/hs_mm_mimo` run with the same settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from leukoscope.atomic import atomic_write_text
from leukoscope.classifier.data import CellDataset, load_dataset
from leukoscope.classifier.evaluate import (
    class_names,
    compute_metrics,
    percent,
    summarize,
    write_json,
    write_report,
)
from leukoscope.classifier.progress import TrainProgress
from leukoscope.classifier.recipe import TrainConfig, recipe_summary
from leukoscope.classifier.train import (
    FoldResult,
    TrainingRun,
    configure_torch,
    select_device,
)
from leukoscope.errors import ParameterError
from leukoscope.spreadsheet import csv_text


@dataclass(frozen=True)
class Row:
    """One line of a table: a model's cross-validated figures and its size."""

    name: str
    summary: dict[str, Any]
    params: int
    macs: int
    macs_224: int
    train_s: float


def _complexity(arch: str, dataset: CellDataset, config: TrainConfig, size: int) -> tuple[int, int]:
    from leukoscope.classifier.complexity import measure

    return measure(
        arch,
        dataset.modalities,
        dataset.in_chans,
        5,
        size,
        config.width,
        **config.options,
    )


def _row(
    name: str, arch: str, dataset: CellDataset, config: TrainConfig, summary: dict[str, Any]
) -> Row:
    params, macs = _complexity(arch, dataset, config, config.input_size)
    _, macs_224 = _complexity(arch, dataset, config, 224)
    return Row(name, summary, params, macs, macs_224, float(summary.get("train_s_total", 0.0)))


def run_paper(
    data_root: Path,
    config: TrainConfig,
    out_dir: Path,
    *,
    fold_limit: int | None = None,
    device: str = "auto",
    threads: int = 0,
    console: Console | None = None,
    quiet: bool = False,
) -> tuple[list[Row], list[Row]]:
    """Train and evaluate every model of the paper's tables; write them as Markdown and CSV."""
    began = time.perf_counter()
    configure_torch(threads, config.seed)
    chosen = select_device(device)
    progress = TrainProgress(console, quiet)
    dataset = load_dataset(data_root, config.input_size, config.modalities)
    progress.log(f"{len(dataset.labels)} cells, {dataset.class_counts()}; device {chosen}")
    out_dir.mkdir(parents=True, exist_ok=True)
    table1: list[Row] = []
    singles: list[list[FoldResult]] = []
    with progress.active():
        for modality in dataset.modalities:
            one = dataset.select_modalities([modality])
            single = config.model_copy(update={"arch": "single", "modalities": (modality,)})
            name = f"single_{modality.value}"
            run = TrainingRun(one, single, out_dir / name, chosen, progress, name)
            folds, summary = run.cross_validate(fold_limit)
            singles.append(folds)
            table1.append(_row(modality.value, "single", one, single, summary))
        table2 = [_ensemble_row(dataset, config, singles, out_dir)]
        for arch in ("mm_mimo", "hs_mm_mimo"):
            mimo = config.model_copy(update={"arch": arch})
            run = TrainingRun(dataset, mimo, out_dir / arch, chosen, progress, arch)
            _, summary = run.cross_validate(fold_limit)
            table2.append(_row(arch, arch, dataset, mimo, summary))
    wall = time.perf_counter() - began
    write_tables(out_dir, table1, table2, config, dataset, fold_limit, wall)
    return table1, table2


def ensemble_fold_metrics(
    labels: np.ndarray, members: list[list[FoldResult]]
) -> list[dict[str, Any]]:
    """Per fold, the metrics of the members' softmax averaged (the ensemble is not trained);
    every member must have used the same folds."""
    fold_metrics = []
    for per_member in zip(*members, strict=True):
        index = per_member[0].val_index
        if any(not np.array_equal(m.val_index, index) for m in per_member):
            raise ParameterError("the single-modality runs used different folds; rerun them")
        probs = np.concatenate([m.val_probs for m in per_member], axis=1)
        names = class_names(per_member[0].metrics)  # the members' classes
        fold_metrics.append(compute_metrics(labels[index], probs, names))
    return fold_metrics


def _ensemble_row(
    dataset: CellDataset, config: TrainConfig, singles: list[list[FoldResult]], out_dir: Path
) -> Row:
    summary = summarize(ensemble_fold_metrics(dataset.labels, singles))
    summary["train_s_total"] = sum(
        f.metrics.get("train_s", 0.0) for member in singles for f in member
    )
    heads = [m.value for m in dataset.modalities]
    write_report(
        out_dir / "ensemble", "cv", summary, "ensemble of the single-modality models", heads
    )
    return _row("ensemble", "ensemble", dataset, config, summary)


def _fmt_count(value: int) -> str:
    return f"{value / 1e6:.3f}M" if value < 1e9 else f"{value / 1e9:.2f}G"


HEADER = (
    "accuracy % (mean ± std)",
    "macro-F1 %",
    "balanced acc. %",
    "MACs @ trained size",
    "MACs @ 224",
    "params",
    "train time (all folds)",
)


def _cells(row: Row) -> list[str]:
    return [
        row.name,
        percent(row.summary["accuracy"]),
        percent(row.summary["macro_f1"]),
        percent(row.summary["balanced_accuracy"]),
        _fmt_count(row.macs),
        _fmt_count(row.macs_224),
        _fmt_count(row.params),
        f"{row.train_s / 60:.1f} min",
    ]


def markdown_table(first: str, rows: list[Row]) -> str:
    """A table in the paper's form (accuracy mean ± std, MACs, params) plus macro figures."""
    lines = ["| " + " | ".join((first, *HEADER)) + " |", "|" + " --- |" * (len(HEADER) + 1)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, first: str, rows: list[Row]) -> None:
    """The table as CSV with raw numbers (fractions, counts, seconds)."""
    header = [first, "accuracy_mean", "accuracy_std", "macro_f1_mean", "macro_f1_std",
              "balanced_accuracy_mean", "balanced_accuracy_std", "macs", "macs_224", "params",
              "train_s", "folds"]  # fmt: skip
    lines = []
    for row in rows:
        s = row.summary
        lines.append(
            [row.name, s["accuracy"]["mean"], s["accuracy"]["std"], s["macro_f1"]["mean"],
             s["macro_f1"]["std"], s["balanced_accuracy"]["mean"], s["balanced_accuracy"]["std"],
             row.macs, row.macs_224, row.params, round(row.train_s, 1), s["folds"]]
        )  # fmt: skip
    atomic_write_text(path, csv_text(header, lines))


def write_tables(
    out_dir: Path,
    table1: list[Row],
    table2: list[Row],
    config: TrainConfig,
    dataset: CellDataset,
    fold_limit: int | None,
    wall_s: float,
) -> None:
    """table1.md/.csv, table2.md/.csv, tables.md (both, with the settings) and tables.json."""
    folds = min(fold_limit or config.folds, config.folds)
    settings = (
        f"{len(dataset.labels)} cells {dataset.class_counts()}, modalities "
        f"{', '.join(m.value for m in dataset.modalities)}, {dataset.in_chans} channel(s), "
        f"input {config.input_size}x{config.input_size}, {config.epochs} epochs, "
        f"{folds} of {config.folds} stratified folds, seed {config.seed}, rho {config.rho}, "
        f"batch repetition {config.batch_repetition}, {recipe_summary(config)}, "
        f"wall time {wall_s / 60:.1f} min, "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    one = markdown_table("modality (single)", table1)
    two = markdown_table("method", table2)
    atomic_write_text(out_dir / "table1.md", one)
    atomic_write_text(out_dir / "table2.md", two)
    write_csv(out_dir / "table1.csv", "modality", table1)
    write_csv(out_dir / "table2.csv", "method", table2)
    atomic_write_text(
        out_dir / "tables.md",
        f"# Paper experiment\n\n{settings}\n\n## Table 1\n\n{one}\n## Table 2\n\n{two}",
    )
    write_json(
        out_dir / "tables.json",
        {
            "settings": settings,
            "config": config.model_dump(mode="json"),
            "table1": [r.__dict__ for r in table1],
            "table2": [r.__dict__ for r in table2],
            "wall_s": round(wall_s, 1),
        },
    )

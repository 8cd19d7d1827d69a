"""Training-recipe ablation: the same folds, one recipe factor changed at a time, per data source.

Every variant is a `leukoscope train` cross-validation (train.TrainingRun.cross_validate and the prior
correction train fits, nothing re-implemented) with the defaults of `TrainConfig` changed by the
variant's overrides. Rows: the defaults (balance 0.5), the plain recipe (the same with balance 1),
"old defaults" (every optional extra at once: scale/shift and contrast/gain jitter, weight decay
0.01, a warm-up epoch, balance 1), each of those extras added to the plain recipe alone, and
balance 0, rho 0 and label smoothing.

    # real cells (benchmarks/bccd_cells.py) and the simulator's field-cut set, then one table:
    .venv/bin/python benchmarks/recipe_ablation.py run runs/bccd_cells --source bccd \\
        --input-size 64 --epochs 20 --drop-class BAS --out runs/ablation/bccd
    .venv/bin/python benchmarks/recipe_ablation.py run SIM48 --source simulator \\
        --input-size 48 --epochs 8 --out runs/ablation/simulator
    .venv/bin/python benchmarks/recipe_ablation.py table runs/ablation/*/ablation.csv

`--drop-class` leaves a class out of the cross-validation (BCCD has 2 usable basophils, fewer than
the folds). `--jobs N` runs variants in N processes (one thread each on CPU). A finished variant's
folds are reused when the command is run again.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.classifier.data import CellDataset, load_dataset
from leukoscope.classifier.progress import TrainProgress
from leukoscope.classifier.recipe import TrainConfig
from leukoscope.classifier.train import TrainingRun, configure_torch, select_device
from leukoscope.types import CELL_CLASSES, CellClass

PLAIN: dict[str, Any] = {"balance": 1.0}
"""The plain recipe (the defaults with a fully class-balanced sampler): the factors are
measured as changes to it."""
OLD_DEFAULTS: dict[str, Any] = {
    **PLAIN,
    "weight_decay": 0.01,
    "warmup_epochs": 1.0,
    "scale_jitter": 0.1,
    "shift_jitter": 0.05,
    "contrast_jitter": 0.15,
    "gain_jitter": 0.1,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "plain recipe (balance 1)": PLAIN,
    "old defaults": OLD_DEFAULTS,
    "+ scale/shift jitter": {**PLAIN, "scale_jitter": 0.1, "shift_jitter": 0.05},
    "+ contrast/gain jitter": {**PLAIN, "contrast_jitter": 0.15, "gain_jitter": 0.1},
    "+ weight decay 0.01": {**PLAIN, "weight_decay": 0.01},
    "+ warm-up 1 epoch": {**PLAIN, "warmup_epochs": 1.0},
    "no flips/rotations": {**PLAIN, "augment": False},
    "balance 0": {"balance": 0.0},
    "rho 0": {**PLAIN, "rho": 0.0},
    "label smoothing 0.1": {**PLAIN, "label_smoothing": 0.1},
}
COLUMNS = [
    "source",
    "variant",
    "overrides",
    "reading",
    "folds",
    "accuracy",
    "accuracy_std",
    "macro_f1",
    "macro_f1_std",
    *[f"recall_{c.value}" for c in CELL_CLASSES],
]


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").lower()


def drop_classes(dataset: CellDataset, names: list[str]) -> CellDataset:
    """The dataset without the cells of the named classes."""
    drop = [list(CELL_CLASSES).index(CellClass(n)) for n in names]
    keep = ~np.isin(dataset.labels, drop)
    ids = tuple(i for i, k in zip(dataset.cell_ids, keep, strict=True) if k)
    return replace(dataset, images=dataset.images[keep], labels=dataset.labels[keep], cell_ids=ids)


def _rows(
    source: str, variant: str, overrides: dict[str, Any], reading: str, summary: dict[str, Any]
) -> dict[str, Any]:
    """One CSV row; per-class recall pooled over the folds (summed confusion matrix)."""
    matrix = np.asarray(summary["confusion"], dtype=np.float64)
    support = matrix.sum(axis=1)
    return {
        "source": source,
        "variant": variant,
        "overrides": " ".join(f"{k}={v}" for k, v in overrides.items()) or "-",
        "reading": reading,
        "folds": summary["folds"],
        "accuracy": round(100 * summary["accuracy"]["mean"], 2),
        "accuracy_std": round(100 * summary["accuracy"]["std"], 2),
        "macro_f1": round(100 * summary["macro_f1"]["mean"], 2),
        "macro_f1_std": round(100 * summary["macro_f1"]["std"], 2),
        **{
            f"recall_{c.value}": round(100 * matrix[i, i] / support[i], 1) if support[i] else ""
            for i, c in enumerate(CELL_CLASSES)
        },
    }


def run_variant(job: tuple[str, str, Path, int, int, list[str], Path, str, int, str]) -> list[dict]:
    """Cross-validate one variant; its raw and prior-corrected rows."""
    variant, source, data, size, epochs, dropped, out, device, threads, arch = job
    overrides = VARIANTS[variant]
    configure_torch(threads, 0)
    dataset = load_dataset(data, size)
    if dropped:
        dataset = drop_classes(dataset, dropped)
    config = TrainConfig(arch=arch, input_size=size, epochs=epochs, **overrides)
    progress = TrainProgress(None, quiet=True)
    run = TrainingRun(
        dataset, config, out / _slug(variant), select_device(device), progress, variant
    )
    folds, summary = run.cross_validate()
    rows = [_rows(source, variant, overrides, "raw", summary)]
    correction = run.correct_priors(folds)
    if correction is not None:
        rows.append(_rows(source, variant, overrides, "prior-corrected", correction.summary))
    print(f"{source} / {variant}: raw {rows[0]['accuracy']} %, macro-F1 {rows[0]['macro_f1']} %")
    sys.stdout.flush()
    return rows


def run(args: argparse.Namespace) -> None:
    names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    dropped = [c for c in (args.drop_class or "").split(",") if c]
    jobs = [
        (
            name,
            args.source,
            args.data,
            args.input_size,
            args.epochs,
            dropped,
            args.out,
            args.device,
            args.threads,
            args.arch,
        )
        for name in names
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "ablation.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        if args.jobs > 1:
            os.environ.setdefault("OMP_NUM_THREADS", str(max(args.threads, 1)))
            with ProcessPoolExecutor(args.jobs) as pool:
                futures = [pool.submit(run_variant, job) for job in jobs]
                for future in as_completed(futures):
                    writer.writerows(future.result())
                    handle.flush()
        else:
            for job in jobs:
                writer.writerows(run_variant(job))
                handle.flush()
    print(f"wrote {path}")


def table(args: argparse.Namespace) -> None:
    """One Markdown table from the CSVs of several runs."""
    head = "| source | variant | reading | accuracy % | macro-F1 % | " + " | ".join(
        f"{c.value} recall" for c in CELL_CLASSES
    )
    print(head + " |")
    print("|" + " --- |" * (5 + len(CELL_CLASSES)))
    order = {name: i for i, name in enumerate(VARIANTS)}
    for path in args.csv:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            rows = sorted(csv.DictReader(handle), key=lambda r: order.get(r["variant"], 99))
            for row in rows:
                recalls = " | ".join(row[f"recall_{c.value}"] or "-" for c in CELL_CLASSES)
                print(
                    f"| {row['source']} | {row['variant']} | {row['reading']} | "
                    f"{row['accuracy']} ± {row['accuracy_std']} | "
                    f"{row['macro_f1']} ± {row['macro_f1_std']} | {recalls} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    go = commands.add_parser("run", help="cross-validate every variant on one dataset")
    go.add_argument("data", type=Path)
    go.add_argument("--source", required=True, help="name of the data source in the table")
    go.add_argument("--out", type=Path, required=True)
    go.add_argument("--input-size", type=int, default=64)
    go.add_argument("--epochs", type=int, default=20)
    go.add_argument("--arch", default="hs_mm_mimo")
    go.add_argument("--variants", help="comma-separated subset of the variants")
    go.add_argument("--drop-class", help="comma-separated classes to leave out")
    go.add_argument("--device", default="auto")
    go.add_argument("--threads", type=int, default=1)
    go.add_argument("--jobs", type=int, default=1)
    show = commands.add_parser("table", help="one Markdown table from ablation.csv files")
    show.add_argument("csv", nargs="+", type=Path)
    args = parser.parse_args()
    run(args) if args.command == "run" else table(args)


if __name__ == "__main__":
    main()

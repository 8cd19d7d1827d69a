"""The paper's accuracy tables from finished training runs: no retraining, no MAC counting.

`leukoscope experiment paper` trains every model of both tables and counts their MACs (fvcore: tens of
seconds per model on a 2-core CPU). When the runs were trained apart (`leukoscope train --part`, as in
benchmarks/paper_cpu.sh), this reads their folds back, averages the single-light models' softmax
into the ensemble exactly as `experiment paper` does, and prints the accuracy table:

    .venv/bin/python benchmarks/paper_from_runs.py DATA \
        color1=runs/paper/single_color1 color2=... color3=... fluorescence=... \
        --ensemble color1,color2,color3,fluorescence hs_mm_mimo=runs/ship

DATA is the dataset the runs were trained on (for the labels); every run must use its folds.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from leukoscope.classifier.data import load_dataset, native_input_size
from leukoscope.classifier.evaluate import summarize
from leukoscope.classifier.experiment import ensemble_fold_metrics
from leukoscope.classifier.train import FoldResult, load_fold


def read_folds(run_dir: Path) -> list[FoldResult]:
    """Every finished fold of a run, in order (stops at the first missing one)."""
    folds: list[FoldResult] = []
    while (fold := load_fold(len(folds), run_dir / f"fold_{len(folds)}")) is not None:
        folds.append(fold)
    if not folds:
        raise SystemExit(f"{run_dir}: no finished fold")
    return folds


def row(name: str, fold_metrics: list[dict[str, Any]]) -> str:
    """One Markdown row: accuracy, macro-F1 and balanced accuracy, mean ± sample std, in %."""
    summary = summarize(fold_metrics)
    cells = [
        f"{100 * summary[key]['mean']:.2f} ± {100 * summary[key]['std']:.2f}"
        for key in ("accuracy", "macro_f1", "balanced_accuracy")
    ]
    per_fold = " / ".join(f"{100 * m['accuracy']:.2f}" for m in fold_metrics)
    return f"| {name} | {' | '.join(cells)} | {len(fold_metrics)} | {per_fold} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="the dataset the runs were trained on")
    parser.add_argument("runs", nargs="+", help="NAME=RUN_DIR, in table order")
    parser.add_argument("--ensemble", default="", help="comma-separated NAMEs to average")
    args = parser.parse_intermixed_args()
    runs: dict[str, list[FoldResult]] = {}
    for item in args.runs:
        name, _, folder = item.partition("=")
        if not folder:
            raise SystemExit(f"{item!r}: expected NAME=RUN_DIR")
        runs[name] = read_folds(Path(folder))
    print("| model | accuracy % | macro-F1 % | balanced accuracy % | folds | accuracy per fold |")
    print("| --- | --- | --- | --- | --- | --- |")
    members = [n for n in args.ensemble.split(",") if n]
    for name, folds in runs.items():
        print(row(name, [f.metrics for f in folds]))
        if members and name == members[-1]:
            labels = np.asarray(load_dataset(args.data, native_input_size(args.data)).labels)
            print(row("ensemble", ensemble_fold_metrics(labels, [runs[m] for m in members])))


if __name__ == "__main__":
    main()

"""How the prior-correction power changes a trained run's cross-validated figures.

Reads a finished `leukoscope train` run (its folds' saved validation probabilities) and the dataset's
labels, and prints one row per power: accuracy, macro-F1, balanced accuracy, monocyte precision and
recall, and each class's predicted / true count over the pooled validation cells (1.00 = unbiased
counts). `leukoscope train` picks, among the same candidates (`train.candidate_powers`), the power
with the smallest largest |ratio - 1| (`train.count_bias`).

    .venv/bin/python benchmarks/prior_correction.py runs/field48/hs_mm_mimo DATA
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from leukoscope.classifier.data import scan_dataset
from leukoscope.classifier.evaluate import apply_class_weights, compute_metrics
from leukoscope.classifier.prior import (
    candidate_powers,
    count_bias,
    count_ratios,
    prior_correction,
)
from leukoscope.classifier.train import FoldResult, load_fold
from leukoscope.types import CELL_CLASSES, CellClass


def load_folds(run: Path) -> list[FoldResult]:
    """Every finished fold of the run."""
    folds = []
    for fold_dir in sorted(run.glob("fold_*")):
        fold = load_fold(int(fold_dir.name.removeprefix("fold_")), fold_dir)
        if fold is not None:
            folds.append(fold)
    if not folds:
        raise SystemExit(f"{run}: no finished folds")
    return folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    args = parser.parse_args()

    balance = json.loads((args.run / "run.json").read_text("utf-8"))["balance"]
    folds = load_folds(args.run)
    _, _, labels = scan_dataset(args.data)
    per_class = np.bincount(labels, minlength=len(CELL_CLASSES))
    counts = {c.value: int(n) for c, n in zip(CELL_CLASSES, per_class, strict=True)}
    truth = np.concatenate([labels[f.val_index] for f in folds])
    probs = np.concatenate([f.val_probs for f in folds])
    mo = CellClass.MO.value
    names = " | ".join(f"{c.value} ratio" for c in CELL_CLASSES)
    print(f"{args.run}: {len(folds)} folds, {len(truth)} validation cells, balance {balance:g}\n")
    print(
        f"| power | accuracy % | macro-F1 % | balanced % | MO precision % | MO recall % | {names} "
        "| count bias |"
    )
    print("|---" * (7 + len(CELL_CLASSES)) + "|")
    for power in candidate_powers(balance):
        weighted = apply_class_weights(probs, prior_correction(counts, power))
        m = compute_metrics(truth, weighted)
        ratios = " | ".join(f"{r:.2f}" for r in count_ratios(truth, weighted))
        print(
            f"| {power:g} | {100 * m['accuracy']:.2f} | {100 * m['macro_f1']:.2f} | "
            f"{100 * m['balanced_accuracy']:.2f} | {100 * m['precision'][mo]:.1f} | "
            f"{100 * m['recall'][mo]:.1f} | {ratios} | {count_bias(truth, weighted):.2f} |"
        )


if __name__ == "__main__":
    main()

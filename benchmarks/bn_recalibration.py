"""Is a MIMO model's accuracy at input repetition rho = 0 lost to BatchNorm statistics?

At rho = 0 every training example feeds each head an independently drawn cell, so BatchNorm's running
statistics describe four unrelated cells; at test time all heads see one cell. This script takes the
fold checkpoints of a finished `leukoscope train` run, recomputes every BatchNorm layer's running
statistics over batches drawn exactly as in training (class-balanced, augmented) but with either
test-style inputs (`--inputs same`: every head one cell) or training-style inputs (`--inputs
independent`, the control: it should give back the stored statistics' accuracy), and prints the
fold's validation accuracy before and after.

    .venv/bin/python benchmarks/bn_recalibration.py runs/rho0/mm_mimo DATA --folds 0 1 --inputs same
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from leukoscope.classifier.batches import (
    AugmentConfig,
    BatchPreparer,
    balanced_batches,
    gather_mimo_batch,
    mimo_indices,
)
from leukoscope.classifier.checkpoint import load_checkpoint
from leukoscope.classifier.data import CellDataset, load_dataset
from leukoscope.classifier.evaluate import compute_metrics, predict
from leukoscope.classifier.folds import fold_splits

BATCH = 64


def recalibrate(
    model: torch.nn.Module,
    dataset: CellDataset,
    train_index: np.ndarray,
    preparer: BatchPreparer,
    batches: int,
    independent: bool,
    seed: int,
) -> None:
    """Replace the BatchNorm running statistics with a cumulative average over `batches` batches."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    generator = torch.Generator().manual_seed(seed)
    heads = len(dataset.modalities)
    rho = (
        0.0 if independent else 1.0
    )  # the training path's MIMO batch: all independent or all shared
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            loaded = balanced_batches(train_index, dataset.labels, BATCH, 1, generator)[0]
            images, _ = gather_mimo_batch(dataset, mimo_indices(loaded, heads, rho, 1, generator))
            model(preparer(images, generator))
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--folds", type=int, nargs="+", default=[0])
    parser.add_argument("--inputs", choices=("same", "independent"), default="same")
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)

    config = json.loads((args.run / "run.json").read_text("utf-8"))
    dataset = load_dataset(args.data, config["input_size"], None)
    splits = fold_splits(dataset.labels, config["folds"], config["seed"])
    device = torch.device("cpu")
    print(f"{args.run}: BatchNorm statistics recomputed with {args.inputs} inputs per head")
    for fold in args.folds:
        model, meta = load_checkpoint(args.run / f"fold_{fold}" / "model.pt")
        mean = np.asarray(meta.norm_mean, np.float32)
        std = np.asarray(meta.norm_std, np.float32)
        plain = BatchPreparer(mean, std, dataset.max_value, device)
        augmented = BatchPreparer(mean, std, dataset.max_value, device, AugmentConfig())
        train_index, val_index = splits[fold]
        labels = dataset.labels[val_index]
        before = compute_metrics(labels, predict(model, dataset.images[val_index], plain))
        independent = args.inputs == "independent"
        recalibrate(model, dataset, train_index, augmented, args.batches, independent, fold)
        after = compute_metrics(labels, predict(model, dataset.images[val_index], plain))
        print(
            f"fold {fold}: accuracy {100 * before['accuracy']:.2f} -> "
            f"{100 * after['accuracy']:.2f} %, macro-F1 {100 * before['macro_f1']:.2f} -> "
            f"{100 * after['macro_f1']:.2f} %",
            flush=True,
        )


if __name__ == "__main__":
    main()

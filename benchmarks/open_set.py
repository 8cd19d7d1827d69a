"""The open-set flag: how many cells outside the five it catches, and how many normal cells it flags.

Cells are cut from simulated fields exactly as the pipeline cuts them (`simulator/dataset.FieldCells`):
held-out normal cells (the training composition, a seed the model never saw) and cells outside the
five (IG, NRBC, BLAST, RL; `simulator/atypical.py`), none of which the model was trained on. Prints
the flag rate on normal cells and the catch rate per extra class for the model's fitted score, and for
comparison the same at the same flag rate for scores from the probabilities alone.

    .venv/bin/python benchmarks/open_set.py                 # measure the configured model
    .venv/bin/python benchmarks/open_set.py --fit MODEL.pt  # fit MODEL's score first (weights kept)

`--fit` fits on 2000 held-out simulated cells (seed 1001) at `--rate` (default 5 %) and rewrites the
checkpoint's metadata; export its ONNX graph again afterwards (`leukoscope export MODEL.pt`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.open_set import DEFAULT_FLAG_RATE
from leukoscope.classifier.open_set_fit import refit_checkpoint
from leukoscope.classifier.shipped import resolve_model_path
from leukoscope.config import load_settings
from leukoscope.instrument.simulator.composition import DEFAULT_COMPOSITION, apportion
from leukoscope.instrument.simulator.dataset import FieldCells
from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES, MODALITIES, CellClass

FIT_SEED, NORMAL_SEED, EXTRA_SEED = 1001, 2002, 3003


def simulated_cells(
    seed: int, quotas: dict[CellClass, int], atypical: float
) -> tuple[np.ndarray, list[CellClass]]:
    """Raw crops (B, M, H, W) and their true classes."""
    source = FieldCells(
        seed=seed, frame_shape=(1024, 1024), wbc_per_field=8, atypical_fraction=atypical
    )
    crops, labels = [], []
    for cell_class, images, _ in source.cells(quotas):
        crops.append(np.stack([images[m] for m in MODALITIES]))
        labels.append(cell_class)
    return np.stack(crops), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fit", type=Path, default=None, help="checkpoint to fit, then measure")
    parser.add_argument("--rate", type=float, default=DEFAULT_FLAG_RATE)
    parser.add_argument("--fit-cells", type=int, default=2000)
    parser.add_argument("--normal", type=int, default=1000)
    parser.add_argument("--extra", type=int, default=150, help="cells per extra class")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.fit is not None:
        crops, labels = simulated_cells(FIT_SEED, apportion(args.fit_cells, DEFAULT_COMPOSITION), 0)
        index = np.array([CELL_CLASSES.index(c) for c in labels])
        source = f"{len(labels)} held-out simulated cells (seed {FIT_SEED}), benchmarks/open_set.py"
        meta = refit_checkpoint(args.fit, crops, index, target_flag_rate=args.rate, source=source)
        assert meta.open_set is not None
        print(f"fitted {args.fit}: threshold {meta.open_set.threshold:.1f} at {args.rate:.0%}")
    path = args.fit or resolve_model_path(load_settings().classifier.model_path)
    predictor = Predictor.load(path, "torch", threads=1)
    fit = predictor.meta.open_set
    if fit is None:
        raise SystemExit(f"{path}: no open-set fit (run with --fit)")
    normal, _ = simulated_cells(NORMAL_SEED, apportion(args.normal, DEFAULT_COMPOSITION), 0)
    extra, kinds = simulated_cells(
        NORMAL_SEED + EXTRA_SEED, dict.fromkeys(EXTRA_CLASSES, args.extra), 0.3
    )
    a, b = predictor.predict(normal), predictor.predict(extra)
    kinds_arr = np.array([k.value for k in kinds])
    print(f"model {path}; {len(normal)} normal cells, {len(extra)} outside the five")
    print(
        "| score | flagged normal cells | caught outside the five | "
        + " | ".join(c.value for c in EXTRA_CLASSES)
        + " |"
    )
    print("|---" * (3 + len(EXTRA_CLASSES)) + "|")

    def row(
        name: str, normal_scores: np.ndarray, extra_scores: np.ndarray, threshold: float
    ) -> None:
        caught = extra_scores > threshold
        per = " | ".join(f"{caught[kinds_arr == c.value].mean():.1%}" for c in EXTRA_CLASSES)
        print(
            f"| {name} | {np.mean(normal_scores > threshold):.1%} | {caught.mean():.1%} | {per} |"
        )

    row("Mahalanobis, features (the model's)", a.open_set_scores, b.open_set_scores, fit.threshold)
    top_a, top_b = 1 - a.probabilities.max(1), 1 - b.probabilities.max(1)
    row(
        f"1 - top probability (at {fit.target_flag_rate:.0%} of normal)",
        top_a,
        top_b,
        float(np.quantile(top_a, 1 - fit.target_flag_rate)),
    )
    print("\nbest guess of the cells outside the five (counted silently without the flag):")
    for c in EXTRA_CLASSES:
        guesses = b.probabilities[kinds_arr == c.value].argmax(1)
        share = {CELL_CLASSES[k].value: f"{np.mean(guesses == k):.0%}" for k in range(5)}
        print(f"  {c.value}: {share}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

"""The open-set flag: how many cells outside the five it catches, and how many normal cells it flags.

Every cell is cut from simulated acquisitions exactly as the pipeline cuts it
(`benchmarks/pipeline_cells.py`: the segment workers' segmentation and quality check, crops at the
model's input side) and matched to the true white cell it came from: held-out normal samples (the
training composition, seeds the model never saw; every detection counts, as in `batch`) and samples
where half the white cells are outside the five (IG, NRBC, BLAST, RL; `simulator/atypical.py`), none of
which the model was trained on. Samples alternate 12-bit and 8-bit cameras. Prints the flag rate on
normal cells and the catch rate per extra class for the model's fitted score and each of its parts
alone (at the part's own 5 % spread), and for comparison the same at the same flag rate for scores
from the probabilities and a combination.

    .venv/bin/python benchmarks/open_set.py                 # measure the configured model
    .venv/bin/python benchmarks/open_set.py --fit MODEL.pt  # fit MODEL's score first (weights kept)

`--fit` fits on the cells of `--fit-samples` held-out simulated normal samples (seeds from 5000) at
`--rate` (default 5 %) and rewrites the checkpoint's metadata; export its ONNX graph again
afterwards (`leukoscope export MODEL.pt`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from leukoscope.classifier.infer import Prediction, Predictor
from leukoscope.classifier.open_set import DEFAULT_FLAG_RATE
from leukoscope.classifier.open_set_fit import refit_checkpoint
from leukoscope.classifier.shipped import resolve_model_path
from leukoscope.config import PipelineConfig, load_settings
from leukoscope.instrument.simulator.atypical import IG_STAGES
from leukoscope.types import CELL_CLASSES, EXTRA_CLASSES, CellClass
from pipeline_cells import pipeline_cells  # benchmarks/ is the script's folder

FIT_SEED, NORMAL_SEED, EXTRA_SEED = 5000, 7000, 8000


def cut(
    config: PipelineConfig, size: int, seed: int, samples: int, fields: int, atypical: float
) -> tuple[np.ndarray, list[CellClass | None], list[str]]:
    """Crops (as uint16: 8-bit samples scaled exactly), true classes and stages of `samples`
    samples."""
    crops, classes, stages = [], [], []
    for i in range(samples):
        cells = pipeline_cells(
            config, size, seed=seed + i, fields=fields, atypical_fraction=atypical,
            bit_depth=12 if i % 2 == 0 else 8,
        )  # fmt: skip
        scale = 257 if cells.crops.dtype == np.uint8 else 1
        crops.append(cells.crops.astype(np.uint16) * np.uint16(scale))
        classes += cells.classes
        stages += cells.stages
    return np.concatenate(crops), classes, stages


def predict(predictor: Predictor, crops: np.ndarray) -> Prediction:
    """The model's answer for many crops, in batches."""
    parts = [predictor.predict(crops[i : i + 256]) for i in range(0, len(crops), 256)]
    return Prediction(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Prediction.__dataclass_fields__)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fit", type=Path, default=None, help="checkpoint to fit, then measure")
    parser.add_argument("--rate", type=float, default=DEFAULT_FLAG_RATE)
    parser.add_argument("--fit-samples", type=int, default=12)
    parser.add_argument("--samples", type=int, default=8, help="normal and atypical samples each")
    parser.add_argument("--fields", type=int, default=25, help="1024 px fields per sample")
    args = parser.parse_args()
    started = time.perf_counter()
    settings = load_settings()
    path = args.fit or resolve_model_path(settings.classifier.model_path)
    size = Predictor.load(path, "torch", threads=1).input_size
    if args.fit is not None:
        crops, classes, _ = cut(settings.pipeline, size, FIT_SEED, args.fit_samples, args.fields, 0)
        known = [i for i, c in enumerate(classes) if c in CELL_CLASSES]
        index = np.array([CELL_CLASSES.index(classes[i]) for i in known])  # type: ignore[arg-type]
        source = (
            f"{len(known)} cells cut by the pipeline from {args.fit_samples} held-out simulated "
            f"samples (seeds {FIT_SEED}+), benchmarks/open_set.py"
        )
        meta = refit_checkpoint(
            args.fit, crops[known], index, target_flag_rate=args.rate, source=source
        )
        assert meta.open_set is not None
        print(f"fitted {args.fit}: threshold {meta.open_set.threshold:.1f} at {args.rate:.0%}")
    predictor = Predictor.load(path, "torch", threads=1)
    fit = predictor.meta.open_set
    if fit is None:
        raise SystemExit(f"{path}: no open-set fit (run with --fit)")
    normal, _, _ = cut(settings.pipeline, size, NORMAL_SEED, args.samples, args.fields, 0)
    mixed, truth, stages = cut(settings.pipeline, size, EXTRA_SEED, args.samples, args.fields, 0.5)
    odd = np.array([c in EXTRA_CLASSES for c in truth])
    a, b = predict(predictor, normal), predict(predictor, mixed[odd])
    kinds = np.array([c.value for c, o in zip(truth, odd, strict=True) if o and c is not None])
    odd_stages = np.array([s for s, o in zip(stages, odd, strict=True) if o])
    print(f"model {path}; {len(normal)} normal cells, {len(kinds)} outside the five")
    names = " | ".join(c.value for c in EXTRA_CLASSES)
    print(f"| score | flagged normal cells | caught outside the five | {names} |")
    print("|---" * (3 + len(EXTRA_CLASSES)) + "|")

    def row(name: str, normal_scores: np.ndarray, odd_scores: np.ndarray, threshold: float) -> None:
        caught = odd_scores > threshold
        per = " | ".join(f"{caught[kinds == c.value].mean():.1%}" for c in EXTRA_CLASSES)
        print(
            f"| {name} | {np.mean(normal_scores > threshold):.1%} | {caught.mean():.1%} | {per} |"
        )

    rate = fit.target_flag_rate
    row(f"the model's score ({fit.score})", a.open_set_scores, b.open_set_scores, fit.threshold)
    twice = np.quantile(a.open_set_scores, 1 - 2 * rate)
    row(f"the same at {2 * rate:.0%} of normal", a.open_set_scores, b.open_set_scores, twice)
    if fit.intensities is not None and fit.feature_scale is not None:
        middle, spread = fit.feature_scale
        row(
            "its pooled-features part alone",
            fit.feature_distances(a.features),
            fit.feature_distances(b.features),
            middle + spread,
        )
        normal_cells, odd_cells = (
            fit.intensities.measures(predictor.preprocess(c)) for c in (normal, mixed[odd])
        )
        for radius, part, u, v in zip(
            fit.intensities.radii, fit.intensity_parts, normal_cells, odd_cells, strict=True
        ):
            name = f"its intensity part alone, disc {radius:.2f} of the crop side"
            row(name, part.standardised(u), part.standardised(v), 1.0)
    top_a, top_b = 1 - a.probabilities.max(1), 1 - b.probabilities.max(1)
    row(
        f"1 - top probability (at {rate:.0%} of normal)", top_a, top_b, np.quantile(top_a, 1 - rate)
    )

    def standard(values: np.ndarray, normal_values: np.ndarray) -> np.ndarray:
        middle = np.median(normal_values)
        return (values - middle) / (np.quantile(normal_values, 1 - rate) - middle)

    both_a = np.maximum(standard(a.open_set_scores, a.open_set_scores), standard(top_a, top_a))
    both_b = np.maximum(standard(b.open_set_scores, a.open_set_scores), standard(top_b, top_a))
    row(
        f"max of the two, each scaled on normal (at {rate:.0%})",
        both_a,
        both_b,
        np.quantile(both_a, 1 - rate),
    )
    print(f"\ncaught by the model's score, per stage of the immature granulocytes ({rate:.0%}):")
    caught = b.open_set_scores > fit.threshold
    for stage, _ in IG_STAGES:
        mine = odd_stages == stage
        print(f"  {stage}: {caught[mine].mean():.1%} of {int(mine.sum())}")
    print("\nbest guess of the cells outside the five (counted silently without the flag):")
    for c in EXTRA_CLASSES:
        guesses = b.probabilities[kinds == c.value].argmax(1)
        share = {CELL_CLASSES[k].value: f"{np.mean(guesses == k):.0%}" for k in range(5)}
        print(f"  {c.value}: {share}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

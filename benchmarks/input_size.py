"""Classification speed of a model at several input sizes (for choosing the shipped model's size).

Times `Predictor.predict` on raw 96x96 uint8 crops (the simulator's crop size; the predictor resizes
them), so preprocessing is included. Weights do not change the speed: untrained models are used.

    .venv/bin/python benchmarks/input_size.py --sizes 32 48 64 96 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from leukoscope.classifier.checkpoint import ModelMeta
from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.models import build_model
from leukoscope.types import MODALITIES


def cells_per_second(predictor: Predictor, crops: np.ndarray, repeats: int) -> float:
    """Median cells/s over `repeats` timed calls (after one warm-up call)."""
    predictor.predict(crops)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict(crops)
        times.append(time.perf_counter() - start)
    return len(crops) / statistics.median(times)


def main() -> None:
    """Print a Markdown table: input size x backend -> cells/s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="hs_mm_mimo")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64, 96])
    parser.add_argument("--backends", nargs="+", default=["onnx", "torch"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    crops = np.random.default_rng(0).integers(0, 255, (args.batch, 4, 96, 96), dtype=np.uint8)
    print(f"| input | {' | '.join(f'{b} cells/s' for b in args.backends)} |")
    print("| --- |" + " --- |" * len(args.backends))
    for size in args.sizes:
        model = build_model(args.arch, MODALITIES, in_chans=1)
        meta = ModelMeta.default(args.arch, MODALITIES, 1, input_size=size)
        speeds = []
        for backend in args.backends:
            predictor = Predictor.from_model(model, meta, backend, args.threads)
            speeds.append(cells_per_second(predictor, crops, args.repeats))
        print(f"| {size} | {' | '.join(f'{s:.0f}' for s in speeds)} |", flush=True)


if __name__ == "__main__":
    main()

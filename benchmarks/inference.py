"""Inference throughput: cells/s for each model x backend x batch size, interleaved, median of repeats.

    .venv/bin/python benchmarks/inference.py                  # paper setting: 3 channels, 224 px
    .venv/bin/python benchmarks/inference.py --in-chans 1     # the rig's monochrome camera

Times the backend's forward pass on normalised input already in the layout the backend takes (what
`Predictor.predict` adds on top, scaling and normalising raw crops, is timed once separately). Every
configuration is timed once per round, rounds repeat, and the median round is reported (with the best
in brackets): on a shared machine the spread is wide, and interleaving spreads other people's load
evenly over the configurations. Not a test; prints tables for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np
import onnxruntime
import torch

from leukoscope.classifier.checkpoint import ModelMeta
from leukoscope.classifier.contract import INPUT_NAME
from leukoscope.classifier.export import onnx_bytes
from leukoscope.classifier.infer import Predictor, Runner, available_threads, onnx_session
from leukoscope.classifier.models import MODELS
from leukoscope.types import MODALITIES

Key = tuple[str, str, int]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _predictor(arch: str, backend: str, in_chans: int, size: int, threads: int) -> Predictor:
    """`backend` torch, onnx (the Predictor's runner), or onnx-intra: one session, intra-op threads
    only (what the onnx runner does for a single cell), for comparison."""
    modalities = MODALITIES[:1] if arch == "single" else MODALITIES
    meta = ModelMeta.default(arch, modalities, in_chans, input_size=size)
    torch.manual_seed(0)
    model = meta.build().eval()
    if backend != "onnx-intra":
        return Predictor.from_model(model, meta, backend, threads)  # type: ignore[arg-type]
    session = onnx_session(onnx_bytes(model, size), threads)
    names = [i.name for i in session.get_inputs()]  # type: ignore[attr-defined]

    def run(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        probs, heads = session.run(None, dict(zip(names, arrays, strict=True)))  # type: ignore[attr-defined]
        return probs, heads

    return Predictor(meta, Runner(run, names != [INPUT_NAME]), model.num_heads, backend)


def _raw(predictor: Predictor, batch: int) -> np.ndarray:
    meta = predictor.meta
    shape: tuple[int, ...] = (batch, len(meta.modalities), meta.input_size, meta.input_size)
    if meta.in_chans > 1:
        shape = (*shape, meta.in_chans)
    return np.random.default_rng(batch).integers(0, 256, shape, dtype=np.uint8)


def _forward(predictor: Predictor, batch: int) -> Callable[[], object]:
    runner = predictor._runner  # the timed part: the backend alone
    x = predictor.preprocess(_raw(predictor, batch), modality_major=runner.split)
    arrays = list(x) if runner.split else [x]
    return lambda: runner.run(arrays)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--backends", default="torch,onnx")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--in-chans", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0 = every core")
    parser.add_argument("--repeats", type=int, default=9, help="rounds")
    parser.add_argument("--min-cells", type=int, default=8, help="cells per timing, at least")
    parser.add_argument(
        "--clock",
        choices=("wall", "thread"),
        default="wall",
        help="thread: CPU time of the calling thread (only meaningful with --threads 1); robust "
        "to other processes' load when comparing variants on a busy machine",
    )
    args = parser.parse_args(argv)
    archs = args.models.split(",")
    backends = args.backends.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    threads = args.threads or available_threads()
    clock = time.perf_counter if args.clock == "wall" else time.thread_time

    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()
    print(f"# {started:%Y-%m-%d %H:%M} UTC  command: python {' '.join(sys.argv)}")
    print(
        f"# {_cpu_name()}, {available_threads()} cores usable, threads={threads}; "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"{args.in_chans} channel(s) x modality, {args.size}x{args.size}, fp32"
    )
    predictors = {
        (a, b): _predictor(a, b, args.in_chans, args.size, threads) for a in archs for b in backends
    }
    calls: dict[Key, tuple[Callable[[], object], int]] = {}
    for (arch, backend), predictor in predictors.items():
        for batch in batches:
            forward = _forward(predictor, batch)
            forward()  # warm-up: allocations, oneDNN primitive creation
            calls[(arch, backend, batch)] = (forward, max(1, args.min_cells // batch))
    per_cell: dict[Key, list[float]] = defaultdict(list)
    for _ in range(args.repeats):
        for key, (forward, loops) in calls.items():
            start = clock()
            for _ in range(loops):
                forward()
            per_cell[key].append((clock() - start) / (loops * key[2]))

    def rate(key: Key, pick: Callable[[list[float]], float] = statistics.median) -> float:
        return 1.0 / pick(per_cell[key])

    print(f"\ncells/s ({args.clock} clock), median of rounds [best round]")
    header = "| model | backend | " + " | ".join(f"batch {b}" for b in batches) + " |"
    print(header)
    print("|" + "---|" * (2 + len(batches)))
    for arch in archs:
        for backend in backends:
            cells = [
                f"{rate((arch, backend, b)):.0f} [{rate((arch, backend, b), min):.0f}]"
                for b in batches
            ]
            print(f"| {arch} | {backend} | " + " | ".join(cells) + " |")

    if "hs_mm_mimo" in archs and "ensemble" in archs:
        print("\nhs_mm_mimo / ensemble, cells/s ratio (median rounds)")
        for backend in backends:
            ratios = [
                f"batch {b}: {rate(('hs_mm_mimo', backend, b)) / rate(('ensemble', backend, b)):.2f}x"
                for b in batches
            ]
            print(f"  {backend}: " + ", ".join(ratios))

    print("\npreprocessing (uint8 crops -> normalised float32), cells/s, median of 5")
    for batch in batches:
        predictor = predictors[(archs[-1], backends[0])]
        raw = _raw(predictor, batch)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            predictor.preprocess(raw, modality_major=predictor._runner.split)
            times.append(time.perf_counter() - start)
        print(f"  {archs[-1]}, batch {batch}: {batch / statistics.median(times):.0f}")
    load_after = os.getloadavg()
    print(
        f"\n# load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
        f"{(datetime.now(timezone.utc) - started).total_seconds():.0f} s"
    )


if __name__ == "__main__":
    main()

"""Cost and verdicts of the blank/saturated field check (pipeline/field_quality.py).

    .venv/bin/python benchmarks/field_quality.py --fields 20 --seed 0

On simulated 2048 x 2048 fields (four 12-bit frames) it reports the median time of `check_field`
beside the median time of `segment` on the same fields, how many normal fields the check refuses
(should be none), and whether it catches the same fields made blank (all black; a black
fluorescence frame; a bright-field lamp off: dark noise only) or over-exposed (three times the
exposure, clipped).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

import numpy as np

from leukoscope.errors import FieldQualityError, PipelineError
from leukoscope.instrument.simulator.frames import capture_frameset
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.pipeline.field_quality import check_field
from leukoscope.pipeline.segmentation import segment
from leukoscope.types import FrameSet


def _variants(frameset: FrameSet) -> dict[str, FrameSet]:
    full = 2**frameset.bit_depth - 1
    frames = frameset.frames
    rng = np.random.default_rng(frameset.fov)
    noise = rng.normal(60, 8, frames[0].shape).clip(0).astype(frames[0].dtype)
    return {
        "all black": replace(frameset, frames=tuple(np.zeros_like(f) for f in frames)),
        "fluorescence black": replace(frameset, frames=(*frames[:3], np.zeros_like(frames[3]))),
        "color2 lamp off": replace(frameset, frames=(frames[0], noise, *frames[2:])),
        "3x exposure": replace(
            frameset,
            frames=tuple(np.minimum(f.astype(np.int64) * 3, full).astype(f.dtype) for f in frames),
        ),
    }


def _refused(frameset: FrameSet) -> bool:
    try:
        check_field(frameset)
    except FieldQualityError:
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1 <= args.fields <= 1000:
        print("error: --fields must be 1..1000", file=sys.stderr)
        return 2
    sample = SimulatedSample(seed=args.seed, params=SampleParams())
    renderer, sensor = FieldRenderer(sample), Sensor()
    check_ms: list[float] = []
    segment_ms: list[float] = []
    false_refusals = 0
    caught = dict.fromkeys(("all black", "fluorescence black", "color2 lamp off", "3x exposure"), 0)
    for fov in range(args.fields):
        frameset = capture_frameset(renderer, sensor, "bench", fov)
        start = time.perf_counter()
        try:
            check_field(frameset)
        except PipelineError:
            false_refusals += 1
        check_ms.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        segment(frameset, out_px=64)
        segment_ms.append(1000 * (time.perf_counter() - start))
        for name, variant in _variants(frameset).items():
            caught[name] += _refused(variant)
    shape = "x".join(str(s) for s in frameset.frames[0].shape)
    print(f"{args.fields} simulated fields, {len(frameset.frames)} frames of {shape} px each")
    print(f"check_field: median {statistics.median(check_ms):.2f} ms per field")
    print(f"segment:     median {statistics.median(segment_ms):.1f} ms per field (same fields)")
    print(f"normal fields refused: {false_refusals} of {args.fields}")
    for name, count in caught.items():
        print(f"{name:>18}: refused {count} of {args.fields}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

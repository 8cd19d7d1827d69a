"""Segmentation of a field whose top is noise (a camera fault, a smear edge, a bubble).

    .venv/bin/python benchmarks/noise_field.py                      # 500 / 1,000 / 3,000 regions
    .venv/bin/python benchmarks/noise_field.py --before-max 1000    # the re-scan up to 1,000

A simulated 2048 x 2048 field (0.25 um/px) gets its top rows replaced by bright 1 um specks on a
flat background (5 % of the 1 um squares), as many rows as give about the wanted number of
candidate regions. For each it prints the candidate regions, the time of the lobe merge (grid
and heap, `pipeline/regions.py`) and of a re-scan merge for comparison (every pair measured again
after each merge; only up to `--before-max` regions: 3,000 take about a quarter of an hour), the
pairs the merge looked at and measured, the whole `segment` without a cap, and `segment` with the default cap
(`max_regions` 2,000: a field over it fails at once with `too_many_regions`).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from leukoscope.errors import TooManyRegions
from leukoscope.instrument.simulator.frames import capture_frameset
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.pipeline.regions import MergeStats, Region, merge_lobes
from leukoscope.pipeline.segmentation import SegmentationParams, candidate_regions, segment
from leukoscope.types import FrameSet, Modality

REGIONS_PER_ROW = 3.9  # candidate regions per noisy row of a 2048-wide field (measured)


def rescan_merge(
    regions: list[Region], max_extent: float, cell_extent: float, lobe_px: float
) -> list[Region]:
    """A re-scan lobe merge, for comparison: every pair measured again after each merge (O(n^3))."""
    regions = list(regions)
    reach = max(max_extent, cell_extent)
    while len(regions) > 1:
        best: tuple[float, int, int] | None = None
        centres = [r.centroid for r in regions]
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                if math.dist(centres[i], centres[j]) > 2 * reach:
                    continue
                extent = regions[i].merged(regions[j]).extent
                small = min(regions[i].ys.size, regions[j].ys.size) < lobe_px
                fits = extent <= max_extent or (small and extent <= cell_extent)
                if fits and (best is None or extent < best[0]):
                    best = (extent, i, j)
        if best is None:
            break
        _, i, j = best
        regions[i] = regions[i].merged(regions[j])
        del regions[j]
    return regions


def with_noise(frameset: FrameSet, rows: int, seed: int) -> FrameSet:
    """The field with its first `rows` fluorescence rows replaced by bright 1 um specks."""
    index = frameset.modalities.index(Modality.FLUORESCENCE)
    frames = list(frameset.frames)
    frame = frames[index].copy()
    block = 4
    rng = np.random.default_rng(seed)
    squares = rng.random((-(-rows // block), -(-frame.shape[1] // block))) < 0.05
    coarse = np.where(squares, float(frame.max()), float(np.median(frame)))
    frame[:rows] = np.kron(coarse, np.ones((block, block)))[:rows, : frame.shape[1]]
    frames[index] = frame
    return FrameSet(**{**vars(frameset), "frames": tuple(frames)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="+", default=[500, 1000, 3000])
    parser.add_argument("--before-max", type=int, default=1000, help="re-scan up to this many")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sample = SimulatedSample(seed=args.seed, params=SampleParams(frame_shape=(2048, 2048)))
    clean = capture_frameset(FieldRenderer(sample), Sensor(), "bench", 0)
    uncapped = SegmentationParams(max_regions=1_000_000)
    header = (
        f"{'regions':>8} {'merge now':>10} {'merge before':>13} {'pairs':>8} {'measured':>9}"
        f" {'segment':>9} {'segment, capped':>16}"
    )
    print(header)
    for wanted in args.regions:
        rows = min(2048, round(wanted / REGIONS_PER_ROW))
        field = with_noise(clean, rows, args.seed)
        fluorescence = field.frame(Modality.FLUORESCENCE)
        found = candidate_regions(fluorescence, field.pixel_size_um, uncapped)
        px = found.px_um
        limits = (
            uncapped.max_nucleus_um / px,
            uncapped.max_cell_um / px,
            uncapped.max_lobe_um2 / px**2,
        )
        stats = MergeStats()
        started = time.perf_counter()
        now = merge_lobes(found.regions, *limits, stats)
        merge_s = time.perf_counter() - started
        before = "-"
        if len(found.regions) <= args.before_max:
            started = time.perf_counter()
            old = rescan_merge(found.regions, *limits)
            before = f"{time.perf_counter() - started:.2f} s"
            same = len(old) == len(now) and all(
                np.array_equal(a.ys, b.ys) and np.array_equal(a.xs, b.xs)
                for a, b in zip(old, now, strict=True)
            )
            before += "" if same else " (DIFFERENT)"
        started = time.perf_counter()
        segment(field, params=uncapped)
        segment_s = time.perf_counter() - started
        started = time.perf_counter()
        try:
            segment(field)
            capped = "segmented"
        except TooManyRegions:
            capped = "refused"
        capped = f"{time.perf_counter() - started:.3f} s {capped}"
        print(
            f"{len(found.regions):>8} {merge_s:>8.2f} s {before:>13} {stats.pairs:>8} "
            f"{stats.measured:>9} {segment_s:>7.2f} s {capped:>16}",
            flush=True,
        )


if __name__ == "__main__":
    main()

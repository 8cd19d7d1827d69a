"""The lobe merge: the same regions as the greedy re-scan it replaced, on simulated and noisy
fields; work that grows linearly with the regions (counted, not timed); the per-field cap and the
time budget."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from leukoscope.errors import OverBudget, TooManyRegions, WorkStopped
from leukoscope.instrument.simulator.frames import capture_frameset
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.pipeline import budget
from leukoscope.pipeline.regions import MergeStats, Region, cut_by_border, merge_lobes, pieces
from leukoscope.pipeline.segmentation import SegmentationParams, candidate_regions, detect, segment
from leukoscope.types import FrameSet, Modality

from ..noise_fields import noisy, with_noise

UNCAPPED = SegmentationParams(max_regions=1_000_000)


def rescan_merge(
    regions: list[Region], max_extent: float, cell_extent: float, lobe_px: float
) -> list[Region]:
    """The merge as it was: every pair measured again after each merge (O(n^3))."""
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


def merge_args(px_um: float, params: SegmentationParams) -> tuple[float, float, float]:
    return params.max_nucleus_um / px_um, params.max_cell_um / px_um, params.max_lobe_um2 / px_um**2


def both_merges(fluorescence: np.ndarray, pixel_um: float) -> tuple[list[Region], list[Region]]:
    found = candidate_regions(fluorescence, pixel_um, UNCAPPED)
    args = merge_args(found.px_um, UNCAPPED)
    return rescan_merge(found.regions, *args), merge_lobes(found.regions, *args)


def identical(a: list[Region], b: list[Region]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x.ys, y.ys)
        and np.array_equal(x.xs, y.xs)
        and np.array_equal(x.weights, y.weights)
        for x, y in zip(a, b, strict=True)
    )


def simulated(seed: int, fov: int, cells: float, side: int = 768) -> FrameSet:
    params = SampleParams(frame_shape=(side, side), wbc_per_field=cells)
    sample = SimulatedSample(seed=seed, params=params)
    return capture_frameset(FieldRenderer(sample), Sensor(), "sim", fov)


@pytest.mark.parametrize(("seed", "cells"), [(0, 12.0), (1, 40.0), (2, 80.0)])
def test_the_merge_equals_the_rescan_on_simulated_fields(seed: int, cells: float) -> None:
    merges = 0
    for fov in range(2):
        frameset = simulated(seed, fov, cells)
        old, new = both_merges(frameset.frame(Modality.FLUORESCENCE), frameset.pixel_size_um)
        assert identical(old, new)
        found = candidate_regions(
            frameset.frame(Modality.FLUORESCENCE), frameset.pixel_size_um, UNCAPPED
        )
        merges += len(found.regions) - len(new)
    assert merges > 0  # lobes were merged: the comparison covers the merge, not just its absence


def test_the_merge_equals_the_rescan_on_a_noisy_field() -> None:
    frameset = with_noise(simulated(3, 0, 12.0, side=512))
    fluorescence = frameset.frame(Modality.FLUORESCENCE)
    assert 150 <= len(candidate_regions(fluorescence, 0.25, UNCAPPED).regions) <= 400
    old, new = both_merges(fluorescence, frameset.pixel_size_um)
    assert identical(old, new) and len(new) < 150


def test_watershed_pieces_are_each_labels_pixels_in_row_order() -> None:
    rng = np.random.default_rng(0)
    flooded = rng.integers(0, 6, (40, 50)).astype(np.int32)
    for label, (ys, xs) in enumerate(pieces(flooded, 5), start=1):
        want_ys, want_xs = np.nonzero(flooded == label)
        assert np.array_equal(ys, want_ys) and np.array_equal(xs, want_xs)


def test_the_merge_work_grows_linearly_with_the_regions() -> None:
    """Noise of the same density over 1x, 2x and 4x the area: pairs looked at and unions measured
    per region stay flat (the re-scan looked at every pair after every merge: n^2 per merge)."""
    per_region = []
    for rows in (256, 512, 1024):
        frame = np.full((rows, 1024), 30, np.uint16)
        frame[0, 0] = 450  # the specks' brightness (noisy() takes it from the frame)
        frame = noisy(frame, rows, seed=rows)
        found = candidate_regions(frame, 0.25, UNCAPPED)
        stats = MergeStats()
        merge_lobes(found.regions, *merge_args(found.px_um, UNCAPPED), stats)
        n = len(found.regions)
        per_region.append((n, stats.pairs / n, stats.measured / n))
    counts = [n for n, _, _ in per_region]
    assert counts[1] > 1.7 * counts[0] and counts[2] > 1.7 * counts[1], per_region
    assert counts[2] > 1000, per_region
    for _, pairs, measured in per_region[1:]:
        assert pairs <= 1.3 * per_region[0][1] and measured <= 1.3 * per_region[0][2], per_region
    assert per_region[-1][1] < 100, per_region  # a bounded number of neighbours per region


def test_a_field_with_too_many_regions_fails_with_its_count_and_reason() -> None:
    frameset = with_noise(simulated(4, 1, 12.0, side=512))
    with pytest.raises(TooManyRegions) as caught:
        segment(frameset, params=SegmentationParams(max_regions=100))
    message = str(caught.value)
    assert message.startswith("too_many_regions: ")
    assert "candidate regions, more than 100: noise, a bubble or a smear edge?" in message
    assert SegmentationParams().max_regions == 2000
    assert len(segment(frameset, params=UNCAPPED)) >= 0  # under the cap it is segmented


def test_segmentation_gives_up_past_its_budget_and_when_told_to_stop() -> None:
    frameset = with_noise(simulated(5, 0, 12.0, side=512))
    with budget.within(0.0), pytest.raises(OverBudget, match="ran past its 0 s budget"):
        time.sleep(0.01)
        segment(frameset, params=UNCAPPED)
    stop = threading.Event()
    stop.set()
    with budget.within(60.0, stop), pytest.raises(WorkStopped):
        detect(frameset.frame(Modality.FLUORESCENCE), 0.25, UNCAPPED)
    assert detect(frameset.frame(Modality.FLUORESCENCE), 0.25, UNCAPPED) is not None  # no budget


def _box(y0: int, y1: int, x0: int, x1: int) -> Region:
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return Region(ys.ravel().astype(float), xs.ravel().astype(float), np.ones(ys.size))


def test_cut_by_border_asks_how_much_of_the_width_lies_on_the_border() -> None:
    shape = (40, 60)
    wide = _box(33, 40, 10, 23)  # 13 wide, on the bottom row all along: cut near its widest part
    assert cut_by_border(wide, np.ones(wide.ys.size, bool), shape, 3, 0.6)
    tip = wide.ys < 39
    tip |= (wide.xs >= 14) & (wide.xs < 19)  # only 5 of its 13 columns reach the bottom row
    assert not cut_by_border(wide, tip, shape, 3, 0.6)
    assert cut_by_border(wide, tip, shape, 3, 0.3)
    assert not cut_by_border(wide, tip, shape, 6, 0.3)  # a stretch shorter than min_chord
    # top, left, right
    for region in (_box(0, 6, 20, 27), _box(10, 17, 0, 6), _box(10, 17, 54, 60)):
        assert cut_by_border(region, np.ones(region.ys.size, bool), shape, 3, 0.6)
    inside = _box(10, 20, 10, 20)
    assert not cut_by_border(inside, np.ones(inside.ys.size, bool), shape, 1, 0.01)
    assert not cut_by_border(wide, np.zeros(wide.ys.size, bool), shape, 1, 0.01)

"""Image checks of one field of view, made once where the field is segmented: blank or saturated.

A field whose frames hold no image (the light did not fire, the camera sent a black or constant
frame) or are over-exposed gives no trustworthy cells: it would silently count zero cells, or cells
cut from clipped crops. Such a field fails with a reason that says which frame and by how much, so
the store records it per field, the live summary counts it (`SampleSummary.fields_blank`,
`fields_saturated`) and the report flags it; the sample is never `complete` with it among its
counted fields. Rules, on each frame's significant range `full` (``2**bit_depth - 1``, or the integer
type's maximum):

- blank: the spread between the 0.1st and 99.9th percentile is at most `BLANK_SPREAD` of `full`
  (no structure at all), or, for a bright-field frame, the 99.9th percentile is at most
  `DARK_BRIGHT_FIELD` of `full` (transmitted light is never that dark).
- saturated: more than `MAX_SATURATED` of the frame's pixels are at `full` or above (checked first:
  an all-white frame is saturated, not blank).

Statistics are measured on an even grid of at most `GRID_PIXELS` pixels per frame (about 3 ms for
four 2048 x 2048 frames; benchmarks/field_quality.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from leukoscope.errors import FieldQualityError, OverBudget, PipelineError, TooManyRegions
from leukoscope.pipeline.budget import OVER_BUDGET
from leukoscope.types import CellCrop, FrameSet, Modality

BLANK_SPREAD = 0.002
"""Percentile spread (share of full scale) at or under which a frame holds no image."""
DARK_BRIGHT_FIELD = 0.05
"""99.9th percentile (share of full scale) at or under which a bright-field frame is dark."""
MAX_SATURATED = 0.01
"""Largest share of a frame's pixels that may be at full scale."""
GRID_PIXELS = 65_536
"""Most pixels a frame's statistics are measured on (an even sub-grid of the frame)."""

BLANK = "blank field"
"""How a blank field's failure reason begins (the store, counts and report recognise it)."""
SATURATED = "saturated field"
"""How a saturated field's failure reason begins."""


@dataclass(frozen=True)
class FrameStats:
    """Image statistics of one frame, as shares of its full scale (all in [0, 1])."""

    modality: Modality
    full_scale: float
    low: float  # 0.1st percentile
    high: float  # 99.9th percentile
    saturated: float  # share of pixels at full scale or above

    def __post_init__(self) -> None:
        for name in ("low", "high", "saturated"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise PipelineError(f"frame statistic {name} must lie in [0, 1], got {value}")
        if not (math.isfinite(self.full_scale) and self.full_scale > 0):
            raise PipelineError(f"full scale must be a positive number, got {self.full_scale}")


def full_scale(dtype: np.dtype, bit_depth: int) -> float:
    """The largest value a camera sample can take: `bit_depth` bits, or the integer type's range."""
    if not np.issubdtype(dtype, np.integer):
        raise PipelineError(f"frames must be integer camera samples, got {dtype}")
    if not 0 <= bit_depth <= np.iinfo(dtype).bits:
        raise PipelineError(f"bit depth {bit_depth} does not fit {dtype} samples")
    return float(2**bit_depth - 1) if bit_depth else float(np.iinfo(dtype).max)


def _grid(image: np.ndarray) -> np.ndarray:
    """An even sub-grid of `image` with at most GRID_PIXELS pixels (all channels kept)."""
    height, width = image.shape[:2]
    step = max(1, math.ceil(math.sqrt(height * width / GRID_PIXELS)))
    return image[::step, ::step]


def _percentiles(grid: np.ndarray) -> tuple[float, float]:
    """The 0.1st and 99.9th percentile of integer samples (a histogram for 8/16-bit, fast)."""
    if grid.dtype in (np.uint8, np.uint16):
        cumulative = np.cumsum(np.bincount(np.ascontiguousarray(grid).ravel()))
        total = cumulative[-1]
        low, high = np.searchsorted(cumulative, (0.001 * total, 0.999 * total))
        return float(low), float(high)
    low, high = np.percentile(grid, (0.1, 99.9))
    return float(low), float(high)


def frame_stats(image: np.ndarray, modality: Modality, bit_depth: int = 0) -> FrameStats:
    """The statistics of one frame (H x W or H x W x C integer samples)."""
    if image.ndim not in (2, 3) or image.size == 0:
        raise PipelineError(f"{modality.value} frame must be H x W (x C), got {image.shape}")
    full = full_scale(image.dtype, bit_depth)
    grid = _grid(image)
    low, high = _percentiles(grid)
    saturated = np.count_nonzero(grid >= full) / grid.size
    return FrameStats(
        modality=modality,
        full_scale=full,
        low=min(1.0, max(0.0, low / full)),
        high=min(1.0, max(0.0, high / full)),
        saturated=float(saturated),
    )


def measure(frameset: FrameSet) -> tuple[FrameStats, ...]:
    """The statistics of every integer frame of a field (camera samples), in modality order."""
    return tuple(
        frame_stats(frame, modality, frameset.bit_depth)
        for modality, frame in zip(frameset.modalities, frameset.frames, strict=True)
        if np.issubdtype(frame.dtype, np.integer)
    )


def problem(stats: FrameStats) -> str:
    """Why a frame cannot be used ("" when it can)."""
    name, full = stats.modality.value, stats.full_scale
    if stats.saturated > MAX_SATURATED:
        return (
            f"{SATURATED}: {100 * stats.saturated:.1f}% of the {name} pixels at full scale "
            f"({full:.0f}), more than {100 * MAX_SATURATED:g}%"
        )
    if stats.high - stats.low <= BLANK_SPREAD:
        return (
            f"{BLANK}: the {name} frame holds no image (0.1-99.9th percentile "
            f"{stats.low * full:.0f}-{stats.high * full:.0f} of {full:.0f})"
        )
    if stats.modality is not Modality.FLUORESCENCE and stats.high <= DARK_BRIGHT_FIELD:
        return (
            f"{BLANK}: the {name} frame is dark (99.9th percentile {stats.high * full:.0f} of "
            f"{full:.0f}): its light gave no image"
        )
    return ""


def check_field(frameset: FrameSet) -> tuple[FrameStats, ...]:
    """The field's statistics; FieldQualityError with the first blank or saturated frame's
    reason, naming any others."""
    stats = measure(frameset)
    bad = [(s.modality.value, problem(s)) for s in stats if problem(s)]
    if bad:
        others = ", ".join(name for name, _ in bad[1:])
        raise FieldQualityError(bad[0][1] + (f"; also the {others} frame(s)" if others else ""))
    return stats


def checked(
    segmenter: Callable[[FrameSet], list[CellCrop]],
) -> Callable[[FrameSet], list[CellCrop]]:
    """`segmenter` that first refuses a blank or saturated field (FieldQualityError)."""

    def segment_checked(frameset: FrameSet) -> list[CellCrop]:
        check_field(frameset)
        return segmenter(frameset)

    return segment_checked


def failure_reason(exc: BaseException) -> str:
    """A segment worker's reason for a failed field: the check's own words for a blank,
    saturated or too busy field (each begins with its kind, so it is recognised), `over_budget:
    ...` past its time budget, the exception's type and message otherwise."""
    if isinstance(exc, OverBudget):
        return f"{OVER_BUDGET}: {exc}"
    if isinstance(exc, (FieldQualityError, TooManyRegions)):
        return str(exc)
    return f"segmentation failed: {type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class ImageProblems:
    """Which failed fields were blank and which saturated (field -> reason)."""

    blank: dict[int, str]
    saturated: dict[int, str]


def image_problems(failures: Mapping[int, str]) -> ImageProblems:
    """The blank and saturated fields among failed fields (field -> failure reason)."""
    blank = {f: r for f, r in failures.items() if _kind(r) == BLANK}
    saturated = {f: r for f, r in failures.items() if _kind(r) == SATURATED}
    return ImageProblems(blank, saturated)


def _kind(reason: str) -> str:
    """BLANK or SATURATED when `reason` is this module's (``blank field: ...``), else ""."""
    return next((k for k in (BLANK, SATURATED) if reason.startswith(k + ":")), "")

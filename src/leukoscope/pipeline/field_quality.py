"""Image checks of one field of view, made once where the field is segmented.

A field fails only when its cells cannot be analysed; everything else is at most a note. Every
limit is a setting of `[pipeline.quality]` (`config.QualityConfig`); shares are of a frame's full
scale `full` (``2**bit_depth - 1``, or the integer type's maximum) or of its pixels. A failure is a
`Problem` with a `QualityKind`; its reason, as the store keeps it, is ``<kind>: <detail>``.

Before segmentation, per frame:

- blank: the 0.1-99.9th percentile spread is at most `blank_spread` (no image at all);
- dark: a bright-field frame's 99.9th percentile is at most `dark_bright_field`;
- saturated_fluorescence: more than `max_saturated_fluorescence` of the fluorescence frame at full
  scale (its dark background is clipped too: nuclei cannot be told from it);
- saturated_background (note): more than `warn_saturated_background` of a bright-field frame at
  full scale. A white background at full scale is normal for bright field exposed for the cells
  (slide scanners export such images), so it never fails a field.

After segmentation, inside the white cells' nucleus boxes:

- saturated_nuclei: more than `max_saturated_nuclei` of their pixels at full scale in the
  fluorescence frame (the nuclear texture is clipped);
- saturated_cells: more than `max_white_nuclei` of their pixels at full scale in every bright-field
  frame at once (white in every colour: the cells have lost their stain);
- out_of_focus / focus_low (note): the focus measure (`focus.py`) below `focus_fail` / `focus_warn`.

Frame statistics are measured on an even grid of at most `GRID_PIXELS` pixels (about 3 ms for four
2048 x 2048 frames; benchmarks/field_quality.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from leukoscope.config import QualityConfig
from leukoscope.errors import FieldQualityError, OverBudget, PipelineError, TooManyRegions
from leukoscope.pipeline.budget import OVER_BUDGET
from leukoscope.pipeline.focus import focus_measure
from leukoscope.results.quality_kinds import QualityKind
from leukoscope.types import NUCLEAR_STAIN, CellCrop, FrameSet, Modality, is_fluorescence

GRID_PIXELS = 65_536
"""Most pixels a frame's statistics are measured on (an even sub-grid of the frame)."""


@dataclass(frozen=True)
class Problem:
    """One failed check: its kind and what was measured, in words."""

    kind: QualityKind
    detail: str

    @property
    def reason(self) -> str:
        """The failure reason as stored: ``<kind>: <detail>``."""
        return f"{self.kind.value}: {self.detail}"


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


@dataclass(frozen=True)
class FieldQuality:
    """What the checks measured on a field that passed: frame statistics, focus, notes."""

    stats: tuple[FrameStats, ...]
    focus: float | None = None
    notes: tuple[QualityKind, ...] = ()


class FieldCells(list[CellCrop]):
    """A field's cells with the field's quality (what `checked` segmenters return)."""

    quality: FieldQuality | None = None


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


def problem(stats: FrameStats, config: QualityConfig | None = None) -> Problem | None:
    """Why a frame cannot be used (None when it can)."""
    c = config or QualityConfig()
    name, full = stats.modality.value, stats.full_scale
    fluorescence = is_fluorescence(stats.modality)
    if fluorescence and stats.saturated > c.max_saturated_fluorescence:
        return Problem(
            QualityKind.SATURATED_FLUORESCENCE,
            f"{100 * stats.saturated:.1f}% of the fluorescence pixels at full scale ({full:.0f}), "
            f"more than {100 * c.max_saturated_fluorescence:g}%",
        )
    if stats.high - stats.low <= c.blank_spread:
        return Problem(
            QualityKind.BLANK,
            f"the {name} frame holds no image (0.1-99.9th percentile "
            f"{stats.low * full:.0f}-{stats.high * full:.0f} of {full:.0f})",
        )
    if not fluorescence and stats.high <= c.dark_bright_field:
        return Problem(
            QualityKind.DARK,
            f"the {name} frame is dark (99.9th percentile {stats.high * full:.0f} of "
            f"{full:.0f}): its light gave no image",
        )
    return None


def _fail(problems: list[Problem]) -> None:
    """Raise FieldQualityError with the first problem's reason, naming the other kinds."""
    if problems:
        others = sorted({p.kind.value for p in problems[1:]} - {problems[0].kind.value})
        also = f"; also {', '.join(others)}" if others else ""
        raise FieldQualityError(problems[0].reason + also, kind=problems[0].kind.value)


def check_field(frameset: FrameSet, config: QualityConfig | None = None) -> tuple[FrameStats, ...]:
    """The field's frame statistics; FieldQualityError for a blank, dark or saturated frame."""
    stats = measure(frameset)
    _fail([p for p in (problem(s, config) for s in stats) if p is not None])
    return stats


def _nucleus_mask(shape: tuple[int, ...], boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    for x, y, w, h in boxes:
        mask[max(0, y) : y + h, max(0, x) : x + w] = True
    return mask


def nucleus_problems(
    frameset: FrameSet, boxes: list[tuple[int, int, int, int]], config: QualityConfig | None = None
) -> list[Problem]:
    """Saturation inside the nucleus boxes: clipped fluorescence, nuclei white in every colour."""
    c = config or QualityConfig()
    if not boxes:
        return []
    mask = _nucleus_mask(frameset.frames[0].shape, boxes)
    pixels = max(1, int(np.count_nonzero(mask)))
    found: list[Problem] = []
    white = np.ones(int(np.count_nonzero(mask)), dtype=bool)
    bright_fields = 0
    for modality, frame in zip(frameset.modalities, frameset.frames, strict=True):
        if not np.issubdtype(frame.dtype, np.integer) or frame.ndim != 2:
            continue
        full = full_scale(frame.dtype, frameset.bit_depth)
        clipped = frame[mask] >= full
        if is_fluorescence(modality):
            share = float(np.count_nonzero(clipped)) / pixels
            if share > c.max_saturated_nuclei:
                found.append(
                    Problem(
                        QualityKind.SATURATED_NUCLEI,
                        f"{100 * share:.1f}% of the nucleus pixels of {len(boxes)} cell(s) at "
                        f"full scale ({full:.0f}) in the fluorescence frame, more than "
                        f"{100 * c.max_saturated_nuclei:g}%",
                    )
                )
        else:
            white &= clipped
            bright_fields += 1
    share = float(np.count_nonzero(white)) / pixels if bright_fields else 0.0
    if share > c.max_white_nuclei:
        found.append(
            Problem(
                QualityKind.SATURATED_CELLS,
                f"{100 * share:.1f}% of the nucleus pixels of {len(boxes)} cell(s) at full scale "
                f"in every bright-field frame, more than {100 * c.max_white_nuclei:g}%",
            )
        )
    return found


def assess(
    frameset: FrameSet,
    boxes: list[tuple[int, int, int, int]],
    stats: tuple[FrameStats, ...],
    config: QualityConfig | None = None,
) -> FieldQuality:
    """The checks made once the nucleus boxes are known; FieldQualityError when one fails."""
    c = config or QualityConfig()
    _fail(nucleus_problems(frameset, boxes, c))
    focus = None
    if NUCLEAR_STAIN in frameset.modalities:
        focus = focus_measure(frameset.frame(NUCLEAR_STAIN), frameset.pixel_size_um, boxes)
    if focus is not None and focus < c.focus_fail:
        _fail(
            [
                Problem(
                    QualityKind.OUT_OF_FOCUS,
                    f"focus measure {focus:.3f}, below {c.focus_fail:g} "
                    f"({f'{len(boxes)} nuclei' if boxes else 'whole frame'} measured)",
                )
            ]
        )
    notes: list[QualityKind] = []
    if any(
        not is_fluorescence(s.modality) and s.saturated > c.warn_saturated_background for s in stats
    ):
        notes.append(QualityKind.SATURATED_BACKGROUND)
    if focus is not None and focus < c.focus_warn:
        notes.append(QualityKind.FOCUS_LOW)
    return FieldQuality(stats, focus, tuple(notes))


def checked(
    segmenter: Callable[[FrameSet], list[CellCrop]], config: QualityConfig | None = None
) -> Callable[[FrameSet], list[CellCrop]]:
    """`segmenter` that refuses a field whose cells cannot be analysed (FieldQualityError) and
    returns the cells of the others as `FieldCells`, with the field's quality."""

    def segment_checked(frameset: FrameSet) -> list[CellCrop]:
        stats = check_field(frameset, config)
        cells = FieldCells(segmenter(frameset))
        cells.quality = assess(frameset, [c.bbox for c in cells], stats, config)
        return cells

    return segment_checked


def failure_reason(exc: BaseException) -> str:
    """A segment worker's reason for a failed field: ``<kind>: ...`` for the quality checks, a
    too busy field or one past its time budget; the exception's type and message otherwise."""
    if isinstance(exc, OverBudget):
        return f"{OVER_BUDGET}: {exc}"
    if isinstance(exc, (FieldQualityError, TooManyRegions)):
        return str(exc)
    return f"segmentation failed: {type(exc).__name__}: {exc}"


def field_quality_of(cells: list[CellCrop]) -> tuple[float | None, tuple[str, ...]]:
    """The focus measure and notes a checked segmenter's cells carry ((None, ()) otherwise)."""
    quality = getattr(cells, "quality", None)
    if not isinstance(quality, FieldQuality):
        return None, ()
    return quality.focus, tuple(k.value for k in quality.notes)

"""Find white cells in the fluorescence frame and cut four-modality crops around them.

Only white-cell nuclei fluoresce, so detection works on the fluorescence frame alone, on a copy
area-averaged to about 1 um per pixel (4x at the default 0.25 um/px), which keeps a 2048x2048 field
to about 12 ms on one core. All sizes are micrometres (`SegmentationParams`):

1. Background: grey opening (flat square, `background_um`) then a box blur of the same size,
   subtracted; it removes illumination fall-off and slow changes of the plasma glow, not nuclei.
2. Threshold: Gaussian smoothing (`smooth_um`); above the noise floor (median + `threshold_sigmas` x
   1.4826 x MAD) lie the faint plasma/cytoplasm glow and nuclei tens of times brighter, which Otsu's
   threshold on the log intensity separates. A closing (`close_um`) bridges gaps inside a nucleus.
3. Split touching cells: markers are the points of the corrected image blurred at nucleus scale
   (`marker_sigma_um`) that are the maximum within `marker_radius_um`; where one connected part of
   the mask holds several markers, a marker-controlled watershed (priority flood) over that landscape
   splits it between them. A field with more than `max_regions` candidate regions (noise, a
   bubble, a smear edge) fails here with TooManyRegions, before any region is split or merged.
4. Merge lobes: neighbouring regions are merged while their union still fits in a disc of
   `max_nucleus_um` radius around its centroid (the lobes of a neutrophil or an eosinophil do; two
   touching nuclei do not). The region work of steps 3-4 is in regions.py, n log n in the number
   of regions.
5. Filters: nucleus area in [`min_area_um2`, `max_area_um2`], extent radius at most `max_extent_um`.
   Cells cut by the frame border are dropped: those whose nucleus core lies along the border over
   `border_um` or more and over `border_share` of the core's width along that side (cut near its
   widest part), or whose centre is closer to it than `border_um` (less than the smallest
   white-cell radius, so such a cell is certainly cut). A cell cut only through its cytoplasm, or
   through the tip of its nucleus, is kept; its crop is completed by reflection
   (imaging.crop_centered).
6. Crops: the same square of `crop_um` (imaging.crop_side_px / crop_cell, as for the training set)
   is cut from every modality around the nucleus centroid and resized to the model input.

Each step is one function: steps 1-2 in nucleus_mask.py, 3-5 here; `candidate_regions` runs steps
1-3, `detect` steps 1-5 and `segment` all six. Every step looks at the unit's time budget between
its pieces (budget.py): a worker gives up a field past its budget, or when told to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np
from pydantic import ConfigDict, ValidationError
from scipy import ndimage

from leukoscope.config import SegmentationConfig, format_validation_error
from leukoscope.errors import ParameterError, PipelineError, TooManyRegions
from leukoscope.imaging import crop_cell, crop_side_px
from leukoscope.pipeline import budget
from leukoscope.pipeline.nucleus_mask import disc, nucleus_mask, remove_background, working_image
from leukoscope.pipeline.regions import (
    MergeStats,
    Region,
    cut_by_border,
    flood,
    merge_lobes,
    pieces,
    seed_count,
)
from leukoscope.types import NUCLEAR_STAIN, CellCrop, CellKey, FrameSet

TOO_MANY_REGIONS = "too_many_regions"
"""How the failure reason of a field with more candidate regions than `max_regions` begins."""


class SegmentationParams(SegmentationConfig):
    """Detection settings, in micrometres in the sample plane: the fields, defaults and bounds of
    `[pipeline.segmentation]` (SegmentationConfig), frozen, and a ParameterError when out of bounds."""

    model_config = ConfigDict(frozen=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ParameterError(format_validation_error(exc, "segmentation")) from None

    @classmethod
    def from_config(cls, config: SegmentationConfig | None) -> SegmentationParams:
        """The settings of `[pipeline.segmentation]` (None: the defaults)."""
        return cls(**config.model_dump()) if config is not None else cls()


@dataclass(frozen=True)
class Detection:
    """One white cell found in a fluorescence frame (full-resolution pixel coordinates)."""

    centre_yx: tuple[float, float]  # intensity-weighted nucleus centroid
    bbox: tuple[int, int, int, int]  # x, y, width, height of the nucleus, clipped to the frame
    area_px: float  # nucleus area, full-resolution pixels
    fluorescence_mean: float  # mean raw fluorescence over the nucleus
    extent_px: float  # largest distance of a nucleus pixel from the centroid


class Candidates(NamedTuple):
    """A field's candidate regions, before the lobe merge, on the working image."""

    small: np.ndarray  # the working image (area-averaged fluorescence)
    factor: int  # full-resolution pixels per working pixel, per side
    px_um: float  # working pixel size, um
    regions: list[Region]


def _split_touching(
    corrected: np.ndarray, mask: np.ndarray, params: SegmentationParams, px_um: float
) -> list[Region]:
    """Step 3: one region per marker of each connected part of `mask` (a watershed between
    several); TooManyRegions past `max_regions`, counted before any part is split."""
    landscape = cv2.GaussianBlur(corrected, (0, 0), params.marker_sigma_um / px_um)
    peaks = (landscape >= cv2.dilate(landscape, disc(params.marker_radius_um / px_um))) & (mask > 0)
    weights = np.clip(corrected, 0.0, None)
    n_parts, parts = cv2.connectedComponents(mask, connectivity=8)
    count = seed_count(parts, n_parts, peaks)
    if count > params.max_regions:
        raise TooManyRegions(
            f"{count:,} candidate regions, more than {params.max_regions:,}: "
            "noise, a bubble or a smear edge?"
        )
    budget.check("finding regions")
    regions = []
    for part, window in enumerate(ndimage.find_objects(parts), start=1):
        if window is None:
            continue
        if part % 256 == 0:
            budget.check("splitting regions")
        inside = parts[window] == part
        offset_y, offset_x = window[0].start, window[1].start
        seeds, n_seeds = ndimage.label(peaks[window] & inside, structure=np.ones((3, 3)))
        if n_seeds <= 1:  # one nucleus (or its lobes): the whole part
            ys, xs = np.nonzero(inside)
            found = [(ys, xs)]
        else:  # touching nuclei: marker-controlled watershed over the blurred intensity
            found = pieces(flood(landscape[window], seeds, inside), n_seeds)
        for ys, xs in found:
            if ys.size:
                ys, xs = ys + offset_y, xs + offset_x
                regions.append(
                    Region(ys.astype(np.float64), xs.astype(np.float64), weights[ys, xs])
                )
    return regions


def candidate_regions(
    fluorescence: np.ndarray, pixel_size_um: float, params: SegmentationParams | None = None
) -> Candidates:
    """Steps 1-3: the regions of a fluorescence frame before the lobe merge. TooManyRegions when
    there are more than `params.max_regions` (counted before they are split apart)."""
    params = params or SegmentationParams()
    small, factor, px_um = working_image(fluorescence, pixel_size_um, params)
    if min(small.shape) < 8:
        return Candidates(small, factor, px_um, [])
    corrected = remove_background(small, params, px_um)
    mask = nucleus_mask(corrected, params, px_um)
    if mask is None:
        return Candidates(small, factor, px_um, [])
    return Candidates(small, factor, px_um, _split_touching(corrected, mask, params, px_um))


def _merge(
    regions: list[Region], params: SegmentationParams, px_um: float, stats: MergeStats | None
) -> list[Region]:
    """Step 4: neighbouring regions merged while they fit a nucleus (or a cell, for small lobes)."""
    return merge_lobes(
        regions,
        params.max_nucleus_um / px_um,
        params.max_cell_um / px_um,
        params.max_lobe_um2 / (px_um * px_um),
        stats,
    )


def _detection(
    region: Region,
    found: Candidates,
    frame_shape: tuple[int, ...],
    pixel_size_um: float,
    params: SegmentationParams,
) -> Detection | None:
    """Step 5: the region as a Detection in full-resolution pixels, or None when it fails the
    filters: nucleus area, extent, or a cell cut by the frame border."""
    small, factor, px_um, _ = found
    height_full, width_full = frame_shape[:2]
    area_um2 = region.ys.size * (px_um * px_um)
    extent_um = region.extent * px_um
    if not params.min_area_um2 <= area_um2 <= params.max_area_um2:
        return None
    if extent_um > params.max_extent_um:
        return None
    cy, cx = region.centroid
    centre = ((cy + 0.5) * factor - 0.5, (cx + 0.5) * factor - 0.5)
    margin = params.border_um / pixel_size_um
    core = region.weights >= 0.5 * float(region.weights.max())  # the nucleus, not its blur
    touches = cut_by_border(
        region, core, small.shape, params.border_um / px_um, params.border_share
    )
    inside = (
        margin <= centre[0] <= height_full - 1 - margin
        and margin <= centre[1] <= width_full - 1 - margin
    )
    if touches or not inside:
        return None
    y0, x0 = int(region.ys.min()) * factor, int(region.xs.min()) * factor
    y1 = min((int(region.ys.max()) + 1) * factor, height_full)
    x1 = min((int(region.xs.max()) + 1) * factor, width_full)
    iy, ix = region.ys.astype(np.intp), region.xs.astype(np.intp)
    return Detection(
        centre_yx=centre,
        bbox=(x0, y0, x1 - x0, y1 - y0),
        area_px=area_um2 / (pixel_size_um * pixel_size_um),
        fluorescence_mean=float(small[iy, ix].mean()),
        extent_px=extent_um / pixel_size_um,
    )


def detect(
    fluorescence: np.ndarray,
    pixel_size_um: float,
    params: SegmentationParams | None = None,
    stats: MergeStats | None = None,
) -> list[Detection]:
    """White-cell nuclei in a fluorescence frame (steps 1-5), sorted top-to-bottom, left-to-right.

    TooManyRegions when the frame holds more than `max_regions` candidate regions; `stats` counts
    the lobe merge's work."""
    params = params or SegmentationParams()
    found = candidate_regions(fluorescence, pixel_size_um, params)  # steps 1-3
    regions = _merge(found.regions, params, found.px_um, stats)  # step 4
    budget.check("filtering regions")
    detections = []
    for region in regions:  # step 5
        detection = _detection(region, found, fluorescence.shape, pixel_size_um, params)
        if detection is not None:
            detections.append(detection)
    detections.sort(key=lambda d: (round(d.centre_yx[0]), round(d.centre_yx[1])))
    return detections


def _full_scale(crops: np.ndarray, shift: int) -> np.ndarray:
    return np.left_shift(crops, shift) if shift else crops


def detection_point(detection: Detection) -> tuple[float, float]:
    """The point a detection is matched to a label by: the centre of its nucleus box (y, x).

    The results store keeps each cell's box, so `dataset build` and `validate` match the same point.
    """
    x, y, width, height = detection.bbox
    return y + (height - 1) / 2, x + (width - 1) / 2


def crop_detections(
    frameset: FrameSet,
    detections: list[Detection],
    *,
    out_px: int | None = None,
    params: SegmentationParams | None = None,
) -> list[CellCrop]:
    """The four-modality crops of `detections` (cell index = position in the list)."""
    params = params or SegmentationParams()
    side = crop_side_px(frameset.pixel_size_um, params.crop_um)
    size = out_px or side
    if size < 1:
        raise ParameterError(f"out_px must be >= 1, got {out_px}")
    shift = frameset.full_scale_shift
    return [
        CellCrop(
            key=CellKey(frameset.sample_id, frameset.fov, index),
            bbox=d.bbox,
            crops=_full_scale(crop_cell(frameset.frames, d.centre_yx, side, size), shift),
            area_px=d.area_px,
            fluorescence_mean=d.fluorescence_mean,
        )
        for index, d in enumerate(detections)
    ]


def segment(
    frameset: FrameSet,
    *,
    out_px: int | None = None,
    params: SegmentationParams | None = None,
) -> list[CellCrop]:
    """Cells of a field of view with their four-modality crops (modalities in FrameSet order).

    `out_px` is the model's input side (None keeps the native crop side). Raises ParameterError or
    PipelineError (both LeukoscopeError) for frames it cannot use: TooManyRegions for a field with
    more than `max_regions` candidate regions, OverBudget past the unit's time budget (budget.py). Cell indices follow the
    detection order (top-to-bottom, left-to-right), so segmenting the same field again gives the same
    keys; that is what makes a re-dispatched field idempotent downstream. Crops of frames with
    fewer significant bits than their type (12-bit samples in uint16) are shifted to full scale, as
    the training set stores them, so the model sees the same intensities whatever the camera.
    """
    params = params or SegmentationParams()
    if NUCLEAR_STAIN not in frameset.modalities:
        raise ParameterError("segmentation needs the fluorescence frame")
    if out_px is not None and out_px < 0:
        raise ParameterError(f"out_px must be >= 1, got {out_px}")
    try:
        detections = detect(frameset.frame(NUCLEAR_STAIN), frameset.pixel_size_um, params)
        return crop_detections(frameset, detections, out_px=out_px, params=params)
    except TooManyRegions as exc:
        raise TooManyRegions(f"{TOO_MANY_REGIONS}: {exc}") from None
    except cv2.error as exc:  # an image OpenCV cannot process (odd dtype or layout)
        raise PipelineError(f"segmentation of field {frameset.fov} failed: {exc}") from None

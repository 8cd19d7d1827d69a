"""The quality gate on real stained cells (tests/data/bccd): every field passes, also with its
background stretched to full scale in one colour plane as slide scanners export it; blank, dark,
saturated-nuclei and out-of-focus versions of the same fields fail with their kind."""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from leukoscope.acquisition_files import storage
from leukoscope.errors import FieldQualityError
from leukoscope.pipeline.field_quality import FieldCells, checked
from leukoscope.pipeline.segmentation import segment
from leukoscope.results.quality_kinds import QualityKind
from leukoscope.types import FrameSet, Modality

DATA = Path(__file__).resolve().parents[1] / "data" / "bccd"
BRIGHT = (Modality.COLOR1, Modality.COLOR2, Modality.COLOR3)


@functools.cache
def labelled_fields() -> tuple[tuple[FrameSet, tuple[float, float]], ...]:
    with (DATA / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(
        (
            storage.read_field(DATA / r["sample"], int(r["fov"])),
            (float(r["y_px"]), float(r["x_px"])),
        )
        for r in rows
    )


def with_frames(frameset: FrameSet, frames: dict[Modality, np.ndarray]) -> FrameSet:
    new = tuple(frames.get(m, f) for m, f in zip(frameset.modalities, frameset.frames, strict=True))
    return dataclasses.replace(frameset, frames=new)


def white_background(frameset: FrameSet, modality: Modality, share: float) -> FrameSet:
    """`modality`'s plane stretched so that its brightest `share` of pixels is at full scale."""
    plane = frameset.frame(modality).astype(np.float64)
    gain = 255.0 / np.percentile(plane, 100 * (1 - share))
    return with_frames(frameset, {modality: np.clip(plane * gain, 0, 255).astype(np.uint8)})


def found(cells: list, centre: tuple[float, float]) -> bool:  # type: ignore[type-arg]
    def box_centre(bbox: tuple[int, int, int, int]) -> tuple[float, float]:
        return bbox[1] + bbox[3] / 2, bbox[0] + bbox[2] / 2

    return any(math.dist(box_centre(c.bbox), centre) * 0.25 <= 6.0 for c in cells)


GATE = checked(functools.partial(segment, out_px=32))


@pytest.mark.parametrize("modality", [None, *BRIGHT])
def test_real_fields_pass_and_every_labelled_cell_is_found(modality: Modality | None) -> None:
    hits = 0
    for frameset, centre in labelled_fields():
        for share in (0.14, 0.5) if modality else (0.0,):
            shown = white_background(frameset, modality, share) if modality else frameset
            cells = GATE(shown)
            assert isinstance(cells, FieldCells) and cells.quality is not None
            assert cells.quality.focus is not None
            assert QualityKind.FOCUS_LOW not in cells.quality.notes
            if modality:
                assert cells.quality.notes == (QualityKind.SATURATED_BACKGROUND,)
            hits += found(cells, centre)
    assert hits == len(labelled_fields()) * (2 if modality else 1)


def failure(frameset: FrameSet) -> FieldQualityError:
    with pytest.raises(FieldQualityError) as caught:
        GATE(frameset)
    return caught.value


def test_blank_dark_saturated_and_blurred_real_fields_fail_with_their_kind() -> None:
    frameset, _ = labelled_fields()[0]
    shape = frameset.frames[0].shape
    blank = with_frames(frameset, {Modality.FLUORESCENCE: np.full(shape, 7, np.uint8)})
    assert failure(blank).kind == "blank"
    dark = with_frames(frameset, {Modality.COLOR2: np.random.default_rng(0).integers(0, 6, shape)
                                  .astype(np.uint8)})  # fmt: skip
    assert failure(dark).kind == "dark"
    # over-exposed fluorescence: the nuclei clip, the dark background does not
    fluorescence = frameset.frame(Modality.FLUORESCENCE).astype(np.float64)
    hot = with_frames(
        frameset, {Modality.FLUORESCENCE: np.clip(fluorescence * 3, 0, 255).astype(np.uint8)}
    )
    assert failure(hot).kind == "saturated_nuclei"
    # every colour over-exposed: all but its darkest 2 % white, the nuclei among them
    washed = with_frames(
        frameset, {m: white_background(frameset, m, 0.98).frame(m) for m in BRIGHT}
    )
    assert failure(washed).kind == "saturated_cells"
    soft = cv2.GaussianBlur(frameset.frame(Modality.FLUORESCENCE), (0, 0), 3.0)
    blurred = failure(with_frames(frameset, {Modality.FLUORESCENCE: soft}))
    assert blurred.kind == "out_of_focus" and str(blurred).startswith("out_of_focus: focus measure")

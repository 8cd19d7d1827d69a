"""Segmentation on synthetic fluorescence fields drawn here: discs for nuclei, lobes, touching pairs."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from leukoscope.errors import ParameterError
from leukoscope.imaging import crop_cell, crop_side_px
from leukoscope.pipeline.segmentation import Detection, SegmentationParams, detect, segment
from leukoscope.types import MODALITIES, FrameSet

PIXEL_UM = 0.25
UM = 1 / PIXEL_UM  # pixels per micrometre


def field(
    nuclei: list[tuple[float, float, float]],
    shape: tuple[int, int] = (512, 512),
    seed: int = 0,
    brightness: float = 900.0,
) -> np.ndarray:
    """A uint16 fluorescence frame: plasma glow with dark red cells, nuclei (cy, cx, r px), noise."""
    rng = np.random.default_rng(seed)
    height, width = shape
    image = np.full(shape, 45.0, np.float32)
    for _ in range(height * width // 900):  # red cells absorb the plasma glow
        y, x = rng.uniform(0, height), rng.uniform(0, width)
        cv2.circle(image, (int(x), int(y)), int(3.8 * UM), 22.0, -1)
    yy, xx = np.mgrid[0:height, 0:width]
    image *= 1.0 - 0.3 * ((yy / height - 0.5) ** 2 + (xx / width - 0.5) ** 2)  # vignetting
    glow = np.zeros(shape, np.float32)
    for cy, cx, r in nuclei:
        cv2.circle(
            glow, (round(cx * 16), round(cy * 16)), round(r * 16), brightness, -1, cv2.LINE_AA, 4
        )
    image += cv2.GaussianBlur(glow, (0, 0), 1.5)
    noisy = rng.poisson(np.clip(image, 0, None)) + rng.normal(0, 3, shape)
    return np.clip(noisy, 0, 65535).astype(np.uint16)


def centres(found: list[Detection]) -> list[tuple[float, float]]:
    return [d.centre_yx for d in found]


def nearest(found: list[Detection], y: float, x: float) -> float:
    return min(math.dist(c, (y, x)) for c in centres(found))


def test_isolated_nuclei_are_found_at_their_centres() -> None:
    nuclei = [(100.0, 100.0, 14.0), (300.0, 120.0, 16.0), (200.0, 380.0, 12.0), (420, 400, 18.0)]
    found = detect(field(nuclei), PIXEL_UM)
    assert len(found) == 4
    for cy, cx, r in nuclei:
        assert nearest(found, cy, cx) < 2.0
        match = min(found, key=lambda d: math.dist(d.centre_yx, (cy, cx)))
        assert match.area_px == pytest.approx(math.pi * r * r, rel=0.6)
        assert match.fluorescence_mean > 300
        x, y, w, h = match.bbox
        assert x <= cx <= x + w and y <= cy <= y + h


def test_touching_nuclei_are_split() -> None:
    # two lymphocyte-like nuclei, radius 3.5 um, 1 um apart edge to edge
    r = 3.5 * UM
    nuclei = [(256.0, 256.0 - r - 0.5 * UM, r), (256.0, 256.0 + r + 0.5 * UM, r)]
    found = detect(field(nuclei, seed=1), PIXEL_UM)
    assert len(found) == 2
    for cy, cx, _ in nuclei:
        assert nearest(found, cy, cx) < 0.5 * r


def test_touching_nuclei_in_contact_are_split() -> None:
    r = 3.5 * UM
    nuclei = [(256.0, 256.0 - r, r), (256.0 + 0.2 * r, 256.0 + r, r)]
    assert len(detect(field(nuclei, seed=2), PIXEL_UM)) == 2


def test_lobes_of_one_nucleus_make_one_cell() -> None:
    # a neutrophil-like nucleus: three lobes of 1.8 um on an arc of 2.6 um radius, gaps between them
    lobes = [
        (256.0 + 2.6 * UM * math.sin(t), 256.0 + 2.6 * UM * math.cos(t), 1.8 * UM)
        for t in (-1.3, 0.0, 1.3)
    ]
    found = detect(field(lobes, seed=3), PIXEL_UM)
    assert len(found) == 1
    bilobed = [(256.0, 256.0 - 2.4 * UM, 1.9 * UM), (256.0, 256.0 + 2.4 * UM, 1.9 * UM)]
    assert len(detect(field(bilobed, seed=4), PIXEL_UM)) == 1


def test_empty_and_flat_fields_give_no_cells() -> None:
    assert detect(field([], seed=5), PIXEL_UM) == []
    assert detect(np.zeros((256, 256), np.uint16), PIXEL_UM) == []
    assert detect(np.full((256, 256), 1000, np.uint16), PIXEL_UM) == []
    assert detect(np.zeros((4, 4), np.uint8), PIXEL_UM) == []


def test_specks_and_border_cells_are_dropped() -> None:
    nuclei = [
        (256.0, 256.0, 0.8 * UM),  # debris: 2 um^2, below the minimum area
        (2.0, 200.0, 14.0),  # cut by the top border
        (300.0, 510.0, 14.0),  # cut by the right border
        (200.0, 6.0 * UM, 14.0),  # 6 um from the border: whole
    ]
    found = detect(field(nuclei, seed=6), PIXEL_UM)
    assert len(found) == 1
    assert nearest(found, 200.0, 6.0 * UM) < 2.0


def test_a_nucleus_touching_the_border_at_its_tip_is_kept() -> None:
    # 8 um nuclei reaching 0.25 um past the top and right borders: a sliver of each is outside the
    # frame, the cell is whole enough to count; the same nuclei 2 um past are cut and dropped.
    r = 4.0 * UM
    for past_um, expected in ((0.25, 2), (2.0, 0)):
        nuclei = [(r - past_um * UM, 200.0, r), (400.0, 511.0 - r + past_um * UM, r)]
        assert len(detect(field(nuclei, seed=13), PIXEL_UM)) == expected, past_um
    strict = SegmentationParams(border_share=0.01)  # any stretch over border_um: cut
    assert detect(field([(r - 0.25 * UM, 200.0, r)], seed=13), PIXEL_UM, strict) == []


def test_colour_fluorescence_frames_are_accepted() -> None:
    mono = field([(128.0, 128.0, 14.0)], shape=(256, 256), seed=7)
    rgb = np.repeat(mono[:, :, None], 3, axis=2)
    assert np.allclose(centres(detect(rgb, PIXEL_UM)), centres(detect(mono, PIXEL_UM)))


def frameset(nuclei: list[tuple[float, float, float]]) -> FrameSet:
    fluorescence = field(nuclei, seed=8)
    rng = np.random.default_rng(9)
    colours = tuple(rng.integers(0, 255, fluorescence.shape).astype(np.uint16) for _ in range(3))
    return FrameSet(
        sample_id="S-7",
        fov=4,
        modalities=MODALITIES,
        frames=(*colours, fluorescence),
        timestamps_s=(0.0,) * 4,
        exposures_us=(1.0,) * 4,
        lit=MODALITIES,
        shifts_px=((0.0, 0.0),) * 4,
        pixel_size_um=PIXEL_UM,
    )


def test_segment_cuts_four_modality_crops_at_a_fixed_physical_size() -> None:
    nuclei = [(120.0, 150.0, 14.0), (380.0, 300.0, 15.0)]
    fs = frameset(nuclei)
    cells = segment(fs)
    side = crop_side_px(PIXEL_UM)
    assert side == 96
    assert [c.key for c in cells] == [("S-7", 4, 0), ("S-7", 4, 1)]
    found = detect(fs.frames[3], PIXEL_UM)
    for cell, det in zip(cells, found, strict=True):
        assert cell.crops.shape == (4, side, side) and cell.crops.dtype == np.uint16
        expected = crop_cell(fs.frames, det.centre_yx, side, side)
        assert np.array_equal(cell.crops, expected)
        assert cell.bbox == det.bbox and cell.area_px == det.area_px
    # the fluorescence crop has its nucleus in the middle
    middle = cells[0].crops[3][side // 2 - 4 : side // 2 + 4, side // 2 - 4 : side // 2 + 4]
    assert middle.mean() > 5 * np.median(cells[0].crops[3])
    resized = segment(fs, out_px=64)
    assert resized[0].crops.shape == (4, 64, 64)
    for frame in fs.frames:  # frames decoded off the wire are read-only views
        frame.setflags(write=False)
    again = segment(fs)
    assert [c.key for c in again] == [c.key for c in cells]
    assert all(np.array_equal(a.crops, b.crops) for a, b in zip(again, cells, strict=True))


def test_segment_reports_zero_cells_and_rejects_bad_input() -> None:
    assert segment(frameset([])) == []
    fs = frameset([(100.0, 100.0, 14.0)])
    no_fluorescence = FrameSet(
        sample_id="S",
        fov=0,
        modalities=MODALITIES[:3],
        frames=fs.frames[:3],
        timestamps_s=(0.0,) * 3,
        exposures_us=(1.0,) * 3,
        lit=MODALITIES[:3],
        shifts_px=((0.0, 0.0),) * 3,
    )
    with pytest.raises(ParameterError, match="fluorescence"):
        segment(no_fluorescence)
    with pytest.raises(ParameterError, match="min_area_um2"):
        SegmentationParams(min_area_um2=-1.0)
    with pytest.raises(ParameterError, match="pixel_size_um"):
        detect(fs.frames[3], 0.0)
    with pytest.raises(ParameterError, match="H x W"):
        detect(np.zeros((2, 3, 4, 5), np.uint16), PIXEL_UM)


def test_physical_units_follow_the_pixel_size() -> None:
    # the same nuclei imaged at 0.5 um/px: half the pixels, same detections in micrometres
    nuclei = [(100.0, 100.0, 14.0), (300.0, 350.0, 16.0)]
    fine = field(nuclei, seed=10)
    coarse = cv2.resize(fine, (256, 256), interpolation=cv2.INTER_AREA)
    a = detect(fine, PIXEL_UM)
    b = detect(coarse, 2 * PIXEL_UM)
    assert len(a) == len(b) == 2
    for da, db in zip(a, b, strict=True):
        assert math.dist(da.centre_yx, (2 * db.centre_yx[0] + 0.5, 2 * db.centre_yx[1] + 0.5)) < 3


def test_twelve_bit_crops_are_scaled_to_full_range() -> None:
    """12-bit samples in uint16 come out as the training set stores them (top of the range)."""
    fs = frameset([(200.0, 200.0, 14.0)])
    twelve_bit = dataclasses.replace(
        fs, frames=tuple(np.minimum(f, 4095).astype(np.uint16) for f in fs.frames), bit_depth=12
    )
    assert twelve_bit.full_scale_shift == 4
    (cell,) = segment(twelve_bit)
    (raw,) = segment(dataclasses.replace(twelve_bit, bit_depth=0))
    assert np.array_equal(cell.crops, raw.crops.astype(np.uint16) << 4)
    assert cell.crops.dtype == np.uint16

"""Hard cases of the simulator: debris, smudge cells, focus and illumination drift."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from leukoscope.errors import ParameterError
from leukoscope.instrument.simulator.acquisition import GROUND_TRUTH_FILE, generate_acquisition
from leukoscope.instrument.simulator.drift import field_drift
from leukoscope.instrument.simulator.params import OpticsParams, SampleParams
from leukoscope.instrument.simulator.render import FieldRenderer
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.types import MODALITIES, Modality

FRAME = (512, 512)
STILL = OpticsParams(focus_drift=0.0, illumination_drift=0.0)


def _sample(seed: int = 3, **knobs: float) -> SimulatedSample:
    return SimulatedSample(seed, SampleParams(frame_shape=FRAME, **knobs))  # type: ignore[arg-type]


def test_debris_and_smudge_come_from_their_own_streams() -> None:
    busy = _sample(wbc_per_field=8, debris_per_1000um2=3.0, smudge_fraction=0.5)
    bare = _sample(wbc_per_field=8, debris_per_1000um2=0.0, smudge_fraction=0.0)
    for fov in range(4):
        field, plain = busy.field(fov), bare.field(fov)
        assert plain.debris == () and plain.smudge == ()
        assert [c.centre_yx for c in field.cells] == [c.centre_yx for c in plain.cells]
        assert field.platelets == plain.platelets
        assert (field.canvas, field.canvas_roll) == (plain.canvas, plain.canvas_roll)
    assert sum(len(busy.field(fov).debris) for fov in range(4)) > 20
    assert sum(len(busy.field(fov).smudge) for fov in range(4)) > 4


def test_debris_and_smudge_avoid_white_cells_and_smudges_each_other() -> None:
    sample = _sample(wbc_per_field=10, debris_per_1000um2=5.0, smudge_fraction=0.5)
    for fov in range(6):
        field = sample.field(fov)
        for cell in field.cells:
            for debris in field.debris:
                gap = math.dist(debris.centre_yx, cell.centre_yx)
                assert gap >= cell.shape.extent_px + debris.radius_px
            for smudge in field.smudge:
                gap = math.dist(smudge.centre_yx, cell.centre_yx)
                assert gap > cell.shape.extent_px + smudge.radius_px
        for a in field.smudge:
            for b in field.smudge[a.index + 1 :]:
                assert math.dist(a.centre_yx, b.centre_yx) > a.radius_px + b.radius_px


def test_counts_scale_with_density_and_sizes_are_as_documented() -> None:
    px_per_um = 1 / 0.25
    area_um2 = FRAME[0] * FRAME[1] / px_per_um**2
    low = _sample(wbc_per_field=0, debris_per_1000um2=2.0)
    high = _sample(wbc_per_field=0, debris_per_1000um2=8.0)
    n_low = sum(len(low.field(f).debris) for f in range(10))
    n_high = sum(len(high.field(f).debris) for f in range(10))
    assert n_low == pytest.approx(10 * 2.0 * area_um2 / 1000, rel=0.25)
    assert 3.0 < n_high / n_low < 5.3
    for d in high.field(0).debris:
        assert 0.5 <= d.radius_px / px_per_um <= 2.0  # 1-4 um across
        assert 2 <= len(d.blobs) <= 4
    # smudge cells: a share of the white cells, 10-20 um across
    few = _sample(wbc_per_field=20, smudge_fraction=0.05)
    many = _sample(wbc_per_field=20, smudge_fraction=0.25)
    n_few = sum(len(few.field(f).smudge) for f in range(30))
    n_many = sum(len(many.field(f).smudge) for f in range(30))
    assert n_few == pytest.approx(30, abs=17) and n_many > 3 * n_few
    for s in many.field(0).smudge:
        assert 5.0 <= s.radius_px / px_per_um <= 10.0
        assert 0.15 <= s.strength <= 0.4


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: SampleParams(debris_per_1000um2=-0.1), "debris_per_1000um2"),
        (lambda: SampleParams(debris_per_1000um2=21.0), "debris_per_1000um2"),
        (lambda: SampleParams(smudge_fraction=0.6), "smudge_fraction"),
        (lambda: OpticsParams(focus_drift=-0.1), "focus_drift"),
        (lambda: OpticsParams(illumination_drift=0.5), "illumination_drift"),
    ],
)
def test_hard_case_knobs_are_bounded(make: object, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        make()  # type: ignore[operator]


def test_drift_is_per_field_deterministic_and_zero_disables() -> None:
    a, b = field_drift(4, 7, 0.15, 0.03), field_drift(4, 7, 0.15, 0.03)
    assert a == b
    drifts = [field_drift(4, fov, 0.15, 0.03) for fov in range(40)]
    defocus = np.array([d.defocus for d in drifts])
    gains = np.array([[d.gain[m] for m in MODALITIES] for d in drifts])
    assert defocus.min() >= 1.0 and 1.05 < defocus.mean() < 1.2 and len(set(defocus)) == 40
    assert 0.015 < gains.std() < 0.045 and np.all(np.abs(gains - 1) <= 0.09 + 1e-9)
    off = field_drift(4, 7, 0.0, 0.0)
    assert off.defocus == 1.0 and set(off.gain.values()) == {1.0}


def test_illumination_drift_scales_a_field_and_focus_drift_softens_it() -> None:
    sample = _sample(wbc_per_field=6)
    still = FieldRenderer(sample, STILL).field(0)
    lit = FieldRenderer(sample, OpticsParams(focus_drift=0.0, illumination_drift=0.05))
    gains = lit.drift(0).gain
    for modality, image in lit.field(0).items():
        np.testing.assert_allclose(image, still[modality] * gains[modality], rtol=1e-5)
    soft = FieldRenderer(sample, OpticsParams(focus_drift=1.0, illumination_drift=0.0))
    assert soft.drift(0).defocus > 1.1
    for modality, image in soft.field(0).items():
        sharp = still[modality]
        assert abs(float(image.mean()) - float(sharp.mean())) < 0.01 * float(sharp.mean())
        assert np.abs(np.diff(image, axis=1)).mean() < 0.97 * np.abs(np.diff(sharp, axis=1)).mean()


def test_white_cells_look_the_same_beside_debris_and_smudges() -> None:
    busy = _sample(wbc_per_field=8, debris_per_1000um2=5.0, smudge_fraction=0.5)
    bare = _sample(wbc_per_field=8, debris_per_1000um2=0.0, smudge_fraction=0.0)
    with_them, without = FieldRenderer(busy, STILL).field(1), FieldRenderer(bare, STILL).field(1)
    field = busy.field(1)
    assert field.debris and field.cells
    yy, xx = np.mgrid[0 : FRAME[0], 0 : FRAME[1]]
    for cell in field.cells:
        inside = np.hypot(yy - cell.centre_yx[0], xx - cell.centre_yx[1]) < 0.5 * cell.radius_px
        for modality in (Modality.COLOR1, Modality.COLOR2):  # color1 = registered frame
            np.testing.assert_allclose(
                with_them[modality][inside], without[modality][inside], atol=2e-3
            )
    changed = np.abs(with_them[Modality.COLOR2] - without[Modality.COLOR2]) > 0.05
    assert changed.sum() > 50  # the debris are in the picture


def test_debris_absorb_without_fluorescing_and_smudges_glow_faintly() -> None:
    sample = _sample(wbc_per_field=4, debris_per_1000um2=3.0, smudge_fraction=0.5)
    bare = _sample(wbc_per_field=4, debris_per_1000um2=0.0, smudge_fraction=0.0)
    for fov in range(3):
        field = sample.field(fov)
        image = FieldRenderer(sample, STILL).field(fov)
        plain = FieldRenderer(bare, STILL).field(fov)
        cell_peak = max(
            (float(image[Modality.FLUORESCENCE][_disc(c.centre_yx, 8, (2.6, -3.4))].max())
             for c in field.cells),
            default=1.0,
        )  # fmt: skip
        for smudge in field.smudge:
            glow = float(
                image[Modality.FLUORESCENCE][_disc(smudge.centre_yx, 20, (2.6, -3.4))].max()
            )
            assert 0.08 < glow < 0.6 * cell_peak
        for debris in field.debris:
            where = _disc(debris.centre_yx, 2, (0.0, 0.0))
            if any(
                math.dist(debris.centre_yx, s.centre_yx) < s.radius_px + 8 for s in field.smudge
            ):
                continue
            fl = _disc(debris.centre_yx, 2, (2.6, -3.4))
            assert image[Modality.COLOR2][where].mean() < plain[Modality.COLOR2][where].mean()
            assert (
                image[Modality.FLUORESCENCE][fl].max()
                <= plain[Modality.FLUORESCENCE][fl].max() + 0.02
            )


def _disc(
    centre: tuple[float, float], radius: float, offset: tuple[float, float]
) -> tuple[slice, slice]:
    y, x = round(centre[0] + offset[0]), round(centre[1] + offset[1])
    r = math.ceil(radius)
    return slice(max(y - r, 0), min(y + r + 1, FRAME[0])), slice(
        max(x - r, 0), min(x + r + 1, FRAME[1])
    )


def test_acquisition_lists_hard_cases_and_is_byte_identical(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        generate_acquisition(out, "s1", 3, seed=9, frame_shape=(384, 384), cells_per_field=30)
        runs.append(out)
    files_a = sorted(p.relative_to(runs[0]) for p in runs[0].rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(runs[1]) for p in runs[1].rglob("*") if p.is_file())
    assert files_a == files_b and files_a
    for rel in files_a:
        assert (runs[0] / rel).read_bytes() == (runs[1] / rel).read_bytes(), rel
    truth = json.loads((runs[0] / GROUND_TRUTH_FILE).read_text())
    assert truth["debris_per_1000um2"] == 0.15 and truth["smudge_fraction"] == 0.02
    assert [d["field"] for d in truth["drift"]] == [0, 1, 2]
    assert all(d["defocus"] >= 1.0 and set(d["gain"]) == {m.value for m in MODALITIES}
               for d in truth["drift"])  # fmt: skip
    assert isinstance(truth["debris"], list) and isinstance(truth["smudge"], list)
    for record in truth["debris"] + truth["smudge"]:
        assert record["white_cell"] is False and 0 <= record["field"] < 3

"""Look-alike white cells: cells drawn partway toward another class's look."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from leukoscope.errors import ParameterError
from leukoscope.instrument.simulator.dataset import generate_dataset
from leukoscope.instrument.simulator.lookalike import LOOKALIKE_OF, blend, maybe_lookalike
from leukoscope.instrument.simulator.morphology import sample_shape
from leukoscope.instrument.simulator.params import SampleParams
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.types import CELL_CLASSES, CellClass

PX_UM = 0.25


def _pair(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    return sample_shape(CellClass.NEU, rng, PX_UM), sample_shape(CellClass.LYM, rng, PX_UM), rng


def test_blend_keeps_the_class_and_mixes_the_look() -> None:
    own, other, rng = _pair(1)
    half = blend(own, other, 0.5, rng)
    assert half.cell_class is CellClass.NEU and half.lookalike is CellClass.LYM
    assert half.radius_px == pytest.approx((own.radius_px + other.radius_px) / 2)
    assert half.cytoplasm_rna == pytest.approx((own.cytoplasm_rna + other.cytoplasm_rna) / 2)
    assert half.nucleus_density == pytest.approx((own.nucleus_density + other.nucleus_density) / 2)
    # the nucleus and the granules are one cell's or the other's, rescaled to the blended size
    assert half.lobe_count in (own.lobe_count, other.lobe_count)
    assert half.granule_kind in (own.granule_kind, other.granule_kind)
    assert np.abs(half.granules[:, :2]).max(initial=0.0) <= half.radius_px


def test_blend_weight_zero_and_one_are_the_two_cells() -> None:
    own, other, _ = _pair(2)
    same = blend(own, other, 0.0, np.random.default_rng(0))
    assert same.radius_px == own.radius_px and same.lobes == own.lobes
    assert same.granule_kind == own.granule_kind and same.cytoplasm_pink == own.cytoplasm_pink
    full = blend(own, other, 1.0, np.random.default_rng(0))
    assert full.radius_px == pytest.approx(other.radius_px) and full.lobes == other.lobes
    assert full.granule_kind == other.granule_kind and full.cell_class is CellClass.NEU


def test_share_of_lookalikes_follows_the_fraction() -> None:
    drawn = Counter()
    for seed in range(2000):
        rng = np.random.default_rng(seed)
        shape = maybe_lookalike(sample_shape(CellClass.LYM, rng, PX_UM), 0.25, rng, PX_UM)
        drawn[shape.lookalike] += 1
    assert drawn[CellClass.NEU] + drawn[None] == 2000
    assert 0.21 < drawn[CellClass.NEU] / 2000 < 0.29
    assert set(LOOKALIKE_OF) == set(CELL_CLASSES)
    assert all(LOOKALIKE_OF[c] is not c for c in CELL_CLASSES)


def test_lookalikes_change_only_their_own_cells_and_are_recorded() -> None:
    """Fraction 0 draws no look-alike; the look-alikes are listed in the ground truth."""
    plain = SimulatedSample(5, SampleParams(frame_shape=(768, 768), lookalike_fraction=0.0))
    mixed = SimulatedSample(5, SampleParams(frame_shape=(768, 768), lookalike_fraction=0.5))
    again = SimulatedSample(5, SampleParams(frame_shape=(768, 768), lookalike_fraction=0.5))
    cells = [c for fov in range(6) for c in mixed.field(fov).cells]
    assert all(c.shape.lookalike is None for fov in range(6) for c in plain.field(fov).cells)
    looks = [c for c in cells if c.shape.lookalike is not None]
    assert 0.3 * len(cells) < len(looks) < 0.7 * len(cells)
    for cell in looks:
        record = cell.to_json(0)
        assert record["class"] == cell.cell_class.value
        assert record["resembles"] == LOOKALIKE_OF[cell.cell_class].value
        assert 0.0 <= record["resemblance"] <= 1.0
    assert all("resembles" not in c.to_json(0) for c in cells if c.shape.lookalike is None)
    for fov in range(6):  # same seed, same look-alikes
        assert [repr(c) for c in mixed.field(fov).cells] == [
            repr(c) for c in again.field(fov).cells
        ]


def test_fraction_is_bounded() -> None:
    with pytest.raises(ParameterError, match="lookalike_fraction"):
        SampleParams(lookalike_fraction=0.6)
    with pytest.raises(ParameterError, match="lookalike_fraction"):
        SampleParams(lookalike_fraction=-0.1)


def test_training_set_lists_its_lookalikes(tmp_path: Path) -> None:
    counts = generate_dataset(
        tmp_path, 40, seed=2, out_px=32, frame_shape=(512, 512), wbc_per_field=12,
        lookalike_fraction=0.5,
    )  # fmt: skip
    info = json.loads((tmp_path / "dataset.json").read_text("utf-8"))
    assert info["lookalike_fraction"] == 0.5 and sum(counts.values()) == 40
    looks = [r for r in info["records"] if "resembles" in r]
    assert 8 <= len(looks) <= 32
    for record in looks:  # filed under its own class, never under the class it resembles
        assert record["resembles"] == LOOKALIKE_OF[CellClass(record["class"])].value
        assert (tmp_path / "color1" / record["class"] / f"{record['id']}.png").is_file()

"""Nucleated cells outside the 5-part differential: immature granulocytes, erythroblasts, blasts and
reactive lymphocytes. Off by default (`SampleParams.atypical_fraction` 0); drawn from their own
random stream, recorded in the ground truth under their own class (IG, NRBC, BLAST, RL).

Sizes and looks follow haematology atlases (Bain, *Blood Cells*, 5th ed., ch. 3; thin film, um):

- IG, three stages: promyelocyte 15-20 (round eccentric nucleus, fine chromatin, a nucleolus, many
  coarse azurophilic granules, basophilic cytoplasm); myelocyte 12-18 (round or oval eccentric nucleus,
  condensing chromatin, fine neutrophilic granules, pinker cytoplasm); metamyelocyte 10-15 (kidney or
  bean nucleus, neutrophilic granules).
- NRBC (orthochromatic to polychromatic erythroblast): 8-11, a small dense round nucleus, haemoglobinised
  pink cytoplasm, no granules and almost no RNA (so in fluorescence a bare round nucleus).
- BLAST: 12-18, nucleus filling most of the cell, fine open chromatin, one to three nucleoli, scant
  basophilic cytoplasm, no or few granules.
- RL (reactive lymphocyte): 12-20, abundant deeply basophilic cytoplasm with a scalloped outline, an
  irregular nucleus with looser chromatin.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from leukoscope.instrument.simulator.morphology import _defocus, _granules, _in_disc, _outline
from leukoscope.instrument.simulator.truth import Lobe, WhiteCellShape
from leukoscope.types import EXTRA_CLASSES, CellClass

Rng = np.random.Generator

IG_STAGES: tuple[tuple[str, float], ...] = (
    ("promyelocyte", 0.2),
    ("myelocyte", 0.4),
    ("metamyelocyte", 0.4),
)
"""Immature-granulocyte stages and their shares among IG drawn."""


def sample_atypical(cell_class: CellClass, rng: Rng, pixel_size_um: float) -> WhiteCellShape:
    """Draw one cell of an extra class (IG, NRBC, BLAST, RL); lengths in px for `pixel_size_um`."""
    return _BUILDERS[cell_class](rng, 1.0 / pixel_size_um)


def _round_nucleus(rng: Rng, radius: float, n_c: float, eccentric: float) -> tuple[Lobe, float]:
    nr = radius * n_c
    offset = _in_disc(rng, 1, max(radius - nr, 0.0))[0] * eccentric
    lobe = Lobe(offset[0], offset[1], nr * rng.uniform(0.85, 1.0), nr, rng.uniform(0, math.pi))
    return lobe, nr


def _nucleoli(rng: Rng, lobe: Lobe, count: int, px: float) -> np.ndarray:
    pos = _in_disc(rng, count, 0.5 * min(lobe.rx, lobe.ry)) + np.array([lobe.dy, lobe.dx])
    sizes = rng.uniform(0.6, 1.0, count) * px
    return np.concatenate([pos, sizes[:, None]], axis=1)


def _immature_granulocyte(rng: Rng, px: float) -> WhiteCellShape:
    names = [s for s, _ in IG_STAGES]
    stage = str(rng.choice(names, p=[p for _, p in IG_STAGES]))
    diameter = {"promyelocyte": (17.0, 1.5), "myelocyte": (14.5, 1.4), "metamyelocyte": (12.8, 1.1)}
    radius = rng.normal(*diameter[stage]) / 2 * px
    lobe, nr = _round_nucleus(rng, radius, rng.uniform(0.5, 0.66), 0.9)
    notch: tuple[float, float, float] | None = None
    nucleoli = np.zeros((0, 3))
    if stage == "metamyelocyte":  # kidney or bean: a deep indentation
        t = rng.uniform(0, 2 * math.pi)
        depth = rng.uniform(0.6, 0.95)
        notch = (lobe.dy + nr * depth * math.sin(t), lobe.dx + nr * depth * math.cos(t), nr * 0.5)
    elif stage == "promyelocyte":
        nucleoli = _nucleoli(rng, lobe, int(rng.integers(1, 3)), px)
    granules = {
        "promyelocyte": (int(rng.integers(60, 130)), 0.3 * px, "azur"),
        "myelocyte": (int(rng.integers(80, 160)), 0.2 * px, "neu"),
        "metamyelocyte": (int(rng.integers(80, 160)), 0.18 * px, "neu"),
    }[stage]
    aspect, angle, harm = _outline(rng, 0.03)
    return WhiteCellShape(
        cell_class=CellClass.IG,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=(lobe,),
        notch=notch,
        nucleus_density=rng.normal(0.85 if stage == "promyelocyte" else 0.95, 0.1),
        chromatin_contrast=rng.uniform(0.15, 0.3)
        if stage == "promyelocyte"
        else rng.uniform(0.3, 0.5),
        cytoplasm_pink=rng.normal(0.2 if stage == "promyelocyte" else 0.38, 0.08),
        cytoplasm_rna=rng.normal(0.55 if stage == "promyelocyte" else 0.3, 0.1),
        granules=_granules(rng, granules[0], radius * 0.92, granules[1], 0.3),
        granule_kind=granules[2],
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
        nucleoli=nucleoli,
        stage=stage,
    )


def _erythroblast(rng: Rng, px: float) -> WhiteCellShape:
    radius = rng.normal(9.5, 0.8) / 2 * px
    lobe, _ = _round_nucleus(rng, radius, rng.uniform(0.45, 0.6), 0.7)
    aspect, angle, harm = _outline(rng, 0.015)
    return WhiteCellShape(
        cell_class=CellClass.NRBC,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=(lobe,),
        notch=None,
        nucleus_density=rng.normal(1.45, 0.12),
        chromatin_contrast=rng.uniform(0.05, 0.2),  # pyknotic: dense and even
        cytoplasm_pink=rng.normal(0.75, 0.1),  # haemoglobin
        cytoplasm_rna=abs(rng.normal(0.05, 0.03)),
        granules=np.zeros((0, 3)),
        granule_kind="none",
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
        stage="erythroblast",
    )


def _blast(rng: Rng, px: float) -> WhiteCellShape:
    radius = rng.normal(15.0, 1.6) / 2 * px
    lobe, _ = _round_nucleus(rng, radius, rng.uniform(0.78, 0.9), 0.6)
    aspect, angle, harm = _outline(rng, 0.02)
    return WhiteCellShape(
        cell_class=CellClass.BLAST,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=(lobe,),
        notch=None,
        nucleus_density=rng.normal(0.75, 0.08),
        chromatin_contrast=rng.uniform(0.03, 0.12),  # fine, open chromatin
        cytoplasm_pink=rng.normal(0.1, 0.04),
        cytoplasm_rna=rng.normal(0.8, 0.15),
        granules=_granules(rng, int(rng.integers(0, 6)), radius * 0.9, 0.2 * px, 0.3),
        granule_kind="azur",
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
        nucleoli=_nucleoli(rng, lobe, int(rng.integers(1, 4)), px),
    )


def _reactive_lymphocyte(rng: Rng, px: float) -> WhiteCellShape:
    radius = rng.normal(16.0, 1.8) / 2 * px
    lobe, nr = _round_nucleus(rng, radius, rng.uniform(0.45, 0.6), 0.8)
    t = rng.uniform(0, 2 * math.pi)
    notch = (lobe.dy + nr * math.sin(t), lobe.dx + nr * math.cos(t), nr * rng.uniform(0.2, 0.4))
    aspect, angle, harm = _outline(rng, 0.07)  # scalloped around neighbouring red cells
    return WhiteCellShape(
        cell_class=CellClass.RL,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=(lobe,),
        notch=notch,
        nucleus_density=rng.normal(0.95, 0.1),
        chromatin_contrast=rng.uniform(0.3, 0.55),
        cytoplasm_pink=rng.normal(0.12, 0.05),
        cytoplasm_rna=rng.normal(1.1, 0.2),  # deeply basophilic
        granules=_granules(rng, int(rng.integers(0, 10)), radius * 0.9, 0.22 * px, 0.3),
        granule_kind="azur",
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
    )


_BUILDERS: dict[CellClass, Callable[[Rng, float], WhiteCellShape]] = {
    CellClass.IG: _immature_granulocyte,
    CellClass.NRBC: _erythroblast,
    CellClass.BLAST: _blast,
    CellClass.RL: _reactive_lymphocyte,
}
assert tuple(_BUILDERS) == EXTRA_CLASSES

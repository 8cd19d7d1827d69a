"""Class-typical white-cell morphology with natural variation and overlap between classes.

Sizes follow haematology atlases (diameters in a thin film, um): NEU 12-15, LYM 7-10 (large ones
10-14), MO 12-20, EOS 12-15, BAS 10-13. Every parameter is drawn from a distribution wide enough that
neighbouring classes overlap: band neutrophils have one curved lobe (like a folded monocyte nucleus),
large lymphocytes reach monocyte size, some eosinophils carry few granules and some basophils so few
that their nucleus shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from leukoscope.instrument.simulator.truth import Lobe, WhiteCellShape
from leukoscope.types import CellClass

Rng = np.random.Generator


def sample_shape(cell_class: CellClass, rng: Rng, pixel_size_um: float) -> WhiteCellShape:
    """Draw one white cell of `cell_class`; lengths in px for `pixel_size_um`."""
    return _BUILDERS[cell_class](rng, 1.0 / pixel_size_um)


def _outline(rng: Rng, irregular: float) -> tuple[float, float, tuple[tuple[float, float], ...]]:
    aspect = 1.0 + abs(rng.normal(0.0, 0.06))
    angle = rng.uniform(0.0, math.pi)
    harmonics = tuple(
        (abs(rng.normal(0.0, irregular)), rng.uniform(0, 2 * math.pi)) for _ in range(3)
    )
    return aspect, angle, harmonics


def _defocus(rng: Rng, px: float) -> float:
    """Extra blur of one cell, px: cells do not all lie in the focal plane."""
    return float(abs(rng.normal(0.0, 0.25 * px)))


def _in_disc(rng: Rng, count: int, radius: float) -> np.ndarray:
    r = radius * np.sqrt(rng.uniform(0.0, 1.0, count))
    t = rng.uniform(0.0, 2 * math.pi, count)
    return np.stack([r * np.sin(t), r * np.cos(t)], axis=1)


def _granules(rng: Rng, count: int, radius: float, size: float, spread: float) -> np.ndarray:
    pos = _in_disc(rng, count, radius)
    sizes = np.clip(rng.normal(size, size * spread, count), size * 0.4, size * 2.0)
    return np.concatenate([pos, sizes[:, None]], axis=1)


def _chain(
    rng: Rng, n: int, radius: float, lobe_r: float, curve: float, compact: bool = False
) -> tuple[Lobe, ...]:
    """`n` lobes strung along an arc (segmented nucleus); n == 1 gives a curved band.

    `compact` packs the lobes close together (seen end-on, they merge into one lumpy blob)."""
    start = rng.uniform(0, 2 * math.pi)
    arc_r = radius * (rng.uniform(0.18, 0.3) if compact else rng.uniform(0.35, 0.5))
    if n == 1:  # band: a sausage bent along the arc, drawn as overlapping small ellipses
        span = curve * rng.uniform(2.0, 3.2)
        steps = 7
        lobes = []
        for i in range(steps):
            t = start + span * (i / (steps - 1) - 0.5)
            lobes.append(
                Lobe(arc_r * math.sin(t), arc_r * math.cos(t), lobe_r * 0.65, lobe_r * 0.65, t)
            )
        return tuple(lobes)
    span = curve * rng.uniform(0.8, 1.25) * min(n, 4) / 2.0
    lobes = []
    for i in range(n):
        t = start + span * (i / (n - 1) - 0.5) + rng.normal(0, 0.12)
        rr = arc_r * rng.uniform(0.85, 1.15)
        size = lobe_r * rng.uniform(0.8, 1.15)
        lobes.append(Lobe(rr * math.sin(t), rr * math.cos(t), size * 0.8, size, t + math.pi / 2))
    return tuple(lobes)


def _neutrophil(rng: Rng, px: float) -> WhiteCellShape:
    radius = rng.normal(13.0, 1.2) / 2 * px
    n_lobes = int(rng.choice([1, 2, 3, 4, 5], p=[0.12, 0.25, 0.38, 0.18, 0.07]))
    compact = n_lobes > 1 and rng.uniform() < 0.12
    # the chromatin is shared out between the lobes: more lobes, smaller ones (nucleus ~36 um^2)
    lobe_r = 2.2 * px * math.sqrt(3.0 / max(n_lobes, 2)) * rng.uniform(0.9, 1.15)
    lobes = _chain(rng, n_lobes, radius, lobe_r, 1.9, compact)
    aspect, angle, harm = _outline(rng, 0.025)
    return WhiteCellShape(
        cell_class=CellClass.NEU,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=lobes,
        notch=None,
        nucleus_density=rng.normal(1.0, 0.15),
        chromatin_contrast=rng.uniform(0.35, 0.6),
        cytoplasm_pink=rng.normal(0.42, 0.12),
        cytoplasm_rna=rng.normal(0.2, 0.08),
        granules=_granules(rng, int(rng.integers(80, 160)), radius * 0.92, 0.18 * px, 0.3),
        granule_kind="neu",
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
        lobe_count=n_lobes,
    )


def _lymphocyte(rng: Rng, px: float) -> WhiteCellShape:
    large = rng.uniform() < 0.15
    diameter = rng.normal(11.4, 1.2) if large else rng.normal(8.8, 1.0)
    radius = diameter / 2 * px
    n_c = rng.uniform(0.6, 0.74) if large else rng.uniform(0.7, 0.88)
    nr = radius * n_c
    offset = _in_disc(rng, 1, radius - nr)[0] * 0.8
    lobe = Lobe(offset[0], offset[1], nr * rng.uniform(0.9, 1.0), nr, rng.uniform(0, math.pi))
    notch: tuple[float, float, float] | None = None
    if rng.uniform() < 0.10:  # a cleft nucleus, like a small monocyte's
        t = rng.uniform(0, 2 * math.pi)
        notch = (offset[0] + nr * math.sin(t), offset[1] + nr * math.cos(t), nr * 0.35)
    aspect, angle, harm = _outline(rng, 0.02)
    azur = int(rng.integers(0, 12)) if large else 0
    return WhiteCellShape(
        cell_class=CellClass.LYM,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=(lobe,),
        notch=notch,
        nucleus_density=rng.normal(1.1, 0.15),
        chromatin_contrast=rng.uniform(0.55, 0.85),
        cytoplasm_pink=rng.normal(0.2, 0.08),
        cytoplasm_rna=rng.normal(0.6, 0.2),
        granules=_granules(rng, azur, radius * 0.9, 0.22 * px, 0.3),
        granule_kind="azur",
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
    )


def _monocyte(rng: Rng, px: float) -> WhiteCellShape:
    radius = rng.normal(16.5, 1.8) / 2 * px
    nr = radius * rng.uniform(0.65, 0.8)
    off = _in_disc(rng, 1, radius * 0.15)[0]
    ang = rng.uniform(0, 2 * math.pi)
    lobes = (Lobe(off[0], off[1], nr * rng.uniform(0.72, 0.92), nr, ang),)
    folded = rng.uniform()
    notch: tuple[float, float, float] | None = None
    if folded < 0.75:  # kidney / horseshoe: a bite out of one side of the nucleus
        depth = rng.uniform(0.55, 0.95)
        notch = (
            off[0] + nr * depth * math.cos(ang),
            off[1] + nr * depth * math.sin(ang),
            nr * rng.uniform(0.45, 0.7),
        )
    aspect, angle, harm = _outline(rng, 0.045)
    vac = _granules(rng, int(rng.integers(0, 7)), radius * 0.85, 0.45 * px, 0.4)
    return WhiteCellShape(
        cell_class=CellClass.MO,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=lobes,
        notch=notch,
        nucleus_density=rng.normal(0.8, 0.1),
        chromatin_contrast=rng.uniform(0.15, 0.4),
        cytoplasm_pink=rng.normal(0.18, 0.05),
        cytoplasm_rna=rng.normal(0.45, 0.15),
        granules=_granules(rng, int(rng.integers(20, 60)), radius * 0.9, 0.15 * px, 0.3),
        granule_kind="azur",
        vacuoles=vac,
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
    )


def _eosinophil(rng: Rng, px: float) -> WhiteCellShape:
    radius = rng.normal(13.0, 1.0) / 2 * px
    n_lobes = int(rng.choice([2, 3], p=[0.85, 0.15]))
    lobes = _chain(rng, n_lobes, radius, 2.7 * px * rng.uniform(0.9, 1.15), 1.5)
    few = rng.uniform() < 0.15
    count = int(rng.integers(90, 200) * (rng.uniform(0.25, 0.5) if few else 1.0))
    aspect, angle, harm = _outline(rng, 0.025)
    return WhiteCellShape(
        cell_class=CellClass.EOS,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=lobes,
        notch=None,
        nucleus_density=rng.normal(0.95, 0.12),
        chromatin_contrast=rng.uniform(0.35, 0.6),
        cytoplasm_pink=rng.normal(0.45, 0.1),
        cytoplasm_rna=rng.normal(0.1, 0.04),
        granules=_granules(rng, count, radius * 0.9, 0.42 * px, 0.2),
        granule_kind="eos",
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
        lobe_count=n_lobes,
    )


def _basophil(rng: Rng, px: float) -> WhiteCellShape:
    radius = rng.normal(11.4, 1.0) / 2 * px
    n_lobes = int(rng.choice([1, 2, 3], p=[0.3, 0.5, 0.2]))
    lobes = _chain(rng, n_lobes, radius, 2.0 * px * rng.uniform(0.9, 1.15), 1.6)
    sparse = rng.uniform() < 0.25
    count = int(rng.integers(35, 80) * (rng.uniform(0.2, 0.45) if sparse else 1.0))
    aspect, angle, harm = _outline(rng, 0.03)
    return WhiteCellShape(
        cell_class=CellClass.BAS,
        radius_px=radius,
        aspect=aspect,
        angle=angle,
        harmonics=harm,
        lobes=lobes,
        notch=None,
        nucleus_density=rng.normal(0.9, 0.12),
        chromatin_contrast=rng.uniform(0.3, 0.55),
        cytoplasm_pink=rng.normal(0.15, 0.05),
        cytoplasm_rna=rng.normal(0.3, 0.08),
        granules=_granules(rng, count, radius * 0.8, 0.5 * px, 0.45),
        granule_kind="bas",
        stain=rng.normal(1.0, 0.1),
        defocus_px=_defocus(rng, px),
        lobe_count=n_lobes,
    )


_BUILDERS: dict[CellClass, Callable[[Rng, float], WhiteCellShape]] = {
    CellClass.NEU: _neutrophil,
    CellClass.LYM: _lymphocyte,
    CellClass.MO: _monocyte,
    CellClass.EOS: _eosinophil,
    CellClass.BAS: _basophil,
}

"""Look-alike white cells: a cell of one class drawn partway toward the look of another.

Real films hold cells that no light places at a glance: neutrophils degenerating in stored EDTA blood
(the nucleus condensed into round pyknotic balls, passing for lymphocytes), lymphocytes with cleaved
or lobulated nuclei, small monocytes against reactive lymphocytes, hypogranular eosinophils and
degranulated basophils. They are the errors every light shares (Bain, *Blood Cells*, 5th ed., ch. 3;
Gulati et al., Arch Pathol Lab Med 2002;126:336-342; Am J Clin Pathol 1999;112:687-695: after a day
at room temperature degenerating neutrophils are counted as lymphocytes, by hand as by analyser).

The cell keeps its class (the ground truth); its look is mixed with a cell of the look-alike class
drawn from the same atlas: size and stain blended by a weight in [0, 1], nucleus and granules taken
whole from one or the other with that weight as the chance of the look-alike's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from leukoscope.instrument.simulator.morphology import sample_shape
from leukoscope.instrument.simulator.truth import Lobe, WhiteCellShape
from leukoscope.types import CellClass

LOOKALIKE_OF: dict[CellClass, CellClass] = {
    CellClass.NEU: CellClass.LYM,  # pyknotic (aged) neutrophil: one or two round dense nuclear balls
    CellClass.LYM: CellClass.NEU,  # aged or cleaved lymphocyte: a lobulated nucleus
    CellClass.MO: CellClass.LYM,  # small monocyte against a reactive lymphocyte
    CellClass.EOS: CellClass.NEU,  # hypogranular eosinophil
    CellClass.BAS: CellClass.NEU,  # degranulated basophil
}
"""The class each class is taken for when its cell is ambiguous."""


def maybe_lookalike(
    shape: WhiteCellShape, fraction: float, rng: np.random.Generator, pixel_size_um: float
) -> WhiteCellShape:
    """`shape` itself, or (with chance `fraction`) that cell moved partway toward its look-alike."""
    if rng.uniform() >= fraction:
        return shape
    other = sample_shape(LOOKALIKE_OF[shape.cell_class], rng, pixel_size_um)
    return blend(shape, other, float(rng.uniform(0.0, 1.0)), rng)


def blend(
    own: WhiteCellShape, other: WhiteCellShape, weight: float, rng: np.random.Generator
) -> WhiteCellShape:
    """`own`'s class with a look `weight` (0 = own, 1 = other's) of the way toward `other`'s."""

    def mix(a: float, b: float) -> float:
        return (1.0 - weight) * a + weight * b

    radius = mix(own.radius_px, other.radius_px)
    nucleus = other if rng.uniform() < weight else own
    granules = other if rng.uniform() < weight else own
    n = radius / nucleus.radius_px
    g = radius / granules.radius_px
    v = radius / own.radius_px
    notch = nucleus.notch
    return replace(
        own,
        radius_px=radius,
        lobes=tuple(Lobe(b.dy * n, b.dx * n, b.ry * n, b.rx * n, b.angle) for b in nucleus.lobes),
        notch=None if notch is None else (notch[0] * n, notch[1] * n, notch[2] * n),
        lobe_count=nucleus.lobe_count,
        nucleus_density=mix(own.nucleus_density, other.nucleus_density),
        chromatin_contrast=mix(own.chromatin_contrast, other.chromatin_contrast),
        cytoplasm_pink=mix(own.cytoplasm_pink, other.cytoplasm_pink),
        cytoplasm_rna=mix(own.cytoplasm_rna, other.cytoplasm_rna),
        granules=granules.granules * np.array([g, g, 1.0]),
        granule_kind=granules.granule_kind,
        vacuoles=own.vacuoles * np.array([v, v, 1.0]),
        lookalike=other.cell_class,
        lookalike_weight=weight,
    )

"""What each light source shows: absorbance (bright-field) or emission (fluorescence) per constituent.

Bright-field follows Beer-Lambert: transmission = exp(-sum(coefficient x density)). The coefficients
follow the colours of a Romanowsky-stained film (calibrated against the BCCD smears'
texture per light, docs/simulator.md "Realism against real smears"): every light shows the nucleus,
as a real film does, with a light-specific strength, and each light adds its own cues:

- color1 (blue, 450 nm): haemoglobin absorbs most; the orange eosinophil granules; nucleus faint.
- color2 (green, 530 nm): the purple nucleus absorbs most here (azure B-DNA), as do eosin-stained
  eosinophil granules and the dark basophil granules; the pink neutrophil cytoplasm.
- color3 (red, 630 nm): the nucleus and the RNA-rich (blue-grey) cytoplasm of lymphocytes and
  monocytes, dark basophil granules; red cells pale; the softest optics, so detail washes out.
- fluorescence: the nucleic-acid stain lights nuclei (shape clearest here), RNA-rich cytoplasm dimly,
  basophil granules (metachromatic) a little; eosinophil granules shade the cytoplasm; red cells dark.
"""

from __future__ import annotations

import numpy as np

from leukoscope.instrument.simulator.cellpatch import CellComponents
from leukoscope.types import Modality, is_fluorescence

# per modality: haemoglobin, nucleus, pink cytoplasm, RNA cytoplasm, vacuole, rim
_BRIGHT: dict[Modality, tuple[float, float, float, float, float, float]] = {
    Modality.COLOR1: (1.05, 0.15, 0.05, 0.04, -0.04, 0.10),
    Modality.COLOR2: (0.70, 0.62, 0.12, 0.08, -0.06, 0.08),
    Modality.COLOR3: (0.10, 0.38, 0.03, 0.20, -0.05, 0.16),
}
# per modality, per granule kind
_GRANULES: dict[Modality, dict[str, float]] = {
    Modality.COLOR1: {"neu": 0.04, "eos": 0.70, "bas": 0.45, "azur": 0.15, "none": 0.0},
    Modality.COLOR2: {"neu": 0.10, "eos": 0.75, "bas": 0.85, "azur": 0.30, "none": 0.0},
    Modality.COLOR3: {"neu": 0.03, "eos": 0.15, "bas": 0.75, "azur": 0.15, "none": 0.0},
    Modality.FLUORESCENCE: {"neu": 0.0, "eos": -0.25, "bas": 0.4, "azur": 0.15, "none": 0.0},
}
# fluorescence emission of nucleus, pink cytoplasm, RNA cytoplasm, vacuole
_EMISSION = (1.0, 0.08, 0.30, -0.08)
HB_FLUORESCENCE_ABSORBANCE = 1.6
"""Red cells absorb excitation and emission: the plasma background behind them is darkened."""


def hemoglobin_absorbance(modality: Modality) -> float:
    """Absorbance per unit red-cell thickness under `modality`."""
    if is_fluorescence(modality):
        return HB_FLUORESCENCE_ABSORBANCE
    return _BRIGHT[modality][0]


def cell_signal(components: CellComponents, modality: Modality) -> np.ndarray:
    """The cell's own signal on its patch: transmission (bright-field) or emission (fluorescence)."""
    c = components
    granule = _GRANULES[modality][c.granule_kind]
    pink = c.cytoplasm * np.float32(c.shape.cytoplasm_pink * c.shape.stain)
    rna = c.cytoplasm * np.float32(c.shape.cytoplasm_rna * c.shape.stain)
    if is_fluorescence(modality):
        e_nuc, e_pink, e_rna, e_vac = _EMISSION
        emission = e_nuc * c.nucleus + e_pink * pink + e_rna * rna + e_vac * c.vacuoles
        emission += np.float32(granule * c.shape.stain) * c.granules
        return np.asarray(np.clip(emission, 0.0, None).astype(np.float32))
    _, a_nuc, a_pink, a_rna, a_vac, a_rim = _BRIGHT[modality]
    density = a_nuc * c.nucleus + a_pink * pink + a_rna * rna + a_vac * c.vacuoles + a_rim * c.rim
    density += np.float32(granule * c.shape.stain) * c.granules
    return np.asarray(np.exp(-np.clip(density, 0.0, None)).astype(np.float32))


PLATELET_ABSORBANCE: dict[Modality, float] = {
    Modality.COLOR1: 0.12,
    Modality.COLOR2: 0.30,
    Modality.COLOR3: 0.18,
}
"""Absorbance of a platelet's stained granulomere per light (azurophilic purple: green most)."""
PLATELET_EMISSION = 0.10
"""Fluorescence of a platelet's RNA relative to a typical nucleus (1): visible, far below a cell."""


def platelet_signal(density: np.ndarray, modality: Modality) -> np.ndarray:
    """A platelet's transmission (bright-field) or emission (fluorescence) from its stain density."""
    if is_fluorescence(modality):
        return (PLATELET_EMISSION * density).astype(np.float32)
    return np.exp(-PLATELET_ABSORBANCE[modality] * density).astype(np.float32)

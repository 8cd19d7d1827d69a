"""What each light source shows: absorbance (bright-field) or emission (fluorescence) per constituent.

Bright-field follows Beer-Lambert: transmission = exp(-sum(coefficient x density)). The coefficients
spread the class-telling features over the modalities on purpose:

- color1 (blue): haemoglobin and the coarse orange eosinophil granules absorb most; nucleus faint.
- color2 (green): nucleus and the pink, finely granular neutrophil cytoplasm; basophil granules.
- color3 (red): RNA-rich (blue-grey) cytoplasm of lymphocytes and monocytes, dark basophil granules;
  softest optics, so nuclear lobes blur together.
- fluorescence: the nucleic-acid stain lights nuclei (shape clearest here), RNA-rich cytoplasm dimly,
  basophil granules (metachromatic) a little; eosinophil granules shade the cytoplasm; red cells dark.
"""

from __future__ import annotations

import numpy as np

from leukoscope.instrument.simulator.cellpatch import CellComponents
from leukoscope.types import Modality

# per modality: haemoglobin, nucleus, pink cytoplasm, RNA cytoplasm, vacuole, rim
_BRIGHT: dict[Modality, tuple[float, float, float, float, float, float]] = {
    Modality.COLOR1: (1.05, 0.08, 0.05, 0.03, -0.04, 0.10),
    Modality.COLOR2: (0.70, 0.14, 0.14, 0.05, -0.06, 0.08),
    Modality.COLOR3: (0.10, 0.10, 0.02, 0.09, -0.05, 0.16),
}
# per modality, per granule kind
_GRANULES: dict[Modality, dict[str, float]] = {
    Modality.COLOR1: {"neu": 0.04, "eos": 0.80, "bas": 0.30, "azur": 0.15, "none": 0.0},
    Modality.COLOR2: {"neu": 0.10, "eos": 0.25, "bas": 0.50, "azur": 0.25, "none": 0.0},
    Modality.COLOR3: {"neu": 0.02, "eos": 0.04, "bas": 0.75, "azur": 0.08, "none": 0.0},
    Modality.FLUORESCENCE: {"neu": 0.0, "eos": -0.25, "bas": 0.4, "azur": 0.15, "none": 0.0},
}
# fluorescence emission of nucleus, pink cytoplasm, RNA cytoplasm, vacuole
_EMISSION = (1.0, 0.03, 0.22, -0.08)
HB_FLUORESCENCE_ABSORBANCE = 1.6
"""Red cells absorb excitation and emission: the plasma background behind them is darkened."""


def hemoglobin_absorbance(modality: Modality) -> float:
    """Absorbance per unit red-cell thickness under `modality`."""
    if modality is Modality.FLUORESCENCE:
        return HB_FLUORESCENCE_ABSORBANCE
    return _BRIGHT[modality][0]


def cell_signal(components: CellComponents, modality: Modality) -> np.ndarray:
    """The cell's own signal on its patch: transmission (bright-field) or emission (fluorescence)."""
    c = components
    granule = _GRANULES[modality][c.granule_kind]
    pink = c.cytoplasm * np.float32(c.shape.cytoplasm_pink * c.shape.stain)
    rna = c.cytoplasm * np.float32(c.shape.cytoplasm_rna * c.shape.stain)
    if modality is Modality.FLUORESCENCE:
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
    if modality is Modality.FLUORESCENCE:
        return (PLATELET_EMISSION * density).astype(np.float32)
    return np.exp(-PLATELET_ABSORBANCE[modality] * density).astype(np.float32)

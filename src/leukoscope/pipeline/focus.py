"""How sharp a field is: a focus measure of the nuclear (fluorescence) channel.

The measure is a normalised variance of the Laplacian: the variance of the scale-normalised
Laplacian of Gaussian (``sigma**2 * LoG``) at 0.25 um, divided by the same at 0.5 um, over the
white cells' nucleus boxes widened by 2 um. Dividing by the coarser scale removes what the field
holds (how many nuclei, how bright, how large) and keeps how fast its edges fall: a point source
gives 4, a featureless blur 1/16; higher is sharper. The plain variance of the Laplacian (Pech-
Pacheco et al., ICPR 2000) grows with the number and brightness of the nuclei, so one threshold
could not serve every field. Where segmentation found no nucleus the whole frame is measured: an
empty field's noise is sharp and passes, a field too blurred for its nuclei to be found does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FINE_UM = 0.25
"""Scale of the fine Laplacian of Gaussian, um."""
COARSE_UM = 0.5
"""Scale of the coarse one, um."""
MARGIN_UM = 2.0
"""How far around each nucleus box the measure looks, um."""

Box = tuple[int, int, int, int]
"""x, y, width, height in frame pixels."""


def _log_energy(image: np.ndarray, sigma_px: float, mask: np.ndarray) -> float:
    smooth = cv2.GaussianBlur(image, (0, 0), sigma_px)
    laplacian = cv2.Laplacian(smooth, cv2.CV_32F, ksize=1)
    return float(laplacian[mask].var()) * sigma_px**4


def focus_measure(
    fluorescence: np.ndarray, pixel_size_um: float, boxes: Sequence[Box]
) -> float | None:
    """The focus measure of a field (higher is sharper) around `boxes` (none: the whole frame);
    None for a frame without any detail."""
    image = np.asarray(fluorescence, dtype=np.float32)
    height, width = image.shape[:2]
    mask = np.zeros((height, width), dtype=bool) if boxes else np.ones((height, width), bool)
    pad = int(round(MARGIN_UM / pixel_size_um))
    for x, y, w, h in boxes:
        mask[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad] = True
    if np.count_nonzero(mask) < 16:
        return None
    coarse = _log_energy(image, COARSE_UM / pixel_size_um, mask)
    if not coarse > 0.0:
        return None
    return round(_log_energy(image, FINE_UM / pixel_size_um, mask) / coarse, 5)

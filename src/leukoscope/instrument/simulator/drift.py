"""Focus and illumination drift from one field of view to the next.

On a real scan the focus is found again (or not quite) at every field and the lamps wander a little,
so fields differ in sharpness and brightness while the cells in them do not. Per field, from its own
random stream (`streams.Stream.DRIFT`) indexed by the field: a defocus factor 1 + |N(0, focus_drift)|
that multiplies every light's blur (autofocus finds the best plane or misses it; it never focuses
sharper than the calibrated optics), and a gain 1 + N(0, illumination_drift) per light (clipped to
3 sd), applied to the whole rendered field. `OpticsParams.focus_drift` 0.15 and `illumination_drift`
0.03 (+-3 % lamp drift) by default; 0 disables either. The values of each field are in
ground_truth.json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from leukoscope.instrument.simulator.streams import Stream
from leukoscope.types import MODALITIES, Modality


@dataclass(frozen=True)
class FieldDrift:
    """How one field is off: blur factor (>= 1) and illumination gain per light."""

    defocus: float
    gain: dict[Modality, float]

    def extra_sigma(self, sigma: float) -> float:
        """Blur to add to an image already blurred by `sigma` so that it is blurred by defocus x sigma."""
        return sigma * math.sqrt(max(self.defocus**2 - 1.0, 0.0))

    def apply(self, image: np.ndarray, modality: Modality, sigma: float) -> np.ndarray:
        """`image` (already blurred by `sigma`) made softer and brighter/dimmer, in place if possible."""
        extra = self.extra_sigma(sigma)
        if extra > 0.05:
            image = np.asarray(
                cv2.GaussianBlur(image, (0, 0), extra, borderType=cv2.BORDER_REFLECT)
            )
        gain = self.gain[modality]
        if gain != 1.0:
            image *= np.float32(gain)
        return image

    def to_json(self, fov: int) -> dict[str, object]:
        """The per-field record written to ground_truth.json."""
        return {
            "field": fov,
            "defocus": round(self.defocus, 4),
            "gain": {m.value: round(g, 4) for m, g in self.gain.items()},
        }


def field_drift(seed: int, fov: int, focus_drift: float, illumination_drift: float) -> FieldDrift:
    """The drift of field `fov` of the sample of `seed` (same answer on every call)."""
    rng = np.random.default_rng([seed, Stream.DRIFT, fov])
    defocus = 1.0 + abs(float(rng.normal(0.0, 1.0))) * focus_drift
    draws = np.clip(rng.normal(0.0, 1.0, len(MODALITIES)), -3.0, 3.0)
    gain = {m: 1.0 + float(d) * illumination_drift for m, d in zip(MODALITIES, draws, strict=True)}
    return FieldDrift(defocus, gain)

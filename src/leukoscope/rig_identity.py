"""Which rig set-up took a sample's images: the key a model validation is bound to.

Two acquisitions share a rig identity when their pixel size and their acquisition settings digest
(`acquisition.json` `settings_digest`: modalities, light channels and drive, exposures, gain, pixel
format) are the same. A validation passed on one identity says nothing about another.
"""

from __future__ import annotations

import hashlib

from leukoscope.errors import ParameterError


def rig_digest(pixel_size_um: float | None, settings_digest: str) -> str:
    """16 hex digits naming a rig set-up; ParameterError when either part is unknown."""
    if pixel_size_um is None or not pixel_size_um > 0 or not settings_digest:
        raise ParameterError(
            "the rig set-up is unknown (no pixel size or acquisition settings digest recorded)"
        )
    text = f"pixel_size_um={pixel_size_um:.4f}|settings={settings_digest}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

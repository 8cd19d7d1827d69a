"""Capture a simulated field of view as a FrameSet, without the camera and light-controller loop.

Used by the acquisition and dataset generators (and by tests that want frames quickly). Frames can be
registered with the known ground-truth offsets, as the rig's registration would, so cells sit at the
ground-truth centres in every modality.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from leukoscope.config import CameraConfig, LightsConfig
from leukoscope.instrument.simulator.optics import translate
from leukoscope.instrument.simulator.render import FieldRenderer, Radiance
from leukoscope.instrument.simulator.sensor import Sensor
from leukoscope.instrument.simulator.streams import Stream
from leukoscope.types import MODALITIES, FrameSet, Modality

FRAME_INTERVAL_S = 0.05
"""Simulated time between the four captures of a field (timestamps are synthetic, hence reproducible)."""


def _default_exposures() -> dict[Modality, float]:
    return dict(CameraConfig().exposure_us)


def _default_intensities() -> dict[Modality, float]:
    return {m: c.intensity_percent for m, c in LightsConfig().channels.items()}


@dataclass(frozen=True)
class CaptureSettings:
    """Exposure and light drive per modality, bit depth and gain (defaults: the rig config's)."""

    exposures_us: dict[Modality, float] = field(default_factory=_default_exposures)
    intensities_percent: dict[Modality, float] = field(default_factory=_default_intensities)
    bit_depth: int = 12
    gain_db: float = 0.0

    def digest(self) -> str:
        """Short stable hash of these settings (the saved acquisition's rig-settings digest)."""
        data = asdict(self)
        text = json.dumps({k: _plain(v) for k, v in data.items()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {getattr(k, "value", k): v for k, v in value.items()}
    return value


def shift_image(image: np.ndarray, shift_yx: tuple[float, float]) -> np.ndarray:
    """Move image content by `shift_yx` px (bilinear, border reflected), keeping dtype and shape."""
    if not shift_yx[0] and not shift_yx[1]:
        return np.asarray(image.copy())
    return translate(image, shift_yx, cv2.BORDER_REFLECT_101)


def registration_shift(offset_yx: tuple[float, float]) -> tuple[float, float]:
    """The shift that registers a modality displaced by `offset_yx` back onto color1."""
    return (0.0 - offset_yx[0] + 0.0, 0.0 - offset_yx[1] + 0.0)


def expose(
    sensor: Sensor,
    radiance: Radiance,
    settings: CaptureSettings,
    rng: np.random.Generator,
) -> dict[Modality, np.ndarray]:
    """One frame per modality of `radiance`, each lit alone, with fresh noise."""
    out = {}
    for modality, image in radiance.items():
        lit = {modality: settings.intensities_percent[modality]}
        sources = sensor.lit_sources(radiance, lit, settings.exposures_us[modality])
        out[modality] = sensor.read_out(
            sources,
            image.shape,
            settings.bit_depth,
            settings.gain_db,
            rng,
            MODALITIES.index(modality),
        )
    return out


def capture_frameset(
    renderer: FieldRenderer,
    sensor: Sensor,
    sample_id: str,
    fov: int,
    settings: CaptureSettings | None = None,
    *,
    register: bool = True,
) -> FrameSet:
    """The four frames of field `fov` (registered to color1 with the known offsets unless told not)."""
    settings = settings or CaptureSettings()
    rng = np.random.default_rng([renderer.sample.seed, Stream.CAPTURE_NOISE, fov])
    frames = expose(sensor, renderer.field(fov), settings, rng)
    shifts = {
        m: (registration_shift(renderer.offsets_px[m]) if register else (0.0, 0.0))
        for m in MODALITIES
    }
    images = tuple(shift_image(frames[m], shifts[m]) if register else frames[m] for m in MODALITIES)
    start = fov * len(MODALITIES) * FRAME_INTERVAL_S * 2
    return FrameSet(
        sample_id=sample_id,
        fov=fov,
        modalities=MODALITIES,
        frames=images,
        timestamps_s=tuple(start + i * FRAME_INTERVAL_S for i in range(len(MODALITIES))),
        exposures_us=tuple(settings.exposures_us[m] for m in MODALITIES),
        lit=MODALITIES,
        shifts_px=tuple(shifts[m] for m in MODALITIES),
        settings_digest=settings.digest(),
        pixel_size_um=renderer.sample.params.pixel_size_um,
        bit_depth=settings.bit_depth,
    )

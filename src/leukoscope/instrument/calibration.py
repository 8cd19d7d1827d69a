"""Measure the rig's inter-modality offsets from a few fields of view (`leukoscope calibrate`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from leukoscope import limits
from leukoscope.config import RegistrationConfig
from leukoscope.errors import AcquisitionError
from leukoscope.instrument import flatfield
from leukoscope.instrument.acquisition import Acquisition, AcquisitionSettings
from leukoscope.instrument.flatfield import RigCorrection
from leukoscope.instrument.registration import Registrar, Shift, calibrate
from leukoscope.instrument.rig import Rig
from leukoscope.types import FrameSet, Modality, is_fluorescence

log = logging.getLogger(__name__)


def calibrate_rig(
    rig: Rig,
    fields: int = 5,
    *,
    progress: Callable[[int, bool], None] | None = None,
) -> dict[Modality, Shift]:
    """Acquire `fields` unregistered fields; return the median shift per modality (reference 0, 0).

    The result goes into `rig.registration.offsets_px`; failed fields are skipped, and at least one
    field must succeed.
    """
    settings = AcquisitionSettings.from_config(rig.config)
    reference = rig.config.registration.reference
    raw = Registrar(RegistrationConfig(refine=False, reference=reference))  # no shift applied
    acquisition = Acquisition(rig, settings, registrar=raw, correction=False)
    frames: list[dict[Modality, np.ndarray]] = []
    for result in acquisition.run("calibration", fields):
        if progress is not None:
            progress(result.fov, result.ok)
        if result.frameset is not None:
            fs = result.frameset
            frames.append({m: fs.frames[i] for i, m in enumerate(fs.modalities)})
    if not frames:
        raise AcquisitionError(f"calibration: none of the {fields} field(s) could be acquired")
    found = calibrate(frames, reference=reference, modalities=settings.modalities)
    offsets = {m: found.get(m, (0.0, 0.0)) for m in settings.modalities}
    log.info("calibrated offsets from %d field(s): %s", len(frames), offsets)
    return offsets


def _raw_fields(rig: Rig, settings: AcquisitionSettings, fields: int) -> list[FrameSet]:
    """`fields` unregistered, uncorrected fields (failed ones skipped, at least one needed)."""
    raw = Registrar(RegistrationConfig(refine=False, reference=settings.modalities[0]))
    acquisition = Acquisition(rig, settings, registrar=raw, correction=False)
    found = [r.frameset for r in acquisition.run("calibration", fields) if r.frameset is not None]
    if not found:
        raise AcquisitionError(f"calibration: none of the {fields} field(s) could be acquired")
    return found


def dark_frames(rig: Rig, settings: AcquisitionSettings, frames: int) -> dict[Modality, np.ndarray]:
    """Per light, the mean of `frames` frames at its exposure with every light off."""
    camera, dark = rig.camera, {}
    rig.lights.all_off()
    camera.configure(pixel_format=settings.pixel_format, gain_db=settings.gain_db,
                     software_trigger=True)  # fmt: skip
    camera.start()
    try:
        for modality in settings.modalities:
            camera.configure(exposure_us=settings.exposures_us[modality], software_trigger=True)
            camera.flush()
            total: np.ndarray | None = None
            for _ in range(frames):
                camera.trigger()
                image = camera.fetch(settings.fetch_timeout_s).image.astype(np.float64)
                total = image if total is None else total + image
            assert total is not None
            dark[modality] = (total / frames).astype(np.float32)
    finally:
        camera.stop()
    return dark


def calibrate_correction(
    rig: Rig, settings: AcquisitionSettings | None = None, *, frames: int = 8, fields: int = 9
) -> RigCorrection:
    """Dark frames (lights off, `frames` each) and flat fields (median of `fields` fields)."""
    settings = settings or AcquisitionSettings.from_config(rig.config)
    dark = dark_frames(rig, settings, frames)
    found = _raw_fields(rig, settings, fields)
    flat = {
        m: flatfield.flat_from([fs.frame(m) for fs in found], dark[m]) for m in settings.modalities
    }
    background: dict[Modality, float] = {
        m: flatfield.background_from([fs.frame(m) for fs in found], dark[m], flat[m])
        for m in settings.modalities
        if not is_fluorescence(m)
    }
    log.info("dark and flat frames from %d frame(s) and %d field(s)", frames, len(found))
    return RigCorrection(
        dark, flat, flatfield.now_utc(), settings.digest(), frames=frames, fields=len(found),
        background=background,
    )  # fmt: skip


def calibrate_exposure(
    rig: Rig, target: float, settings: AcquisitionSettings | None = None, fields: int = 3
) -> dict[Modality, float]:
    """Per bright-field light, the exposure that puts the background at `target` of full scale
    (measured twice: the second pass checks the first; a clipped frame halves the exposure)."""
    settings = settings or AcquisitionSettings.from_config(rig.config)
    exposures = dict(settings.exposures_us)
    for _ in range(3):
        current = dataclasses.replace(settings, exposures_us=dict(exposures))
        found = _raw_fields(rig, current, fields)
        full = float(2 ** found[0].bit_depth - 1) if found[0].bit_depth else 255.0
        for modality in settings.modalities:
            if is_fluorescence(modality):
                continue
            stack = np.concatenate([fs.frame(modality).ravel() for fs in found])
            clipped = float(np.mean(stack >= full))
            exposures[modality] = (
                exposures[modality] / 2
                if clipped > 0.05
                else flatfield.exposure_for(
                    stack, exposures[modality], full, target, limits.MAX_EXPOSURE_US
                )
            )
    return {m: exposures[m] for m in settings.modalities}

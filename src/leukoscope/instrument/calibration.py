"""Measure the rig's inter-modality offsets from a few fields of view (`leukoscope calibrate`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from leukoscope.config import RegistrationConfig
from leukoscope.errors import AcquisitionError
from leukoscope.instrument.acquisition import Acquisition, AcquisitionSettings
from leukoscope.instrument.registration import Registrar, Shift, calibrate
from leukoscope.instrument.rig import Rig
from leukoscope.types import Modality

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
    acquisition = Acquisition(rig, settings, registrar=raw)
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

"""Acquire fields of view: per modality light on -> settle -> trigger -> fetch -> light off; verify;
register; build a FrameSet; save it; hand it on.

`Acquisition(rig).run(sample_id, fields, out_dir)` is a generator of `FieldResult`s, one per field as
soon as it is done (saved first, when `out_dir` is given), so the streaming pipeline consumes frame sets
as they come. Every frame is checked to belong to its cycle: its id is above every earlier one, its
timestamp is not before the trigger, and the camera's lit light (where it reports one) is the one
switched on; a frame that times out or fails a check is re-triggered `camera.retries` times, then the
field is recorded as failed with the reason and the run continues or stops as configured
(`acquisition.on_failed_field`). No wait is unbounded. The lights are switched off after every capture
and, in a `finally`, at the end of the run whatever ends it (exception, Ctrl-C, SIGTERM under
`Rig`'s context, or the consumer closing the generator).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

from leukoscope.config import RigConfig
from leukoscope.errors import AcquisitionError, CameraTimeout, ParameterError
from leukoscope.ids import check_sample_id
from leukoscope.instrument import flatfield
from leukoscope.instrument.acquisition_meta import FieldFormat
from leukoscope.instrument.channels import ChannelOptics, channel_optics
from leukoscope.instrument.flatfield import RigCorrection
from leukoscope.instrument.ome_zarr import zarr_module
from leukoscope.instrument.registration import Registrar
from leukoscope.instrument.rig import Rig
from leukoscope.types import MODALITIES, Frame, FrameSet, Modality

log = logging.getLogger(__name__)

FAILED_FIELDS_FILE = "failed_fields.json"
"""Beside acquisition.json: the fields that failed and why (absent when none did)."""

_BIT_DEPTHS = {"Mono8": 8, "Mono10": 10, "Mono12": 12, "Mono14": 14, "Mono16": 16}


@dataclass(frozen=True)
class AcquisitionSettings:
    """Everything a run needs from the rig config, per modality."""

    modalities: tuple[Modality, ...]
    channels: dict[Modality, int]
    intensities_percent: dict[Modality, float]
    exposures_us: dict[Modality, float]
    gain_db: float = 0.0
    pixel_format: str = "Mono8"
    pixel_size_um: float = 0.25
    settle_s: float = 0.002
    fetch_timeout_s: float = 2.0
    retries: int = 1
    on_failed_field: Literal["continue", "stop"] = "continue"
    verify_lights: bool = True  # ask the controller which channels are on before each trigger
    optics: dict[Modality, ChannelOptics] = field(default_factory=dict)  # for the OME metadata
    compression: str = "none"  # of saved fields (storage.COMPRESSIONS)
    field_format: FieldFormat = "ome-tiff"  # how fields are saved (one file or one folder each)

    @classmethod
    def from_config(
        cls, config: RigConfig, modalities: Iterable[Modality] = MODALITIES
    ) -> AcquisitionSettings:
        """Settings from the rig configuration, for `modalities` (canonical order)."""
        chosen = tuple(m for m in MODALITIES if m in set(modalities))
        if not chosen:
            raise ParameterError("at least one modality is required")
        if config.acquisition.format == "ome-zarr":
            zarr_module()  # refused before any field is captured, not when the first one is saved
        lights, camera = config.lights, config.camera
        missing = [
            m.value for m in chosen if m not in lights.channels or m not in camera.exposure_us
        ]
        if missing:
            raise ParameterError(
                f"no light channel or exposure configured for {', '.join(missing)}"
            )
        return cls(
            modalities=chosen,
            channels={m: lights.channels[m].channel for m in chosen},
            intensities_percent={m: lights.channels[m].intensity_percent for m in chosen},
            exposures_us={m: camera.exposure_us[m] for m in chosen},
            gain_db=camera.gain_db,
            pixel_format=camera.pixel_format,
            pixel_size_um=camera.pixel_size_um,
            settle_s=lights.settle_ms / 1000.0,
            fetch_timeout_s=camera.fetch_timeout_s,
            retries=camera.retries,
            on_failed_field=config.acquisition.on_failed_field,
            optics=channel_optics(lights, chosen),
            compression=config.acquisition.compression,
            field_format=config.acquisition.format,
        )

    def digest(self) -> str:
        """Short stable hash of the settings that shape the images."""
        data = {
            "modalities": [m.value for m in self.modalities],
            "channels": {m.value: c for m, c in self.channels.items()},
            "intensities_percent": {m.value: v for m, v in self.intensities_percent.items()},
            "exposures_us": {m.value: v for m, v in self.exposures_us.items()},
            "gain_db": self.gain_db,
            "pixel_format": self.pixel_format,
            "pixel_size_um": self.pixel_size_um,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FieldResult:
    """One field of view: its frame set (None if it failed), why it failed, where it was saved."""

    fov: int
    frameset: FrameSet | None
    error: str = ""
    path: Path | None = None
    triggers: int = 0  # triggers fired for this field (retries included)
    refined: dict[Modality, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the field was acquired."""
        return self.frameset is not None


class _FieldFailed(Exception):
    """A field could not be acquired (reason in the message); the run may continue."""


class Acquisition:
    """Acquires fields of view from an open `Rig`."""

    def __init__(
        self,
        rig: Rig,
        settings: AcquisitionSettings | None = None,
        registrar: Registrar | None = None,
        correction: RigCorrection | bool | None = True,
    ) -> None:
        """`correction`: True loads the rig's saved dark/flat calibration when configured (and
        warns once when it is missing or stale), False or None corrects nothing."""
        self.rig = rig
        self.settings = settings or AcquisitionSettings.from_config(rig.config)
        self.correction = self._correction(correction)
        self.registrar = registrar or Registrar(rig.config.registration)
        if self.registrar.reference not in self.settings.modalities:
            self.registrar = Registrar(
                rig.config.registration.model_copy(
                    update={"reference": self.settings.modalities[0]}
                )
            )
        self._last_frame_id = -1
        self._exposure: float | None = None
        self._triggers = 0

    def _correction(self, given: RigCorrection | bool | None) -> RigCorrection | None:
        if not isinstance(given, bool):
            return given
        calibration = self.rig.config.calibration
        if not given or not calibration.apply:
            return None
        found = flatfield.load(calibration.path)
        problem = flatfield.staleness(found, self.settings.digest(), calibration.max_age_days)
        if problem:
            log.warning("%s", problem)
        return found

    # -- the run ----------------------------------------------------------------------------

    def run(
        self,
        sample_id: str,
        fields: int | Iterable[int],
        out_dir: Path | None = None,
        *,
        saved: int = 0,
        failed: Mapping[int, str] | None = None,
    ) -> Iterator[FieldResult]:
        """Acquire `fields` (a count, or field indices); yield each field's result as it is done.
        `saved` and `failed` are what `out_dir` already holds when a run is resumed."""
        check_sample_id(sample_id)
        indices = list(range(fields)) if isinstance(fields, int) else list(fields)
        if isinstance(fields, int) and fields < 1:
            raise ParameterError(f"number of fields must be >= 1, got {fields}")
        rig, settings = self.rig, self.settings
        failures: dict[int, str] = dict(failed or {})
        try:
            rig.lights.all_off()
            for modality in settings.modalities:
                rig.lights.set_intensity(
                    settings.channels[modality], settings.intensities_percent[modality]
                )
            rig.camera.configure(
                pixel_format=settings.pixel_format, gain_db=settings.gain_db, software_trigger=True
            )
            self._exposure = None
            rig.camera.start()
            for fov in indices:
                result = self._field(sample_id, fov)
                if result.frameset is not None and out_dir is not None:
                    saved += 1  # acquisition.json's `fields` is always the number saved
                    self._write_meta(out_dir, sample_id, result.frameset, saved)
                    result = _saved(result, out_dir, settings, bool(rig.simulated_camera))
                if not result.ok:
                    failures[fov] = result.error
                    log.warning("field %d failed: %s", fov, result.error)
                    if out_dir is not None:
                        _write_failures(out_dir, failures)
                yield result
                if not result.ok and settings.on_failed_field == "stop":
                    log.warning(
                        "stopping the run after failed field %d (on_failed_field = stop)", fov
                    )
                    return
        finally:
            rig.lights.safe_all_off()
            try:
                rig.camera.stop()
            except Exception as exc:
                log.error("stopping the camera: %s", exc)

    def _field(self, sample_id: str, fov: int) -> FieldResult:
        self.rig.move_to(fov)
        dropped = self.rig.camera.flush()
        if dropped:
            log.info("field %d: flushed %d stale frame(s)", fov, dropped)
        start_triggers = self._triggers
        frames: dict[Modality, Frame] = {}
        try:
            for modality in self.settings.modalities:
                frames[modality] = self._capture(modality)
        except _FieldFailed as exc:
            return FieldResult(fov, None, str(exc), triggers=self._triggers - start_triggers)
        shapes = {f.image.shape for f in frames.values()}
        if len(shapes) != 1:
            reason = f"frames differ in shape: {sorted(shapes)}"
            return FieldResult(fov, None, reason, triggers=self._triggers - start_triggers)
        images = {m: f.image for m, f in frames.items()}
        if self.correction is not None:
            full = float(2 ** _BIT_DEPTHS.get(self.settings.pixel_format, 16) - 1)
            images = {m: self.correction.apply(m, image, full) for m, image in images.items()}
        registration = self.registrar.register(images)
        order = self.settings.modalities
        frameset = FrameSet(
            sample_id=sample_id,
            fov=fov,
            modalities=order,
            frames=tuple(registration.frames[m] for m in order),
            timestamps_s=tuple(frames[m].timestamp_s for m in order),
            exposures_us=tuple(
                frames[m].exposure_us or self.settings.exposures_us[m] for m in order
            ),
            lit=order,
            shifts_px=tuple(registration.shifts[m] for m in order),
            settings_digest=self.settings.digest(),
            pixel_size_um=self.settings.pixel_size_um,
            bit_depth=_BIT_DEPTHS.get(self.settings.pixel_format, 0),
        )
        return FieldResult(
            fov,
            frameset,
            triggers=self._triggers - start_triggers,
            refined=dict(registration.refined),
        )

    # -- one capture ------------------------------------------------------------------------

    def _capture(self, modality: Modality) -> Frame:
        """Light `modality`, trigger and fetch a verified frame, light off; _FieldFailed if none."""
        s, lights, camera = self.settings, self.rig.lights, self.rig.camera
        channel, exposure = s.channels[modality], s.exposures_us[modality]
        if self._exposure != exposure:
            camera.configure(exposure_us=exposure, software_trigger=True)
            self._exposure = exposure
        lights.on(channel)
        try:
            if s.settle_s > 0:
                time.sleep(s.settle_s)
            if s.verify_lights:
                lit = lights.lit()
                expected = {channel: round(s.intensities_percent[modality], 1)}
                if lit != expected:
                    raise _FieldFailed(
                        f"{modality.value}: controller reports channels {lit} lit, expected {expected}"
                    )
            problems: list[str] = []
            for _ in range(1 + s.retries):
                problem, frame = self._trigger_and_fetch(modality)
                if frame is not None:
                    return frame
                problems.append(problem)
                camera.flush()  # a late frame of this attempt must not answer the next one
            raise _FieldFailed(
                f"{modality.value}: no valid frame after {1 + s.retries} trigger(s): "
                + "; ".join(problems)
            )
        finally:
            lights.off(channel)

    def _trigger_and_fetch(self, modality: Modality) -> tuple[str, Frame | None]:
        """One trigger; the frame if it belongs to this cycle, else why not."""
        camera = self.rig.camera
        triggered_at = time.time()
        self._triggers += 1
        camera.trigger()
        try:
            frame = camera.fetch(self.settings.fetch_timeout_s)
        except CameraTimeout:
            return f"timeout after {self.settings.fetch_timeout_s:g} s", None
        if frame.frame_id <= self._last_frame_id:
            return f"stale frame id {frame.frame_id} (last {self._last_frame_id})", None
        self._last_frame_id = frame.frame_id
        if frame.timestamp_s < triggered_at:
            return f"frame {frame.frame_id} exposed before its trigger", None
        if frame.lit is not None and frame.lit is not modality:
            return f"frame {frame.frame_id} shows {frame.lit.value}, not {modality.value}", None
        if frame.image.ndim != 2:
            raise AcquisitionError(
                f"camera returned {frame.image.shape} frames; set a Mono pixel format"
            )
        return "", frame

    # -- saving -----------------------------------------------------------------------------

    def _write_meta(self, out_dir: Path, sample_id: str, frameset: FrameSet, saved: int) -> None:
        from leukoscope.instrument import storage

        s = self.settings
        frame = frameset.frames[0]
        bit_depth = _BIT_DEPTHS.get(s.pixel_format, 8 if frame.dtype == np.uint8 else 16)
        meta = storage.AcquisitionMeta(
            sample_id=sample_id,
            modalities=list(s.modalities),
            pixel_size_um=s.pixel_size_um,
            bit_depth=bit_depth,
            frame_shape=(int(frame.shape[0]), int(frame.shape[1])),
            channels=[
                storage.ChannelMeta(
                    modality=m,
                    exposure_us=s.exposures_us[m],
                    intensity_percent=s.intensities_percent[m],
                )
                for m in s.modalities
            ],
            settings_digest=s.digest(),
            fields=saved,
            simulated=bool(self.rig.simulated_camera),
            field_format=s.field_format,
            correction=self.correction.label if self.correction is not None else "",
        )
        storage.write_acquisition_meta(out_dir, meta)


def _saved(
    result: FieldResult, out_dir: Path, settings: AcquisitionSettings, simulated: bool
) -> FieldResult:
    """`result` saved under `out_dir`, marked `simulated` as acquisition.json says."""
    from leukoscope.instrument import storage

    assert result.frameset is not None
    path = storage.write_field(
        out_dir,
        result.frameset,
        optics=settings.optics,
        acquired_at=datetime.now(timezone.utc),
        compression=settings.compression,
        field_format=settings.field_format,
        simulated=simulated,
    )
    return FieldResult(
        result.fov, result.frameset, result.error, path, result.triggers, result.refined
    )


def _write_failures(out_dir: Path, failures: dict[int, str]) -> None:
    from leukoscope.instrument import storage

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "failed": [{"fov": f, "reason": r} for f, r in sorted(failures.items())]
    }
    storage.atomic_write_bytes(
        Path(out_dir) / FAILED_FIELDS_FILE, json.dumps(data, indent=2).encode()
    )


def acquire(
    rig: Rig, sample_id: str, fields: int | Iterable[int], out_dir: Path | None = None
) -> Iterator[FieldResult]:
    """Shorthand: `Acquisition(rig).run(sample_id, fields, out_dir)`."""
    return Acquisition(rig).run(sample_id, fields, out_dir)

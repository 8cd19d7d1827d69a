"""Acquire fields of view: per modality light on -> settle -> trigger -> fetch -> light off; verify;
register; build a FrameSet; save it; hand it on.

`Acquisition(rig).run(sample_id, fields, out_dir)` is a generator of `FieldResult`s, one per field as
soon as it is done (its file queued for the writer thread when `out_dir` is given, written before the run ends), so the streaming pipeline consumes frame sets
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from leukoscope.acquisition_files import storage
from leukoscope.acquisition_files.acquisition_meta import FieldFormat
from leukoscope.acquisition_files.channels import ChannelOptics, channel_optics
from leukoscope.acquisition_files.ome_zarr import zarr_module
from leukoscope.config import RigConfig
from leukoscope.errors import AcquisitionError, CameraTimeout, ParameterError
from leukoscope.ids import check_sample_id
from leukoscope.instrument import flatfield
from leukoscope.instrument.flatfield import RigCorrection
from leukoscope.instrument.overlap import BIT_DEPTHS, Ahead, FieldWriter, field_saver
from leukoscope.instrument.overlap import FAILED_FIELDS_FILE as FAILED_FIELDS_FILE
from leukoscope.instrument.registration import Registrar
from leukoscope.instrument.rig import Rig
from leukoscope.types import MODALITIES, Frame, FrameSet, Modality

log = logging.getLogger(__name__)


_BIT_DEPTHS = BIT_DEPTHS


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


@dataclass(frozen=True)
class _Grabbed:
    """A field's frames as captured, before correction and registration (or why none)."""

    fov: int
    frames: dict[Modality, Frame]
    triggers: int
    error: str = ""


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
        writer = (
            None
            if out_dir is None
            else FieldWriter(
                out_dir, field_saver(out_dir, sample_id, settings, rig, self.correction)
            )
        )
        captures: Ahead[_Grabbed] | None = None
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
            # field n + 1 is captured (lights, camera, simulated rendering) while field n is
            # registered here and analysed downstream; fields are written behind a bounded queue
            captures = Ahead(self._grabs(sample_id, indices), depth=1, name="capture")
            for grabbed in captures:
                result = self._assemble(sample_id, grabbed)
                if result.frameset is not None and writer is not None and out_dir is not None:
                    saved += 1  # acquisition.json's `fields` is always the number saved
                    writer.field(result.frameset, saved)
                    path = storage.field_path(out_dir, result.fov, settings.field_format)
                    result = replace(result, path=path)
                if not result.ok:
                    failures[result.fov] = result.error
                    log.warning("field %d failed: %s", result.fov, result.error)
                    if writer is not None:
                        writer.failures(failures)
                yield result
                if not result.ok and settings.on_failed_field == "stop":
                    log.warning(
                        "stopping the run after failed field %d (on_failed_field = stop)",
                        result.fov,
                    )
                    return
        finally:
            try:
                if captures is not None:
                    captures.close()  # the camera and lights are idle from here on
            finally:
                rig.lights.safe_all_off()
                try:
                    rig.camera.stop()
                except Exception as exc:
                    log.error("stopping the camera: %s", exc)
                if writer is not None:
                    writer.close()  # everything acquired is on disk before the run ends

    def _grabs(self, sample_id: str, indices: list[int]) -> Iterator[_Grabbed]:
        """Each field's frames as captured, in order; stops after a failure under `stop`."""
        for fov in indices:
            grabbed = self._grab(fov)
            yield grabbed
            if grabbed.error and self.settings.on_failed_field == "stop":
                return

    def _grab(self, fov: int) -> _Grabbed:
        """Field `fov`'s frames, or why there are none (runs in the capture thread)."""
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
            return _Grabbed(fov, {}, self._triggers - start_triggers, str(exc))
        shapes = {f.image.shape for f in frames.values()}
        if len(shapes) != 1:
            reason = f"frames differ in shape: {sorted(shapes)}"
            return _Grabbed(fov, {}, self._triggers - start_triggers, reason)
        return _Grabbed(fov, frames, self._triggers - start_triggers)

    def _assemble(self, sample_id: str, grabbed: _Grabbed) -> FieldResult:
        """Corrected, registered frame set of a captured field (or its failure)."""
        fov, frames, triggers = grabbed.fov, grabbed.frames, grabbed.triggers
        if grabbed.error:
            return FieldResult(fov, None, grabbed.error, triggers=triggers)
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
        return FieldResult(fov, frameset, triggers=triggers, refined=dict(registration.refined))

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


def acquire(
    rig: Rig, sample_id: str, fields: int | Iterable[int], out_dir: Path | None = None
) -> Iterator[FieldResult]:
    """Shorthand: `Acquisition(rig).run(sample_id, fields, out_dir)`."""
    return Acquisition(rig).run(sample_id, fields, out_dir)

"""SimulatedCamera: the Camera protocol over the simulated sample, lit by the simulated rig's lights.

On each trigger it looks at the shared rig state (which lights are on, at what drive, which field the
stage is on) and renders what the sensor would record during the exposure: the lit light sources'
images added up (none lit: a dark frame of read noise), exposure and drive scaling signal and noise,
fluorescence bleaching with the dose the field has already received. Rendered fields are cached, so
the four-light cycle of one field renders the sample once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from leukoscope.errors import CameraError, CameraTimeout
from leukoscope.instrument.simulator.params import OpticsParams, SampleParams, SensorParams
from leukoscope.instrument.simulator.render import FieldRenderer, Radiance
from leukoscope.instrument.simulator.sample import SimulatedSample
from leukoscope.instrument.simulator.sensor import Sensor, bit_depth_of
from leukoscope.instrument.simulator.state import SimulatedRigState
from leukoscope.instrument.simulator.streams import Stream
from leukoscope.types import MODALITIES, Frame, is_fluorescence

MAX_QUEUED = 16
"""Frames the simulated driver buffers; older ones are dropped when it overflows."""


class SimulatedCamera:
    """A software-triggered monochrome camera looking at `renderer`'s sample through `state`'s lights."""

    def __init__(
        self,
        renderer: FieldRenderer,
        state: SimulatedRigState,
        *,
        sensor: SensorParams | None = None,
        seed: int = 0,
        exposure_us: float = 2000.0,
        pixel_format: str = "Mono8",
        drop_triggers: Collection[int] = (),
        cached_fields: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.renderer = renderer
        self.state = state
        self.sensor = Sensor(sensor)
        self.seed = seed
        self.exposure_us = exposure_us
        self.gain_db = 0.0
        self.pixel_format = pixel_format
        self.bit_depth = bit_depth_of(pixel_format)
        self.software_trigger = True
        self.drop_triggers = frozenset(drop_triggers)  # trigger numbers whose frame is lost
        self._clock = clock
        self._cache: OrderedDict[int, Radiance] = OrderedDict()
        self._cached_fields = max(1, cached_fields)
        self._dose: dict[int, float] = {}  # fluorescence dose each field received, percent x us
        self._queue: deque[Frame] = deque(maxlen=MAX_QUEUED)
        self._ready = threading.Condition()
        self._next_id = 0
        self._streaming = False
        self._closed = False

    @classmethod
    def create(
        cls,
        state: SimulatedRigState,
        *,
        seed: int = 0,
        sample: SampleParams | None = None,
        optics: OpticsParams | None = None,
        sensor: SensorParams | None = None,
        **options: Any,
    ) -> SimulatedCamera:
        """A camera on a fresh simulated sample of `seed` (`options`: exposure_us, pixel_format...)."""
        renderer = FieldRenderer(SimulatedSample(seed, sample), optics, sensor)
        return cls(renderer, state, sensor=sensor, seed=seed, **options)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """Height and width of the frames, px."""
        return self.renderer.sample.frame_shape

    def configure(
        self,
        *,
        exposure_us: float | None = None,
        gain_db: float | None = None,
        pixel_format: str | None = None,
        software_trigger: bool = True,
    ) -> None:
        """Apply settings; CameraError names a setting out of range or unsupported."""
        self._check_open()
        if exposure_us is not None:
            if not 1.0 <= exposure_us <= 10_000_000.0:
                raise CameraError(f"ExposureTime {exposure_us} us out of range [1, 1e7]")
            self.exposure_us = float(exposure_us)
        if gain_db is not None:
            if not 0.0 <= gain_db <= 48.0:
                raise CameraError(f"Gain {gain_db} dB out of range [0, 48]")
            self.gain_db = float(gain_db)
        if pixel_format is not None:
            self.bit_depth = bit_depth_of(pixel_format)
            self.pixel_format = pixel_format
        self.software_trigger = software_trigger

    def start(self) -> None:
        """Arm the acquisition."""
        self._check_open()
        self._streaming = True

    def flush(self) -> int:
        """Drop buffered frames; return how many."""
        with self._ready:
            dropped = len(self._queue)
            self._queue.clear()
        return dropped

    def trigger(self) -> None:
        """Expose one frame now, under whatever light is lit now, on the field the stage is on."""
        self._check_streaming()
        if not self.software_trigger:
            raise CameraError("software trigger fired while TriggerMode is Off (free-running)")
        frame = self._expose()
        if frame.frame_id in self.drop_triggers:
            return  # lost on the way, as a dropped packet would be
        with self._ready:
            self._queue.append(frame)
            self._ready.notify_all()

    def fetch(self, timeout_s: float) -> Frame:
        """The next frame; in free-run a fresh exposure; CameraTimeout after `timeout_s` otherwise."""
        self._check_streaming()
        if not self.software_trigger:
            return self._expose()
        with self._ready:
            if not self._ready.wait_for(lambda: bool(self._queue), timeout=max(timeout_s, 0.0)):
                raise CameraTimeout(f"simulated camera: no frame within {timeout_s:g} s")
            return self._queue.popleft()

    def stop(self) -> None:
        """Stop streaming (buffered frames are kept until flushed)."""
        self._streaming = False

    def close(self) -> None:
        """Release everything; the camera cannot be used afterwards."""
        self.stop()
        self.flush()
        self._cache.clear()
        self._closed = True

    def __enter__(self) -> SimulatedCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise CameraError("simulated camera is closed")

    def _check_streaming(self) -> None:
        self._check_open()
        if not self._streaming:
            raise CameraError("simulated camera is not started; call start() first")

    def _radiance(self, fov: int) -> Radiance:
        if fov in self._cache:
            self._cache.move_to_end(fov)
            return self._cache[fov]
        while len(self._cache) >= self._cached_fields:  # room first: never one field too many
            self._cache.popitem(last=False)
        radiance = self.renderer.field(fov)
        for image in radiance.values():
            image.setflags(write=False)
        self._cache[fov] = radiance
        return radiance

    def _expose(self) -> Frame:
        frame_id = self._next_id
        self._next_id += 1
        timestamp = self._clock()
        fov = self.state.fov
        lit = {m: v for m, v in self.state.lit().items() if v > 0}
        sources = []
        if lit:
            prior = self._dose.get(fov, 0.0)
            sources = self.sensor.lit_sources(self._radiance(fov), lit, self.exposure_us, prior)
            fluorescence = sum(v for m, v in lit.items() if is_fluorescence(m)) * self.exposure_us
            self._dose[fov] = prior + fluorescence
        first = next((m for m in MODALITIES if m in lit), MODALITIES[0])
        rng = np.random.default_rng([self.seed, Stream.CAMERA_NOISE, frame_id])
        image = self.sensor.read_out(
            sources, self.frame_shape, self.bit_depth, self.gain_db, rng, MODALITIES.index(first)
        )
        only = next(iter(lit)) if len(lit) == 1 else None
        return Frame(image, frame_id, timestamp, self.exposure_us, only)

"""`HarvestersCamera`: the Camera protocol on any GenTL producer, through harvesters.

- Producers load with `check_existence=True, check_validity=True`: a missing or broken .cti fails
  loudly instead of finding zero devices.
- Optional nodes (ExposureTime, Gain, TriggerSoftware...) are checked with `has_node`; what the device
  lacks is listed in `missing_nodes`, and raises CameraError when `strict` (the default).
- `fetch(timeout_s)` always has a timeout, copies the pixels out before the buffer is re-queued and
  reshapes the flat payload by height x width (x components).
- GenTL/GenApi exceptions become CameraError / CameraTimeout.
- harvesters installs its own SIGINT handler when it creates an acquirer; we put the previous one
  back, so Ctrl-C still raises KeyboardInterrupt and the lights-off exit paths run.
- Frame timestamps are host time (time.time()) when the buffer was delivered: the GenTL simulators
  have no device timestamps, and device clocks are not comparable with the trigger's host time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from leukoscope.errors import CameraError, CameraTimeout, ParameterError
from leukoscope.instrument.gentl_devices import (
    create_keeping_sigint,
    describe_devices,
    gentl_errors,
    new_harvester,
    select_device,
)
from leukoscope.types import Frame

log = logging.getLogger(__name__)

MIN_BUFFERS = 5  # harvesters refuses fewer


class HarvestersCamera:
    """A GenTL camera through harvesters, implementing the Camera protocol."""

    def __init__(
        self,
        acquirer: Any,
        *,
        harvester: Any = None,
        strict: bool = True,
        num_buffers: int = MIN_BUFFERS,
        name: str = "camera",
    ) -> None:
        self._ia = acquirer
        self._harvester = harvester
        self.strict = strict
        self.name = name
        self.missing_nodes: list[str] = []
        self._started = False
        self._hardware_trigger = False
        self._software_trigger = False
        self._last_trigger_s = 0.0
        self._frame_counter = 0
        self._closed = False
        self._guard(
            lambda: setattr(acquirer, "num_buffers", max(num_buffers, MIN_BUFFERS)), "setup"
        )

    @classmethod
    def open(
        cls,
        producers: Sequence[str | Path],
        device_id: str = "",
        *,
        strict: bool = True,
        num_buffers: int = MIN_BUFFERS,
    ) -> HarvestersCamera:
        """Load the producers, pick the device by serial number / id (first if empty), open it."""
        harvester = new_harvester(producers)
        try:
            devices = describe_devices(harvester, producers)
            index = select_device(devices, device_id)
            acquirer = create_keeping_sigint(harvester, index)
            chosen = devices[index]
            name = f"{chosen.model or chosen.id} {chosen.serial_number}".strip()
            return cls(
                acquirer, harvester=harvester, strict=strict, num_buffers=num_buffers, name=name
            )
        except BaseException:
            harvester.reset()
            raise

    @property
    def node_map(self) -> Any:
        """The remote device's GenApi node map."""
        return self._ia.remote_device.node_map

    @property
    def hardware_trigger(self) -> bool:
        """True when the device itself is in software-trigger mode (one frame per trigger)."""
        return self._hardware_trigger

    def has_node(self, name: str) -> bool:
        """Whether the device exposes GenApi node `name`."""
        return bool(self._guard(lambda: self.node_map.has_node(name), f"has_node({name})"))

    # -- the Camera protocol --------------------------------------------------------------------

    def configure(
        self,
        *,
        exposure_us: float | None = None,
        gain_db: float | None = None,
        pixel_format: str | None = None,
        software_trigger: bool = True,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        """Apply settings where the node exists; CameraError naming missing ones when strict."""
        missing: list[str] = []
        if self._started and (pixel_format or width or height):
            raise CameraError(f"{self.name}: stop the camera before changing format or size")
        if pixel_format is not None:
            self._set_pixel_format(pixel_format, missing)
        if width is not None:
            self._set("Width", int(width), missing)
        if height is not None:
            self._set("Height", int(height), missing)
        if exposure_us is not None:
            node = "ExposureTime" if self.has_node("ExposureTime") else "ExposureTimeAbs"
            self._set(node, float(exposure_us), missing, report_as="ExposureTime")
        if gain_db is not None and (gain_db != 0.0 or self.has_node("Gain")):
            self._set("Gain", float(gain_db), missing)  # no Gain node means 0 dB: nothing to do
        if not self._started:
            self._configure_trigger(software_trigger, missing)
        new = [name for name in missing if name not in self.missing_nodes]
        if missing and self.strict:
            raise CameraError(f"{self.name}: device has no {', '.join(missing)} node")
        self.missing_nodes.extend(new)
        if new:  # warn once per node, not at every exposure change
            log.warning(
                "%s: device has no %s node; continuing without (strict=False)",
                self.name,
                ", ".join(new),
            )

    def start(self) -> None:
        """Start acquisition (armed and waiting for triggers in software-trigger mode)."""
        if not self._started:
            self._guard(self._ia.start, "start")
            self._started = True

    def flush(self) -> int:
        """Drop every buffer already delivered; return how many."""
        if not self._started:
            return 0
        dropped = 0
        for _ in range(4 * max(int(getattr(self._ia, "num_buffers", MIN_BUFFERS)), MIN_BUFFERS)):
            buffer = self._guard(lambda: self._ia.try_fetch(timeout=0.001), "flush")
            if buffer is None:
                break
            self._guard(buffer.queue, "flush")
            dropped += 1
        return dropped

    def trigger(self) -> None:
        """Fire TriggerSoftware (or, on a free-running device with strict=False, flush)."""
        if not self._started:
            raise CameraError(f"{self.name}: trigger before start()")
        if self._hardware_trigger:
            self._last_trigger_s = time.time()
            self._guard(self.node_map.TriggerSoftware.execute, "TriggerSoftware")
        else:
            self.flush()
            self._last_trigger_s = time.time()

    def fetch(self, timeout_s: float) -> Frame:
        """The next frame, copied out of the buffer before re-queueing; CameraTimeout after timeout."""
        if timeout_s <= 0:
            raise ParameterError("fetch timeout must be positive (harvesters treats 0 as forever)")
        if not self._started:
            raise CameraError(f"{self.name}: fetch before start()")
        buffer = self._next_buffer(timeout_s)
        received = time.time()
        try:
            image = self._copy_out(buffer)
            frame_id = self._frame_id(buffer)
        finally:
            self._guard(buffer.queue, "queue buffer")
        return Frame(
            image=image,
            frame_id=frame_id,
            timestamp_s=received,
            exposure_us=self._exposure_now(),
            lit=None,
        )

    def _next_buffer(self, timeout_s: float) -> Any:
        """The next complete buffer before the deadline. `try_fetch` (not `fetch`) so incomplete
        buffers, which harvesters re-queues and `fetch` would wait past its timeout for, count
        against our deadline: the wait is bounded whatever the producer delivers."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CameraTimeout(f"{self.name}: no frame within {timeout_s:g} s")
            try:
                buffer = self._ia.try_fetch(timeout=remaining)
            except Exception as exc:
                raise self._wrap(exc, "fetch") from exc
            if buffer is not None:
                return buffer

    def stop(self) -> None:
        """Stop acquisition (idempotent)."""
        if self._started:
            self._started = False
            self._guard(self._ia.stop, "stop")

    def close(self) -> None:
        """Stop, release the device and unload the producers (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            try:
                self._ia.destroy()
            finally:
                if self._harvester is not None:
                    self._harvester.reset()

    def __enter__(self) -> HarvestersCamera:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers --------------------------------------------------------------------------------

    def _wrap(self, exc: BaseException, what: str) -> CameraError:
        timeout_error, _, _ = gentl_errors()
        text = str(exc) or type(exc).__name__
        if isinstance(exc, timeout_error):
            return CameraTimeout(f"{self.name}: {what}: {text}")
        return CameraError(f"{self.name}: {what} failed: {text}")

    def _guard(self, operation: Any, what: str) -> Any:
        """Run a harvesters/GenTL call; their exceptions become ours."""
        _, gentl_error, genapi_error = gentl_errors()
        try:
            return operation()
        except (gentl_error, genapi_error) as exc:
            raise self._wrap(exc, what) from exc

    def _set(self, node: str, value: Any, missing: list[str], report_as: str = "") -> None:
        if not self.has_node(node):
            missing.append(report_as or node)
            return
        self._guard(lambda: setattr(getattr(self.node_map, node), "value", value), f"set {node}")

    def _set_pixel_format(self, pixel_format: str, missing: list[str]) -> None:
        if not self.has_node("PixelFormat"):
            missing.append("PixelFormat")
            return
        allowed = tuple(self._guard(lambda: self.node_map.PixelFormat.symbolics, "PixelFormat"))
        if pixel_format not in allowed:
            raise CameraError(
                f"{self.name}: pixel format {pixel_format!r} not supported; has {', '.join(allowed)}"
            )
        self._set("PixelFormat", pixel_format, missing)

    def _configure_trigger(self, software_trigger: bool, missing: list[str]) -> None:
        self._software_trigger = software_trigger
        has_mode = self.has_node("TriggerMode")
        if not software_trigger:
            if has_mode:
                self._set("TriggerMode", "Off", missing)
            self._hardware_trigger = False
            return
        if not (has_mode and self.has_node("TriggerSoftware")):
            missing.append("TriggerSoftware")
            self._hardware_trigger = False
            return
        if self.has_node("TriggerSelector"):
            choices = tuple(self._guard(lambda: self.node_map.TriggerSelector.symbolics, "trigger"))
            if "FrameStart" in choices:
                self._set("TriggerSelector", "FrameStart", missing)
        self._set("TriggerMode", "On", missing)
        if self.has_node("TriggerSource"):
            self._set("TriggerSource", "Software", missing)
        self._hardware_trigger = True

    def _exposure_now(self) -> float | None:
        for node in ("ExposureTime", "ExposureTimeAbs"):
            if self.has_node(node):
                return float(self._guard(lambda n=node: getattr(self.node_map, n).value, node))
        return None

    def _frame_id(self, buffer: Any) -> int:
        try:
            return int(buffer.frame_id)
        except Exception:  # producer without frame ids: count ourselves
            self._frame_counter += 1
            return self._frame_counter

    def _copy_out(self, buffer: Any) -> np.ndarray:
        """Copy component 0 out of the buffer, shaped H x W or H x W x C."""
        try:
            component = buffer.payload.components[0]
            width, height = int(component.width), int(component.height)
            per_pixel = float(component.num_components_per_pixel)
            data = component.data
        except Exception as exc:
            raise self._wrap(exc, "read buffer") from exc
        if per_pixel != int(per_pixel) or per_pixel < 1:
            raise CameraError(
                f"{self.name}: packed/planar format with {per_pixel} values per pixel"
            )
        channels = int(per_pixel)
        expected = width * height * channels
        flat = np.asarray(data).reshape(-1)
        if flat.size < expected:
            raise CameraError(
                f"{self.name}: payload has {flat.size} values, {height}x{width}x{channels} needs {expected}"
            )
        image = np.array(flat[:expected], copy=True)
        shape = (height, width) if channels == 1 else (height, width, channels)
        return image.reshape(shape)

"""A camera that serves a saved acquisition's frames through the Camera protocol at a set rate.

It stands in for a real camera when measuring what the software costs: the frames cost nothing to
make (each field is read once, when the stage moves to it), and each frame is delivered no earlier
than `1 / frame_rate` after the previous one, as a camera exposing and reading out at that rate
would. Which frame a trigger gets is the rig state's: the field the stage is on and the one light
that is lit (shared with the emulated controller, as the simulated camera does).

    camera = ReplayCamera(Path("acquisitions/demo"), rig.state, frame_rate=40.0)  # 10 fields/s
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from leukoscope.acquisition_files import storage
from leukoscope.errors import CameraError, CameraTimeout
from leukoscope.types import Frame, FrameSet, Modality


class ReplayCamera:
    """Software-triggered camera replaying the fields saved in `folder`, `frame_rate` frames/s."""

    def __init__(self, folder: Path, state: Any, frame_rate: float) -> None:
        if frame_rate <= 0:
            raise CameraError(f"replay frame rate must be > 0, got {frame_rate}")
        self.folder = Path(folder)
        self.state = state  # .fov and .lit() -> {Modality: drive}: the simulated rig's state
        self.period_s = 1.0 / frame_rate
        self.fields = storage.list_fields(self.folder)
        if not self.fields:
            raise CameraError(f"{self.folder}: no saved fields to replay")
        self._field: tuple[int, FrameSet] | None = None
        self._queue: deque[tuple[float, Frame]] = deque()
        self._ready = threading.Condition()
        self._next_free = 0.0  # when the sensor can deliver its next frame (monotonic)
        self._next_id = 0
        self._streaming = False

    def configure(
        self,
        *,
        exposure_us: float | None = None,
        gain_db: float | None = None,
        pixel_format: str | None = None,
        software_trigger: bool = True,
    ) -> None:
        """Settings are those the frames were saved with; nothing to apply."""

    def start(self) -> None:
        """Arm the acquisition."""
        self._streaming = True

    def flush(self) -> int:
        """Drop frames not fetched yet."""
        with self._ready:
            dropped = len(self._queue)
            self._queue.clear()
        return dropped

    def _frames(self, fov: int) -> FrameSet:
        saved = self.fields[fov % len(self.fields)]
        if self._field is None or self._field[0] != saved:
            self._field = (saved, storage.read_field(self.folder, saved))
        return self._field[1]

    def trigger(self) -> None:
        """Expose the lit light's frame of the current field; due one period after the last."""
        if not self._streaming:
            raise CameraError("replay camera is not started; call start() first")
        lit = [m for m, drive in self.state.lit().items() if drive > 0]
        fields = self._frames(self.state.fov)
        modality = lit[0] if len(lit) == 1 else fields.modalities[0]
        image = fields.frames[fields.modalities.index(modality)]
        now = time.monotonic()
        due = max(now, self._next_free) + self.period_s
        self._next_free = due
        lit_one: Modality | None = modality if len(lit) == 1 else None
        frame = Frame(image, self._next_id, time.time() + (due - now), None, lit_one)
        self._next_id += 1
        with self._ready:
            self._queue.append((due, frame))
            self._ready.notify_all()

    def fetch(self, timeout_s: float) -> Frame:
        """The next frame once it is due; CameraTimeout after `timeout_s`."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._ready:
            if not self._ready.wait_for(lambda: bool(self._queue), timeout=max(timeout_s, 0.0)):
                raise CameraTimeout(f"replay camera: no frame within {timeout_s:g} s")
            due, frame = self._queue[0]
            if due > deadline:
                raise CameraTimeout(f"replay camera: no frame within {timeout_s:g} s")
            self._queue.popleft()
        time.sleep(max(0.0, due - time.monotonic()))
        return frame

    def stop(self) -> None:
        """Stop streaming."""
        self._streaming = False

    def close(self) -> None:
        """Release the saved field held."""
        self.stop()
        self.flush()
        self._field = None

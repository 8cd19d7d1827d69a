"""The Camera protocol every backend implements (GenTL via harvesters, or simulated)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from leukoscope.types import Frame


@runtime_checkable
class Camera(Protocol):
    """A triggered camera: configure, start, trigger, fetch(timeout) -> Frame, stop, close."""

    def configure(
        self,
        *,
        exposure_us: float | None = None,
        gain_db: float | None = None,
        pixel_format: str | None = None,
        software_trigger: bool = True,
    ) -> None:
        """Apply settings; raise CameraError naming any setting the device cannot take."""

    def start(self) -> None:
        """Start streaming (in software-trigger mode: arm the acquisition)."""

    def flush(self) -> int:
        """Drop stale buffered frames; return how many were dropped."""

    def trigger(self) -> None:
        """Fire one software trigger."""

    def fetch(self, timeout_s: float) -> Frame:
        """Return the next frame (data copied out of any driver buffer); CameraTimeout after timeout."""

    def stop(self) -> None:
        """Stop streaming."""

    def close(self) -> None:
        """Release the device."""

"""State shared by the simulated rig's parts: which lights are lit, at what intensity, on which field.

The emulated light-controller firmware writes it; the simulated camera reads it, so a wrong light
sequence shows in the images exactly as it would on the real rig.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from leukoscope.types import MODALITIES, Modality


@dataclass
class SimulatedRigState:
    """Thread-safe shared state of the simulated rig."""

    channel_of: dict[int, Modality] = field(
        default_factory=lambda: {i + 1: m for i, m in enumerate(MODALITIES)}
    )
    fov: int = 0
    _lit: dict[int, float] = field(default_factory=dict)  # channel -> intensity percent (0 = off)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_channel(self, channel: int, intensity_percent: float) -> None:
        """Set a controller channel's drive; 0 turns it off."""
        with self._lock:
            if intensity_percent > 0:
                self._lit[channel] = intensity_percent
            else:
                self._lit.pop(channel, None)

    def all_off(self) -> None:
        """Turn every channel off."""
        with self._lock:
            self._lit.clear()

    def lit(self) -> dict[Modality, float]:
        """The modalities whose light is on now, with their intensity in percent."""
        with self._lock:
            return {self.channel_of[c]: v for c, v in self._lit.items() if c in self.channel_of}

    def move_to(self, fov: int) -> None:
        """Move the (simulated) stage to another field of view."""
        with self._lock:
            self.fov = fov

"""Where things may go on a field: the one overlap test every drawn object uses."""

from __future__ import annotations

import math
from collections.abc import Iterable

Disc = tuple[float, float, float]
"""A placed object's centre and extent: y, x, radius (pixels)."""


def clear_of(y: float, x: float, radius: float, discs: Iterable[Disc], gap: float = 0.0) -> bool:
    """True when a disc of `radius` at (y, x) stays more than `gap` away from every one of `discs`."""
    return all(math.hypot(y - cy, x - cx) > extent + radius + gap for cy, cx, extent in discs)

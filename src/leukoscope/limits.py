"""What a microscope can produce: the bounds every door checks (config, acquisition.json, wire).

A number outside these is refused where it enters, so no stage ever sizes memory or work from it
(a pixel size of 1e-5 um once made segmentation ask for 131 GiB).
"""

from __future__ import annotations

MIN_PIXEL_SIZE_UM = 0.01
"""Smallest pixel size in the sample plane, um (far below any optical resolution)."""
MAX_PIXEL_SIZE_UM = 20.0
"""Largest pixel size in the sample plane, um (a white cell would be a few pixels)."""
MAX_FRAME_SIDE = 16384
"""Largest frame side, px (a 268-megapixel sensor)."""
MAX_EXPOSURE_US = 10_000_000.0
"""Longest exposure, us (10 s)."""
BIT_DEPTHS = (8, 10, 12, 14, 16)
"""Camera bit depths (GenICam Mono8..Mono16)."""
MAX_BIT_DEPTH = 16

DEFAULT_CROP_UM = 24.0
"""Physical side of a cell crop in the sample plane, um (white cells are 7-20 um): segmentation's
default, the training set's and the pictures'."""

MAX_INDEX = 2**31 - 1
"""Largest field or cell index anywhere (a sample of 2 billion fields is not a microscope's)."""

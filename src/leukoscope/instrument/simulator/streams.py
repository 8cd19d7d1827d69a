"""Every random stream of the simulator, in one place.

Each draw comes from `np.random.default_rng([seed, stream, index])`, so one purpose never shares
numbers with another, and adding a purpose (a new stream) leaves every other draw as it was. `unique`
refuses a number given twice; pick the next free one for something new.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class Stream(IntEnum):
    """What a random stream is for (the number is part of every seeded output: never renumber)."""

    FIELD = 1  # white cells of a field: count, classes, shapes, places (sample.py)
    CANVAS = 2  # red-cell layers (sample.py)
    CELL_TEXTURE = 3  # chromatin and cytoplasm texture windows (render.py)
    PLATELETS = 4  # where platelets lie (platelets.py)
    PLATELET_TEXTURE = 5  # their granules (render.py)
    DEBRIS = 6  # where debris lies and what it is (debris.py)
    CAMERA_NOISE = 7  # the simulated camera's noise per frame (camera.py)
    DRIFT = 8  # focus and illumination per field (drift.py)
    DEBRIS_TEXTURE = 10  # debris grain (render.py)
    CAPTURE_NOISE = 11  # noise of a frame set captured without the camera loop (frames.py)
    SMUDGE = 12  # smudge cells (smudge.py)
    SMUDGE_TEXTURE = 13  # their chromatin lace (render.py)
    LOOKALIKE = 14  # which white cells look partway like another class, and how (lookalike.py)
    ATYPICAL = (
        15  # which cells are drawn outside the five (IG, NRBC, BLAST, RL), and how (atypical.py)
    )
    DATASET_CELLS = 21  # which cells of a field a training set takes, and their jitter (dataset.py)

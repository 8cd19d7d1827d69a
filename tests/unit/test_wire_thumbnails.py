"""Cell pictures on the wire: made by the segment worker, carried beside the crops, checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leukoscope.errors import WireError
from leukoscope.pictures.thumbnail import thumbnail
from leukoscope.pipeline import wire
from leukoscope.types import MODALITIES, CellCrop, CellKey


def batch(thumbnails: tuple[bytes, ...]) -> wire.CellBatch:
    rng = np.random.default_rng(0)
    cells = tuple(
        CellCrop(CellKey("s", 3, i), (0, 0, 8, 8), rng.random((4, 8, 8), dtype=np.float32))
        for i in range(2)
    )
    return wire.CellBatch("s", 3, 2, cells, MODALITIES, thumbnails=thumbnails)


def test_thumbnails_round_trip_byte_for_byte() -> None:
    original = batch(tuple(thumbnail(c.crops) for c in batch(()).cells))
    assert all(png.startswith(b"\x89PNG") for png in original.thumbnails)
    decoded = wire.decode(wire.encode(original))
    assert isinstance(decoded, wire.CellBatch)
    assert decoded.thumbnails == original.thumbnails


def test_a_batch_without_thumbnails_carries_none() -> None:
    frames = wire.encode(batch(()))
    assert [a["name"] for a in json.loads(bytes(frames[0]))["arrays"]] == ["crops"]
    decoded = wire.decode(frames)
    assert isinstance(decoded, wire.CellBatch) and decoded.thumbnails == ()


def test_thumbnails_must_match_the_cells() -> None:
    with pytest.raises(WireError, match="thumbnails for 2 cells"):
        wire.encode(batch((b"one",)))
    frames = wire.encode(batch((b"a", b"bb")))
    header = json.loads(bytes(frames[0]))
    header["thumbnail_bytes"] = [1, 5]  # longer than the row sent
    with pytest.raises(WireError, match="thumbnails"):
        wire.decode([json.dumps(header).encode(), *frames[1:]])
    header["thumbnail_bytes"] = [1]
    with pytest.raises(WireError, match="thumbnail sizes for 2 cells"):
        wire.decode([json.dumps(header).encode(), *frames[1:]])

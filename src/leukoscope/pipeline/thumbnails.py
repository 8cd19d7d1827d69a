"""The cell pictures a segment worker sent with a batch (made by `leukoscope.pictures.thumbnail`
where the crops are made, so the central process never holds crops for pictures)."""

from __future__ import annotations

from collections.abc import Iterable

from leukoscope.pictures.png import PNG_SIGNATURE
from leukoscope.pipeline import wire
from leukoscope.types import CellCrop, CellKey


def thumbnails_of(batch: wire.CellBatch, cells: Iterable[CellCrop]) -> dict[CellKey, bytes]:
    """The pictures the segment worker sent with `cells` of its batch, by cell key (cells without
    one, or with bytes that are not a PNG, are left out: the gallery shows none for them)."""
    if len(batch.thumbnails) != len(batch.cells):
        return {}
    sent = {c.key: png for c, png in zip(batch.cells, batch.thumbnails, strict=True)}
    return {c.key: png for c in cells if (png := sent.get(c.key, b"")).startswith(PNG_SIGNATURE)}

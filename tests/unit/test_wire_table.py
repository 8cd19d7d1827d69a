"""The wire's kind table: one entry per kind, header fields copied by name both ways."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from leukoscope.errors import WireError
from leukoscope.pipeline import wire
from leukoscope.pipeline.wire import kinds
from leukoscope.pipeline.wire.bounds import Strict
from leukoscope.pipeline.wire.fields import fill, take
from leukoscope.types import MODALITIES, CellCrop, CellKey, FrameSet


def test_every_kind_has_one_entry_named_as_its_header_says() -> None:
    assert set(wire.KINDS) == set(kinds.KINDS)
    assert len(kinds.KIND_OF_CLASS) == len(kinds.KINDS)  # one message class per kind
    for name, kind in kinds.KINDS.items():
        assert kind.header.model_fields["kind"].default == name
        assert wire.topic(name) == b'{"v":1,"kind":"' + name.encode() + b'"'


def test_every_frameset_header_field_comes_from_the_message_and_goes_back() -> None:
    frames = tuple(np.full((3, 4), i, np.uint16) for i, _ in enumerate(MODALITIES))
    fs = FrameSet(
        sample_id="S1",
        fov=7,
        modalities=MODALITIES,
        frames=frames,
        timestamps_s=(1.0, 2.0, 3.0, 4.0),
        exposures_us=(10.0, 20.0, 30.0, 40.0),
        lit=MODALITIES,
        shifts_px=((0.5, -0.5),) * 4,
        settings_digest="abc",
        pixel_size_um=0.3,
        bit_depth=12,
    )
    message = wire.FrameSetMessage(frameset=fs, t_available_s=5.0, ticket="beef")
    header = json.loads(wire.encode(message)[0])
    expected = set(kinds.FrameSetHeader.model_fields) | {"v", "arrays"}
    assert set(header) == expected
    assert header["bit_depth"] == 12 and header["ticket"] == "beef" and header["fov"] == 7
    decoded = wire.decode([bytes(f) for f in wire.encode(message)])
    assert isinstance(decoded, wire.FrameSetMessage)
    for name in kinds.FrameSetHeader.model_fields:
        if name != "kind":
            source = decoded if hasattr(message, name) else decoded.frameset
            origin = message if hasattr(message, name) else fs
            assert getattr(source, name) == getattr(origin, name), name


def test_a_header_field_without_its_attribute_is_a_clear_error() -> None:
    class WithNote(Strict):
        fov: int
        note: str

    with pytest.raises(WireError, match="'note'"):
        fill(WithNote, CellKey("S1", 1, 2))


def test_take_builds_objects_from_same_named_header_fields() -> None:
    meta = kinds.CellMeta(cell_index=3, bbox=(1, 2, 3, 4), area_px=5.0)
    crop = take(CellCrop, meta, key=CellKey("S1", 1, 3), crops=np.zeros((1, 2, 2)))
    assert crop.bbox == (1, 2, 3, 4) and crop.area_px == 5.0
    assert crop.fluorescence_mean == 0.0  # the header's default, copied
    assert {f.name for f in dataclasses.fields(CellCrop)} <= {
        *kinds.CellMeta.model_fields,
        "key",
        "crops",
    }

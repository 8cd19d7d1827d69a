"""The wire codec: valid messages round-trip exactly; anything malformed raises WireError only."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from leukoscope import limits
from leukoscope.errors import WireError
from leukoscope.ids import SAMPLE_ID_PATTERN
from leukoscope.pipeline import wire
from leukoscope.types import (
    CELL_CLASSES,
    MODALITIES,
    CellCrop,
    CellKey,
    CellResult,
    ClassCount,
    FrameSet,
    SampleStatus,
    SampleSummary,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
printable = st.characters(blacklist_categories=("Cc", "Cs"))
sample_ids = st.from_regex(SAMPLE_ID_PATTERN, fullmatch=True)
exposures = st.floats(0.0, limits.MAX_EXPOSURE_US)
shifts = st.floats(-limits.MAX_FRAME_SIDE, limits.MAX_FRAME_SIDE)
names = st.text(printable, max_size=8)
fovs = st.integers(0, 10_000)
modality_sets = st.sets(st.sampled_from(MODALITIES), min_size=1).map(
    lambda chosen: tuple(m for m in MODALITIES if m in chosen)
)
wire_dtypes = st.sampled_from(list(wire.ALLOWED_DTYPES))
bboxes = st.tuples(*[st.integers(-(2**31), 2**31 - 1)] * 4)


@st.composite
def framesets(draw: st.DrawFn) -> wire.FrameSetMessage:
    modalities = draw(modality_sets)
    n = len(modalities)
    shape = draw(st.sampled_from([(3, 5), (4, 4, 3), (1, 1), (0, 7)]))
    dtype = draw(st.sampled_from(["uint8", "uint16"]))
    frames = tuple(draw(hnp.arrays(dtype, shape)) for _ in range(n))
    frameset = FrameSet(
        sample_id=draw(sample_ids),
        fov=draw(fovs),
        modalities=modalities,
        frames=frames,
        timestamps_s=tuple(draw(st.lists(finite, min_size=n, max_size=n))),
        exposures_us=tuple(draw(st.lists(exposures, min_size=n, max_size=n))),
        lit=tuple(draw(st.lists(st.sampled_from(MODALITIES), min_size=n, max_size=n))),
        shifts_px=tuple(draw(st.lists(st.tuples(shifts, shifts), min_size=n, max_size=n))),
        settings_digest=draw(names),
        pixel_size_um=draw(st.floats(0.01, 10.0)),
    )
    return wire.FrameSetMessage(frameset=frameset, t_available_s=draw(finite))


@st.composite
def cell_batches(draw: st.DrawFn) -> wire.CellBatch:
    sample_id, fov = draw(sample_ids), draw(fovs)
    modalities = draw(modality_sets)
    n = draw(st.integers(0, 4))
    cell_count = n + draw(st.integers(0, 3))
    indices = draw(
        st.lists(st.integers(0, max(cell_count - 1, 0)), min_size=n, max_size=n, unique=True)
    )
    dtype = draw(wire_dtypes)
    shape = (len(modalities), *draw(st.sampled_from([(4, 4), (3, 3, 3), (2, 5)])))
    cells = tuple(
        CellCrop(
            key=CellKey(sample_id, fov, i),
            bbox=draw(bboxes),
            crops=draw(hnp.arrays(dtype, shape)),
            area_px=draw(finite),
            fluorescence_mean=draw(finite),
        )
        for i in indices
    )
    return wire.CellBatch(
        sample_id=sample_id,
        fov=fov,
        cell_count=cell_count,
        cells=cells,
        modalities=modalities,
        worker=draw(names),
        t_available_s=draw(finite),
    )


@st.composite
def result_batches(draw: st.DrawFn) -> wire.ResultBatch:
    heads = draw(st.integers(0, 3))
    k = len(CELL_CLASSES)
    keys = draw(
        st.lists(st.tuples(sample_ids, fovs, st.integers(0, 1000)), max_size=5, unique=True)
    )
    results = tuple(
        CellResult(
            key=CellKey(*key),
            cell_class=draw(st.sampled_from(CELL_CLASSES)),
            probabilities=tuple(draw(st.lists(finite, min_size=k, max_size=k))),
            head_probabilities=tuple(
                tuple(draw(st.lists(finite, min_size=k, max_size=k))) for _ in range(heads)
            ),
            disagreement=draw(finite),
            flagged=draw(st.booleans()),
            flag_reason=draw(st.text(max_size=10)),
            bbox=draw(bboxes),
        )
        for key in keys
    )
    extra = draw(st.dictionaries(names, st.text(max_size=5), max_size=2))
    return wire.ResultBatch(results=results, worker=draw(names), extra=extra)


def summaries() -> st.SearchStrategy[SampleSummary]:
    rows = st.lists(
        st.builds(
            ClassCount,
            cell_class=st.sampled_from(CELL_CLASSES),
            count=st.integers(0, 500),
            percent=finite,
            ci_low_percent=finite,
            ci_high_percent=finite,
        ),
        max_size=5,
    )
    return st.builds(
        SampleSummary,
        sample_id=sample_ids,
        classes=rows,
        cells_counted=st.integers(0, 1000),
        cells_flagged=st.integers(0, 1000),
        fields_done=st.integers(0, 1000),
        fields_total=st.none() | st.integers(0, 1000),
        status=st.sampled_from(SampleStatus),
        status_reason=st.text(max_size=10),
        elapsed_s=finite,
        timings=st.dictionaries(st.text(max_size=5), finite, max_size=3),
    )


simple_messages = st.one_of(
    st.builds(
        wire.SampleStart,
        sample_id=sample_ids,
        fields_total=st.none() | st.integers(0, 1000),
        pixel_size_um=st.none() | st.floats(0.01, 10),
        started_s=finite,
    ),
    st.builds(wire.SampleEnd, sample_id=sample_ids, fields_total=st.integers(0, 1000)),
    st.builds(wire.FieldDone, sample_id=sample_ids, fov=fovs, cell_count=st.integers(0, 50)),
    st.builds(wire.FieldFailed, sample_id=sample_ids, fov=fovs, reason=st.text(max_size=20)),
    st.builds(wire.Hello, worker=names, role=st.sampled_from(["segment", "classify"])),
    st.builds(
        wire.Heartbeat,
        worker=names,
        role=st.just("classify"),
        in_flight=st.lists(st.tuples(sample_ids, fovs), max_size=3).map(tuple),
    ),
    st.builds(wire.SummaryMessage, summary=summaries(), sent_s=finite),
    st.builds(wire.Ready, worker=names, role=st.just("segment"), credit=st.integers(1, 1024)),
)

messages = st.one_of(framesets(), cell_batches(), result_batches(), simple_messages)


def assert_same(a: Any, b: Any) -> None:
    """Deep equality that compares arrays by dtype, shape and content."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b)
        for name in a.__dataclass_fields__:
            assert_same(getattr(a, name), getattr(b, name))
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b
        assert type(a) is type(b) or (isinstance(a, float) and isinstance(b, float))


@SETTINGS
@given(messages)
def test_valid_messages_round_trip_exactly(message: wire.Message) -> None:
    frames = wire.encode(message)
    assert isinstance(frames[0], bytes)
    assert all(isinstance(f, (bytes, memoryview)) for f in frames)
    header = json.loads(frames[0])
    assert header["v"] == 1 and len(header["arrays"]) == len(frames) - 1
    assert frames[0].startswith(wire.topic(header["kind"]))
    assert_same(wire.decode([bytes(f) for f in frames]), message)


def _mutated(frames: list[bytes], data: st.DataObject) -> list[bytes]:
    frames = list(frames)
    choice = data.draw(st.integers(0, 6), label="mutation")
    if choice == 0:  # flip bytes in the header
        header = bytearray(frames[0])
        for _ in range(data.draw(st.integers(1, 4))):
            header[data.draw(st.integers(0, len(header) - 1))] = data.draw(st.integers(0, 255))
        frames[0] = bytes(header)
    elif choice == 1:  # replace one header value with arbitrary JSON
        header = json.loads(frames[0])
        key = data.draw(st.sampled_from(sorted(header)))
        header[key] = data.draw(_json_values)
        frames[0] = json.dumps(header).encode()
    elif choice == 2 and len(frames) > 1:  # resize a buffer
        i = data.draw(st.integers(1, len(frames) - 1))
        frames[i] = frames[i] + b"\0" * data.draw(st.integers(1, 9))
    elif choice == 3:  # drop or add a frame
        if data.draw(st.booleans()):
            frames.append(data.draw(st.binary(max_size=16)))
        else:
            frames.pop(data.draw(st.integers(0, len(frames) - 1)))
    elif choice == 4:  # corrupt the array specs
        header = json.loads(frames[0])
        if header["arrays"]:
            spec = header["arrays"][data.draw(st.integers(0, len(header["arrays"]) - 1))]
            spec[data.draw(st.sampled_from(["name", "dtype", "shape"]))] = data.draw(_json_values)
        frames[0] = json.dumps(header).encode()
    elif choice == 5:  # arbitrary bytes as header
        frames[0] = data.draw(st.binary(max_size=64))
    else:  # truncate the header
        frames[0] = frames[0][: data.draw(st.integers(0, len(frames[0])))]
    return frames


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@SETTINGS
@given(messages, st.data())
def test_mutated_messages_decode_or_raise_wire_error(message: wire.Message, data: Any) -> None:
    frames = _mutated([bytes(f) for f in wire.encode(message)], data)
    try:
        decoded = wire.decode(frames)
    except WireError as exc:
        assert str(exc)
    else:  # a mutation can leave a valid message; then it must be one of ours
        assert isinstance(decoded, wire.Message)


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_random_frames_raise_wire_error(frames: list[bytes]) -> None:
    with pytest.raises(WireError):
        wire.decode(frames)


def header(kind: str, arrays: list[dict[str, Any]] | None = None, **fields: object) -> bytes:
    return json.dumps({"v": 1, "kind": kind, **fields, "arrays": arrays or []}).encode()


FIELD_DONE: dict[str, Any] = {"sample_id": "s", "fov": 0, "cell_count": 1}


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([], "1 to 17 frames"),
        ([b"\xff\xfe"], "not UTF-8 JSON"),
        ([b"[1, 2]"], "must be a JSON object"),
        ([b'{"v": 2, "kind": "field_done"}'], "unsupported protocol version 2"),
        ([b'{"v": true, "kind": "field_done"}'], "unsupported protocol version True"),
        ([b'{"v": 1, "kind": "pickle"}'], "unknown message kind 'pickle'"),
        ([header("field_done", sample_id="s", fov=-1, cell_count=0)], "fov"),
        ([header("field_done", **FIELD_DONE, extra=1)], "Extra inputs"),
        ([header("field_done", sample_id="s", fov="1", cell_count=1)], "fov"),
        ([b"[" * 5000], "not UTF-8 JSON"),
        ([b'{"v":1,"kind":"sample_end","sample_id":"s","fields_total":NaN}'], "fields_total"),
        ([pickle.dumps({"v": 1})], "not UTF-8 JSON"),
        (["text"], "not a byte buffer"),
        ([b"{}"] * 40, "1 to 17 frames"),
    ],
)
def test_malformed_headers_are_rejected_with_a_clear_error(frames: list[Any], message: str) -> None:
    with pytest.raises(WireError, match=message):
        wire.decode(frames)


def _frameset_header(shape: list[int], dtype: str = "uint8") -> bytes:
    return header(
        "frameset",
        [{"name": "color1", "dtype": dtype, "shape": shape}],
        sample_id="s",
        fov=0,
        modalities=["color1"],
        timestamps_s=[0.0],
        exposures_us=[1.0],
        lit=["color1"],
        shifts_px=[[0.0, 0.0]],
        pixel_size_um=0.25,
    )


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([_frameset_header([2, 2]), b"abc"], "needs 4 bytes, buffer has 3"),
        ([_frameset_header([2, 2])], "lists 1 arrays but 0 buffers"),
        ([_frameset_header([2, 2], "object"), b"abcd"], "dtype"),
        ([_frameset_header([2, 2], "bool"), b"abcd"], "dtype"),
        ([_frameset_header([65537, 1]), b""], "shape"),
        ([_frameset_header([1, 1, 1, 1, 1, 1]), b"a"], "shape"),
        ([_frameset_header([4]), b"abcd"], "2 or 3"),
        ([_frameset_header([-1, 2]), b""], "shape"),
        # 65536^3 * 8 bytes would be 2 PiB: refused from the header alone, nothing allocated
        ([_frameset_header([65536, 65536, 65536], "float64"), b""], "limit"),
    ],
)
def test_bad_arrays_are_rejected_before_allocation(frames: list[bytes], message: str) -> None:
    with pytest.raises(WireError, match=message):
        wire.decode(frames)


def test_byte_limit_is_configurable() -> None:
    frames = [_frameset_header([64, 64]), bytes(64 * 64)]
    assert isinstance(wire.decode(frames), wire.FrameSetMessage)
    with pytest.raises(WireError, match="limit 4095"):
        wire.decode(frames, wire.WireLimits(max_bytes=4095))
    with pytest.raises(WireError, match="header is"):
        wire.decode(frames, wire.WireLimits(max_header_bytes=10))


def test_decoded_arrays_are_views_of_the_received_buffers() -> None:
    frames = [_frameset_header([2, 2]), b"abcd"]
    frame = wire.decode(frames).frameset.frames[0]  # type: ignore[union-attr]
    assert not frame.flags.writeable and not frame.flags.owndata
    assert frame.tolist() == [[97, 98], [99, 100]]


def test_non_finite_values_are_refused_when_encoding() -> None:
    with pytest.raises(WireError, match="cannot be encoded"):
        wire.encode(wire.CellBatch("s", 0, 0, t_available_s=float("nan")))


def test_inconsistent_batches_are_refused_when_encoding() -> None:
    crops = [np.zeros((4, 8, 8), np.uint8), np.zeros((4, 9, 9), np.uint8)]
    cells = tuple(CellCrop(CellKey("s", 0, i), (0, 0, 1, 1), c) for i, c in enumerate(crops))
    with pytest.raises(WireError, match="same shape"):
        wire.encode(wire.CellBatch("s", 0, 2, cells))
    with pytest.raises(WireError, match="not in field"):
        wire.encode(wire.CellBatch("other", 0, 2, cells[:1]))
    bad_dtype = CellCrop(CellKey("s", 0, 0), (0, 0, 1, 1), np.zeros((4, 2, 2), bool))
    with pytest.raises(WireError, match="not allowed"):
        wire.encode(wire.CellBatch("s", 0, 1, (bad_dtype,)))
    short = CellResult(CellKey("s", 0, 0), CELL_CLASSES[0], (1.0, 0.0))
    with pytest.raises(WireError, match="cannot encode"):
        wire.encode(wire.ResultBatch((short,)))
    with pytest.raises(WireError, match="not a wire message"):
        wire.encode("hello")  # type: ignore[arg-type]


def test_cells_decode_checks_indices_and_crop_shape() -> None:
    crops = np.zeros((1, 4, 2, 2), np.uint8)
    cells = [{"cell_index": 3, "bbox": [0, 0, 1, 1]}]
    spec = [{"name": "crops", "dtype": "uint8", "shape": [1, 4, 2, 2]}]
    base = {"sample_id": "s", "fov": 0, "modalities": [m.value for m in MODALITIES]}
    with pytest.raises(WireError, match="cell_count"):
        wire.decode([header("cells", spec, **base, cell_count=3, cells=cells), crops.tobytes()])
    ok = wire.decode([header("cells", spec, **base, cell_count=4, cells=cells), crops.tobytes()])
    assert isinstance(ok, wire.CellBatch) and ok.cells[0].key == CellKey("s", 0, 3)
    three = {**base, "modalities": ["color1", "color2", "color3"]}
    with pytest.raises(WireError, match="crops shape"):
        wire.decode([header("cells", spec, **three, cell_count=4, cells=cells), crops.tobytes()])


def test_empty_field_is_reported_with_its_count() -> None:
    decoded = wire.decode(wire.encode(wire.CellBatch("s", 7, 0)))
    assert isinstance(decoded, wire.CellBatch)
    assert (decoded.fov, decoded.cell_count, decoded.cells) == (7, 0, ())


def test_result_with_nan_probabilities_is_rejected() -> None:
    result = CellResult(CellKey("s", 0, 0), CELL_CLASSES[0], (float("nan"), 0, 0, 0, 0))
    with pytest.raises(WireError, match="finite"):
        wire.decode(wire.encode(wire.ResultBatch((result,))))


def test_topic_is_the_header_prefix_of_its_kind() -> None:
    frames = wire.encode(wire.SampleEnd(sample_id="s", fields_total=2))
    assert bytes(frames[0]).startswith(wire.topic("sample_end"))
    assert not bytes(frames[0]).startswith(wire.topic("summary"))
    with pytest.raises(WireError):
        wire.topic("nope")


def test_encode_refuses_what_the_decoder_would_refuse() -> None:
    with pytest.raises(WireError, match="sample_id"):
        wire.encode(wire.CellBatch("bad\x00id", 0, 0))
    crop = CellCrop(CellKey("s", 0, 0), (0, 0, 2**40, 1), np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(WireError, match="bbox"):
        wire.encode(wire.CellBatch("s", 0, 1, (crop,)))
    bad = wire.SampleEnd.model_construct(sample_id="s", fields_total=-5)
    with pytest.raises(WireError, match="fields_total"):
        wire.encode(bad)


def _physical_frameset(**changes: Any) -> list[bytes]:
    fields: dict[str, Any] = {
        "sample_id": "s",
        "fov": 0,
        "modalities": ["color1"],
        "timestamps_s": [0.0],
        "exposures_us": [1.0],
        "lit": ["color1"],
        "shifts_px": [[0.0, 0.0]],
        "pixel_size_um": 0.25,
    }
    shape = changes.pop("shape", [2, 2])
    fields.update(changes)
    spec = [{"name": "color1", "dtype": "uint8", "shape": shape}]
    return [header("frameset", spec, **fields), bytes(int(np.prod(shape)))]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pixel_size_um": 1e-5}, "pixel_size_um"),  # once made segmentation ask for 131 GiB
        ({"pixel_size_um": 1e3}, "pixel_size_um"),
        ({"exposures_us": [1e12]}, "exposures_us"),
        ({"exposures_us": [-1.0]}, "exposures_us"),
        ({"bit_depth": 64}, "bit_depth"),
        ({"shifts_px": [[1e9, 0.0]]}, "shifts_px"),
        ({"shape": [1, limits.MAX_FRAME_SIDE + 1]}, "at most"),
    ],
)
def test_physical_quantities_a_microscope_cannot_produce_are_refused(
    changes: dict[str, Any], field: str
) -> None:
    assert isinstance(wire.decode(_physical_frameset()), wire.FrameSetMessage)
    with pytest.raises(WireError, match=field):
        wire.decode(_physical_frameset(**changes))

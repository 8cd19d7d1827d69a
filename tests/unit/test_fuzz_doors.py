"""Fuzz the doors a file or a peer controls (acquisition.json, field files, wire headers): every
input is read or refused with our one error type; no other exception, no hang, no big allocation."""

from __future__ import annotations

import contextlib
import itertools
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leukoscope.acquisition_files import storage
from leukoscope.errors import StorageError, WireError
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.pipeline import wire

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.just("../../etc")
    | st.just(1e308),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes]:
    folder = tmp_path_factory.mktemp("acq") / "S-1"
    generate_acquisition(folder, "S-1", 1, frame_shape=(32, 32), cells_per_field=0.0)
    meta = json.loads((folder / storage.META_FILE).read_text())
    return meta, storage.field_path(folder, 0).read_bytes()


def _write(folder: Path, meta: object, field: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / storage.META_FILE).write_text(json.dumps(meta))
    storage.field_path(folder, 0).write_bytes(field)


@FUZZ
@given(data=st.data())
def test_acquisition_json_is_read_or_refused(
    template: tuple[dict[str, Any], bytes], tmp_path: Path, data: st.DataObject
) -> None:
    meta = dict(template[0])
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from([*meta, "extra"]))
        if data.draw(st.booleans()):
            meta[key] = data.draw(json_values)
        else:
            meta.pop(key, None)
    folder = tmp_path / f"a{next(_counter)}"
    _write(folder, meta, template[1])
    with contextlib.suppress(StorageError):
        storage.read_acquisition_meta(folder)


def test_deeply_nested_acquisition_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / storage.META_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(StorageError, match=r"acquisition\.json"):
        storage.read_acquisition_meta(tmp_path)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert"]),
        st.integers(0, 10**6),
        st.integers(0, 255),
        st.binary(max_size=16),
    ),
    min_size=1,
    max_size=8,
)
_counter = itertools.count()


@FUZZ
@given(changes=mutations)
def test_field_file_is_read_or_refused_without_a_big_allocation(
    template: tuple[dict[str, Any], bytes], tmp_path: Path, changes: list[Any]
) -> None:
    field = bytearray(template[1])
    for action, where, value, insert in changes:
        at = where % max(len(field), 1)
        if action == "flip" and field:
            field[at] = value
        elif action == "cut":
            del field[at + 1 :]
        else:
            field[at:at] = insert
    folder = tmp_path / f"f{next(_counter)}"
    _write(folder, template[0], bytes(field))
    tracemalloc.start()
    try:
        storage.read_field(folder, 0)
    except StorageError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024


@FUZZ
@given(
    kind=st.sampled_from(["frameset", "cells", "result", "sample_start", "sample_end", "ready"]),
    fields=st.dictionaries(
        st.sampled_from(
            ["sample_id", "fov", "pixel_size_um", "exposures_us", "cell_count", "fields_total",
             "credit", "ticket", "tickets", "modalities", "shifts_px", "bit_depth", "worker"]
        ),
        json_values,
    ),
)  # fmt: skip
def test_wire_headers_decode_or_raise_wire_error(kind: str, fields: dict[str, Any]) -> None:
    header = json.dumps({"v": 1, "kind": kind, **fields, "arrays": []}).encode()
    with contextlib.suppress(WireError):
        wire.decode([header])

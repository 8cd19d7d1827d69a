"""Sample ids are names, not paths: one rule at every door (ids, wire, acquisition.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leukoscope.acquisition_files import storage
from leukoscope.errors import ParameterError, StorageError, WireError
from leukoscope.ids import SAMPLE_ID_MAX, check_sample_id, is_sample_id
from leukoscope.pipeline import wire

BAD = [
    "",
    ".",
    "..",
    "../escaped",
    "/abs/path",
    "a/b",
    "a\\b",
    "-rf",
    ".hidden",
    "a b",
    "line\nbreak",
    "tab\t",
    "nul\x00",
    "é",
    "x" * (SAMPLE_ID_MAX + 1),
]
GOOD = ["S-0042", "demo", "e2e", "a.b_c-1", "X" * SAMPLE_ID_MAX]


@pytest.mark.parametrize("value", BAD)
def test_bad_ids_are_refused_with_the_rule(value: str) -> None:
    assert not is_sample_id(value)
    with pytest.raises(ParameterError, match="letters, digits"):
        check_sample_id(value)


@pytest.mark.parametrize("value", GOOD)
def test_names_pass(value: str) -> None:
    assert check_sample_id(value) == value


@pytest.mark.parametrize("value", ["../escaped", "a/b", "line\nbreak"])
def test_wire_refuses_path_like_ids_both_ways(value: str) -> None:
    with pytest.raises(WireError, match="sample_id"):
        wire.encode(wire.SampleEnd.model_construct(sample_id=value, fields_total=1))
    header = json.dumps(
        {"v": 1, "kind": "sample_end", "sample_id": value, "fields_total": 1, "arrays": []}
    )
    with pytest.raises(WireError, match="sample_id"):
        wire.decode([header.encode()])


def test_acquisition_json_with_a_path_id_is_refused(tmp_path: Path) -> None:
    meta = {
        "sample_id": "../../etc",
        "modalities": ["color1"],
        "pixel_size_um": 0.25,
        "bit_depth": 8,
        "frame_shape": [4, 4],
        "channels": [{"modality": "color1", "exposure_us": 10.0, "intensity_percent": 5.0}],
    }
    (tmp_path / storage.META_FILE).write_text(json.dumps(meta))
    with pytest.raises(StorageError, match="sample_id"):
        storage.read_acquisition_meta(tmp_path)

"""`failed_fields.json` is read bounded when a run resumes (docs/security.md, `run --resume`): only
entries of a field below the acquired count are kept, each reason cut to at most 4000 characters,
and malformed entries are left out; a hostile file neither makes millions of fields nor floods the
store with text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from leukoscope.config import RigConfig
from leukoscope.instrument.acquisition import FAILED_FIELDS_FILE, Acquisition
from leukoscope.instrument.rig import Rig, SimulationOptions, open_rig
from leukoscope.pipeline.resume import resume_point

MAX_REASON = 4000  # "reason at most 4000 characters", docs/security.md


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """Fields 0 and 1 saved, field 2 failed (color3's triggers dropped), then the run stops."""
    config = RigConfig()
    config.lights.timeout_s = 2.0  # generous: a loaded machine answers late
    config.lights.settle_ms = 0.0
    config.camera.pixel_format = "Mono12"
    config.camera.fetch_timeout_s = 1.0
    config.camera.retries = 1
    options = SimulationOptions(seed=2, frame_shape=(96, 128), drop_triggers=frozenset({10, 11}))
    rig: Rig = open_rig(config, simulate=True, options=options)
    try:
        run = Acquisition(rig).run("S-1", 8, tmp_path / "S-1")
        assert [next(run).ok for _ in range(3)] == [True, True, False]
        run.close()
    finally:
        rig.close()
    yield tmp_path / "S-1"


def test_the_acquisition_records_its_failure(folder: Path) -> None:
    recorded = json.loads((folder / FAILED_FIELDS_FILE).read_text())["failed"]
    assert [r["fov"] for r in recorded] == [2]
    assert "color3: no valid frame" in recorded[0]["reason"]


def test_a_hostile_file_is_read_within_its_bounds(folder: Path) -> None:
    entries: list[object] = [
        {"fov": 2, "reason": "x" * 100_000},  # kept, cut to 4000 characters
        {"fov": 3, "reason": "stage jammed"},  # kept
        {"fov": 5_000_000, "reason": "far away"},  # beyond every field acquired
        {"fov": -1, "reason": "negative"},
        {"fov": "4", "reason": "a string field"},
        {"fov": 4.0, "reason": "a float field"},
        {"fov": True, "reason": "a bool field"},
        {"fov": 4, "reason": 7},
        {"fov": 4},
        "not an entry",
    ]
    (folder / FAILED_FIELDS_FILE).write_text(json.dumps({"failed": entries}))
    point = resume_point(folder, "S-1")
    # acquired = 2 saved + 10 entries = 12: field 5,000,000 is out, 2 and 3 are in
    assert point.failed == {2: "x" * MAX_REASON, 3: "stage jammed"}
    assert len(point.failed[2]) == 4000
    assert point.saved == (0, 1) and point.next_fov == 4


@pytest.mark.parametrize(
    "content",
    [
        "",
        "[]",
        '{"failed": 3}',
        '{"failed": [{"fov": 2}]',
        "[" * 100_000,
        '{"failed": ' + "[" * 100_000,
    ],
)
def test_an_unreadable_file_records_no_failure(folder: Path, content: str) -> None:
    (folder / FAILED_FIELDS_FILE).write_text(content)
    point = resume_point(folder, "S-1")
    assert point.failed == {} and point.saved == (0, 1) and point.next_fov == 2

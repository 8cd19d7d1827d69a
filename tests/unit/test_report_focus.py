"""Fields whose focus was low or which failed out of focus: read back from the results store
(results/field_notes.py) and listed by the report's JSON and HTML."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from leukoscope.report.data import gather_report
from leukoscope.report.export import render_json
from leukoscope.report.html import render_html
from leukoscope.results.field_notes import FocusField, focus_fields
from leukoscope.results.quality_kinds import QualityKind
from leukoscope.results.store import ResultStore
from leukoscope.types import CELL_CLASSES, CellKey, CellResult

OUT_OF_FOCUS = "out_of_focus: focus measure 0.093, below 0.11 (4 nuclei measured)"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    with ResultStore(tmp_path / "results.sqlite") as db:
        yield db


def _result(sample: str, fov: int, index: int) -> CellResult:
    probabilities = (0.9, 0.025, 0.025, 0.025, 0.025)
    return CellResult(CellKey(sample, fov, index), CELL_CLASSES[0], probabilities, (probabilities,))


def focus_sample(store: ResultStore, sample: str = "s1") -> str:
    """Five fields: sharp, focus low (cells counted), out of focus (failed), blank (failed), and
    one low in focus and with a white background."""
    run_id = store.start_run(model_path="", model_version="v-test")
    store.start_sample(run_id, sample, target_cells=0, fields_total=5)
    store.add_field(run_id, sample, 0, 2, quality=(0.31, ()))
    store.add_field(run_id, sample, 1, 2, quality=(0.121, (QualityKind.FOCUS_LOW.value,)))
    store.add_field(run_id, sample, 2, None, failed=True, reason=OUT_OF_FOCUS)
    store.add_field(run_id, sample, 3, None, failed=True, reason="blank: color1 holds no image")
    notes = (QualityKind.SATURATED_BACKGROUND.value, QualityKind.FOCUS_LOW.value)
    store.add_field(run_id, sample, 4, 2, quality=(0.125, notes))
    store.add_results(run_id, [_result(sample, f, i) for f in (0, 1, 4) for i in range(2)])
    store.finish_sample(run_id, store.summary(run_id, sample))
    return run_id


def test_focus_fields_are_the_low_and_the_failed_in_field_order(store: ResultStore) -> None:
    run_id = focus_sample(store)
    found = focus_fields(store, run_id, "s1")
    assert found == (
        FocusField(1, QualityKind.FOCUS_LOW, 0.121),
        FocusField(2, QualityKind.OUT_OF_FOCUS, 0.093, OUT_OF_FOCUS),  # measure from the reason
        FocusField(4, QualityKind.FOCUS_LOW, 0.125),
    )
    assert [f.failed for f in found] == [False, True, False]
    assert found[0].describe() == "field 1: focus low (0.121), cells counted"
    assert found[1].describe() == "field 2: out of focus, failed (0.093)"
    assert focus_fields(store, run_id, "no-such-sample") == ()


def test_the_report_lists_them_in_json_and_html(store: ResultStore) -> None:
    focus_sample(store)
    data = gather_report(store, "s1", with_thumbnails=False)
    listed = json.loads(render_json(data))["sample"]["focus_fields"]
    assert listed == [
        {"fov": 1, "kind": "focus_low", "focus": 0.121, "failed": False, "reason": ""},
        {"fov": 2, "kind": "out_of_focus", "focus": 0.093, "failed": True, "reason": OUT_OF_FOCUS},
        {"fov": 4, "kind": "focus_low", "focus": 0.125, "failed": False, "reason": ""},
    ]
    page = render_html(data)
    item = page.split('id="focus-fields"')[1].split("</dd>")[0]
    assert "field 1: focus low (0.121), cells counted" in item
    assert 'class="focus-failed" data-fov="2">field 2: out of focus, failed (0.093)' in item
    assert "field 4: focus low (0.125)" in item and "field 3" not in item


def test_a_sample_without_focus_doubts_says_so(store: ResultStore) -> None:
    run_id = store.start_run(model_path="", model_version="v-test")
    store.start_sample(run_id, "s2", target_cells=0, fields_total=1)
    store.add_field(run_id, "s2", 0, 1, quality=(0.3, ()))
    store.add_results(run_id, [_result("s2", 0, 0)])
    store.finish_sample(run_id, store.summary(run_id, "s2"))
    data = gather_report(store, "s2", with_thumbnails=False)
    assert json.loads(render_json(data))["sample"]["focus_fields"] == []
    assert "no field flagged" in render_html(data).split('id="focus-fields"')[1].split("</dd>")[0]

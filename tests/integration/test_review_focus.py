"""The review page's state names the fields whose focus was low or which failed out of focus
(through real HTTP, as test_review_app.py)."""

from __future__ import annotations

import json
from pathlib import Path

from leukoscope.results.quality_kinds import QualityKind
from leukoscope.results.store import ResultStore
from leukoscope.types import CELL_CLASSES, CellKey, CellResult

from .review_helpers import LiveApp, cell_thumbnail

SAMPLE = "S-9"
OUT_OF_FOCUS = "out_of_focus: focus measure 0.088, below 0.11 (3 nuclei measured)"


def _sample(database: Path) -> str:
    """Three fields: sharp, focus low (its cells counted), out of focus (failed)."""
    probabilities = (0.9, 0.025, 0.025, 0.025, 0.025)
    results = [
        CellResult(CellKey(SAMPLE, fov, i), CELL_CLASSES[i], probabilities, (probabilities,),
                   bbox=(10 * i, 5, 20, 20))
        for fov in (0, 1) for i in range(2)
    ]  # fmt: skip
    with ResultStore(database) as store:
        run_id = store.start_run(model_version="review-test")
        store.start_sample(run_id, SAMPLE, target_cells=0, fields_total=3)
        store.add_field(run_id, SAMPLE, 0, 2, quality=(0.3, ()))
        store.add_field(run_id, SAMPLE, 1, 2, quality=(0.12, (QualityKind.FOCUS_LOW.value,)))
        store.add_field(run_id, SAMPLE, 2, None, failed=True, reason=OUT_OF_FOCUS)
        store.add_results(
            run_id, results, {r.key: cell_thumbnail(i) for i, r in enumerate(results)}
        )
        store.finish_sample(run_id, store.summary(run_id, SAMPLE))
    return run_id


def test_the_review_page_lists_fields_out_of_focus(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run = _sample(database)
    with LiveApp(database, user="Ann Lee") as client:
        state = client.get(f"/api/sample/{run}/{SAMPLE}").json()
        assert state["focus_flagged_fields"] == [
            {"fov": 1, "kind": "focus_low", "focus": 0.12, "failed": False, "reason": ""},
            {"fov": 2, "kind": "out_of_focus", "focus": 0.088, "failed": True,
             "reason": OUT_OF_FOCUS},
        ]  # fmt: skip
        assert state["fields_failed"] == [{"fov": 2, "reason": OUT_OF_FOCUS}]
        page = client.get(f"/sample/{run}/{SAMPLE}").text
        embedded = page.split('<script type="application/json" id="initial-state">')[1]
        assert json.loads(embedded.split("</script>")[0]) == state
        assert "state.focus_flagged_fields" in client.get("/static/review.js").text

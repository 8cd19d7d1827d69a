"""The report (HTML, JSON, CSV) shows the reviewed differential beside the original, the reviewer
and the release time, and says clearly when a sample is not reviewed yet."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from leukoscope.report.data import gather_report
from leukoscope.report.export import render_csv, render_json
from leukoscope.report.html import render_html
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore

from .release_helpers import give_evidence
from .review_helpers import finished_sample

SAMPLE = "S-1"


def _report(database: Path) -> tuple[dict[str, object], list[dict[str, str]], str]:
    with ResultStore(database, read_only=True) as store:
        data = gather_report(store, SAMPLE)
    rows = list(csv.DictReader(io.StringIO(render_csv(data))))
    return json.loads(render_json(data)), rows, render_html(data)


def test_unreviewed_sample_says_so(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    finished_sample(database, SAMPLE)
    document, rows, page = _report(database)
    review = document["review"]
    assert isinstance(review, dict) and review["state"] == "not reviewed"
    assert review["reviewer"] == "" and review["released_utc"] is None
    assert [d["count"] for d in review["original_differential"]] == [
        d["count"]
        for d in document["differential"]  # type: ignore[attr-defined]
    ]
    assert {r["review_state"] for r in rows} == {"not reviewed"}
    assert 'id="not-reviewed">NOT YET REVIEWED' in page and "<th>Original</th>" not in page


def test_released_review_is_the_reported_differential(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE)
    give_evidence(database, run, SAMPLE)
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        original = results.summary(run, SAMPLE)
        reviews.open_review(results, run, SAMPLE)
        cells = reviews.cells(run, SAMPLE)
        neu = next(c for c in cells if c.original == "NEU")
        lym = next(c for c in cells if c.original == "LYM")
        reviews.reclassify(run, SAMPLE, neu.fov, neu.cell_index, "MO", reviewer="Ann", version=0)
        reviews.reclassify(run, SAMPLE, lym.fov, lym.cell_index, "ARTEFACT", reviewer="Ann",
                           version=0)  # fmt: skip
        mo = next(c for c in cells if c.original == "MO")  # changed, then changed back
        reviews.reclassify(run, SAMPLE, mo.fov, mo.cell_index, "EOS", reviewer="Ann", version=0)
        reviews.reclassify(run, SAMPLE, mo.fov, mo.cell_index, "MO", reviewer="Ann", version=1)
    in_review, _, page = _report(database)
    assert in_review["review"]["state"] == "in review"  # type: ignore[index]
    assert 'id="in-review">IN REVIEW' in page
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        state = reviews.release(run, SAMPLE, reviewer="Ann Lee", version=4)
    document, rows, page = _report(database)
    before = {c.cell_class.value: c.count for c in original.classes}
    expected = {**before, "NEU": before["NEU"] - 1, "MO": before["MO"] + 1,
                "LYM": before["LYM"] - 1}  # fmt: skip
    shown = {d["cell_class"]: d["count"] for d in document["differential"]}  # type: ignore[attr-defined]
    assert shown == expected
    assert document["sample"]["cells_counted"] == original.cells_counted - 1  # type: ignore[index]
    review = document["review"]
    assert isinstance(review, dict)
    # net changes per cell: NEU -> MO counts, MO -> EOS -> MO does not, the artefact is its own
    assert (review["state"], review["reviewer"], review["reclassifications"]) == (
        "released", "Ann Lee", 1
    )  # fmt: skip
    assert "1 cell(s) reclassified; 1 artefact(s)" in page
    assert review["released_utc"] is not None and review["artefacts"] == 1
    assert {d["cell_class"]: d["count"] for d in review["original_differential"]} == before
    assert len(document["cells"]) == original.cells_counted - 1  # type: ignore[arg-type]
    assert {(r["cell_class"], r["count"], r["original_count"]) for r in rows} == {
        (k, str(expected[k]), str(before[k])) for k in before
    }
    assert {(r["review_state"], r["reviewer"], r["released_utc"]) for r in rows} == {
        ("released", "Ann Lee", review["released_utc"])
    }
    assert state.released_s is not None and 'id="released">Released by Ann Lee on' in page
    assert "<th>Original</th>" in page and "not-reviewed" not in page

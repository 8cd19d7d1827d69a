"""A cell the open-set score set apart enters the review as UNIDENTIFIED: in no class, out of the
reviewed differential, until a reviewer gives it one; the review records still verify, and what a
release sends counts it apart."""

from __future__ import annotations

from pathlib import Path

from leukoscope.results.review_records import reviewed_summary
from leukoscope.results.review_schema import UNIDENTIFIED_LABEL
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore
from leukoscope.types import CELL_CLASSES, CellKey, CellResult

from .release_helpers import give_evidence

SAMPLE = "U-1"


def _sample(database: Path) -> str:
    """Ten cells over one field, cell 3 unidentified (its best guess LYM), target 9."""
    results = []
    for i in range(10):
        probs = [0.05] * 5
        probs[i % 2] = 0.8
        unidentified = i == 3
        results.append(
            CellResult(
                key=CellKey(SAMPLE, 0, i), cell_class=CELL_CLASSES[i % 2],
                probabilities=tuple(probs), head_probabilities=(tuple(probs),),
                flagged=unidentified,
                flag_reason="unidentified: open-set score 41.2 > 30.0" if unidentified else "",
                bbox=(10 * i, 5, 20, 20),
            )
        )  # fmt: skip
    with ResultStore(database) as store:
        run = store.start_run(model_version="test")
        store.start_sample(run, SAMPLE, target_cells=9, fields_total=1)
        store.add_field(run, SAMPLE, 0, 10)
        store.add_results(run, results, {})
        store.finish_sample(run, store.summary(run, SAMPLE))
    return run


def test_an_unidentified_cell_is_reviewed_apart(tmp_path: Path) -> None:
    database = tmp_path / "results.sqlite"
    run = _sample(database)
    with ResultStore(database) as results:
        summary = results.summary(run, SAMPLE)
        # nine white cells make the target; the unidentified one is counted beside them
        assert (summary.cells_counted, summary.cells_unidentified) == (9, 1)
        counted = results.query(
            "SELECT COUNT(*) FROM counted_cells WHERE run_id=? AND sample_id=?", (run, SAMPLE)
        )[0][0]
        assert counted == 9
    give_evidence(database, run, SAMPLE)
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)
        cells = {(c.fov, c.cell_index): c for c in reviews.cells(run, SAMPLE)}
        assert len(cells) == 10 and cells[(0, 3)].label == UNIDENTIFIED_LABEL
        assert cells[(0, 3)].original == "LYM"
        reviewed = reviewed_summary(summary, list(cells.values()))
        assert (reviewed.cells_counted, reviewed.cells_unidentified) == (9, 1)
        assert reviews.verify() == []
        reviews.reclassify(run, SAMPLE, 0, 3, "MO", reviewer="Ann Lee", version=0)
        after = reviewed_summary(summary, reviews.cells(run, SAMPLE))
        assert (after.cells_counted, after.cells_unidentified) == (10, 0)
        assert {c.cell_class.value: c.count for c in after.classes}["MO"] == 1
        assert reviews.verify() == []
        state = reviews.state(run, SAMPLE)
        assert state is not None
        reviews.release(run, SAMPLE, reviewer="Ann Lee", version=state.version)
        (release,) = reviews.releases(run, SAMPLE)
        assert release.differential["counted"] == 10 and release.differential["unidentified"] == 0
        assert reviews.verify() == []

"""Review state over a real SQLite file: audit, reviewed differential, lock, stale edits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from leukoscope.errors import ParameterError, StorageError
from leukoscope.results.counts import clopper_pearson
from leukoscope.results.review_records import ReviewConflict, reviewed_summary
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore

from .release_helpers import give_evidence
from .review_helpers import finished_sample

SAMPLE = "S-1"


@pytest.fixture
def sample(tmp_path: Path) -> tuple[Path, str]:
    database = tmp_path / "results.sqlite"
    run_id, _ = finished_sample(database, SAMPLE, cells=12, target=10)
    give_evidence(database, run_id, SAMPLE)
    return database, run_id


def test_open_review_copies_exactly_the_counted_cells(sample: tuple[Path, str]) -> None:
    database, run = sample
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        assert reviews.state(run, SAMPLE) is None
        state = reviews.open_review(results, run, SAMPLE)
        assert (state.state, state.version, state.edits) == ("open", 0, 0)
        counted = results.counted_results(run, SAMPLE)
        cells = reviews.cells(run, SAMPLE)
        assert len(counted) == 10  # the target, not the 12 stored
        assert [(c.fov, c.cell_index, c.original, c.flagged) for c in cells] == [
            (r.key.fov, r.key.cell_index, r.cell_class.value, r.flagged) for r in counted
        ]
        assert reviewed_summary(results.summary(run, SAMPLE), cells) == results.summary(run, SAMPLE)
        assert reviews.open_review(results, run, SAMPLE) == state  # idempotent


def test_reclassify_audits_and_recounts_with_intervals(sample: tuple[Path, str]) -> None:
    database, run = sample
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)
        original = results.summary(run, SAMPLE)
        first, second = reviews.cells(run, SAMPLE)[:2]  # NEU, LYM
        reviews.reclassify(run, SAMPLE, first.fov, first.cell_index, "eos", reviewer="Ann Lee",
                           version=0)  # fmt: skip
        reviews.reclassify(run, SAMPLE, second.fov, second.cell_index, "ARTEFACT",
                           reviewer="Ann Lee", version=0, reason="platelet clump")  # fmt: skip
        audit = reviews.audit(run, SAMPLE)
        assert [(a.fov, a.cell_index, a.from_label, a.to_label, a.reviewer, a.reason) for a in audit] == [
            (first.fov, first.cell_index, "NEU", "EOS", "Ann Lee", ""),
            (second.fov, second.cell_index, "LYM", "ARTEFACT", "Ann Lee", "platelet clump"),
        ]  # fmt: skip
        assert all(a.action == "reclassify" and a.time_s > 0 for a in audit)
        reviewed = reviewed_summary(original, reviews.cells(run, SAMPLE))
        before = {c.cell_class.value: c.count for c in original.classes}
        after = {c.cell_class.value: c.count for c in reviewed.classes}
        assert after == {**before, "NEU": before["NEU"] - 1, "EOS": before["EOS"] + 1,
                         "LYM": before["LYM"] - 1}  # fmt: skip
        assert reviewed.cells_counted == original.cells_counted - 1  # the artefact left
        eos = next(c for c in reviewed.classes if c.cell_class.value == "EOS")
        low, high = clopper_pearson(eos.count, 9)
        assert (eos.ci_low_percent, eos.ci_high_percent) == (100 * low, 100 * high)
        # a plain SQL query tells which cells count
        with sqlite3.connect(database) as db:
            rows = db.execute(
                "SELECT fov, cell_index, cell_class FROM review_counted_cells WHERE sample_id=?",
                (SAMPLE,),
            ).fetchall()
        assert len(rows) == 9 and (second.fov, second.cell_index, "LYM") not in rows
        assert (first.fov, first.cell_index, "EOS") in rows


def test_stale_edit_from_a_second_reviewer_is_refused(sample: tuple[Path, str]) -> None:
    database, run = sample
    with ResultStore(database) as results, ReviewStore(database) as one:
        one.open_review(results, run, SAMPLE)
        cell = one.cells(run, SAMPLE)[3]
        with ReviewStore(database) as two:  # another connection, as another process would
            two.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "MO", reviewer="Bo",
                           version=cell.version)  # fmt: skip
        with pytest.raises(ReviewConflict, match=r"changed by Bo to MO after you loaded it"):
            one.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "BAS", reviewer="Ann",
                           version=cell.version)  # fmt: skip
        assert one.cells(run, SAMPLE)[3].label == "MO"
        assert len(one.audit(run, SAMPLE)) == 1
        # a release on a sample version that is no longer current is refused too
        with pytest.raises(ReviewConflict, match="changed after you loaded it"):
            one.release(run, SAMPLE, reviewer="Ann", version=0)


def test_release_locks_and_reopening_needs_a_reason(sample: tuple[Path, str]) -> None:
    database, run = sample
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)
        cell = reviews.cells(run, SAMPLE)[0]
        state = reviews.release(run, SAMPLE, reviewer="Ann Lee", version=0)
        assert state.released and state.reviewer == "Ann Lee" and state.released_s is not None
        with pytest.raises(ReviewConflict, match="was released by Ann Lee"):
            reviews.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "MO", reviewer="Bo",
                               version=0)  # fmt: skip
        with pytest.raises(ReviewConflict, match="already released"):
            reviews.release(run, SAMPLE, reviewer="Bo", version=state.version)
        with pytest.raises(ParameterError, match="reason"):
            reviews.reopen(run, SAMPLE, reviewer="Bo", reason=" ", version=state.version)
        # the lock holds in SQL too: a direct UPDATE of a released sample's cell fails
        with (
            sqlite3.connect(database) as db,
            pytest.raises(sqlite3.IntegrityError, match="released"),
        ):
            db.execute("UPDATE review_cells SET label='MO' WHERE sample_id=?", (SAMPLE,))
        reopened = reviews.reopen(run, SAMPLE, reviewer="Bo", reason="wrong slide label",
                                  version=state.version)  # fmt: skip
        assert not reopened.released and reopened.released_s is None
        reviews.reclassify(run, SAMPLE, cell.fov, cell.cell_index, "MO", reviewer="Bo", version=0)
        assert [(a.action, a.reviewer, a.reason) for a in reviews.audit(run, SAMPLE)] == [
            ("release", "Ann Lee", ""),
            ("reopen", "Bo", "wrong slide label"),
            ("reclassify", "Bo", ""),
        ]


def test_the_audit_table_is_append_only(sample: tuple[Path, str]) -> None:
    database, run = sample
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)
        reviews.release(run, SAMPLE, reviewer="Ann", version=0)
    with sqlite3.connect(database) as db:
        for sql in ("UPDATE review_audit SET reviewer='Eve'", "DELETE FROM review_audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)
        assert db.execute("SELECT reviewer FROM review_audit").fetchall() == [("Ann",)]


@pytest.mark.parametrize(
    ("label", "reviewer", "message"),
    [
        ("PLT", "Ann", "label 'PLT' is not allowed"),
        ("NEU", "", "reviewer name '' is not allowed"),
        ("NEU", "Ann\n<script>", "reviewer name"),
        ("NEU", "x" * 65, "reviewer name"),
    ],
)
def test_doors_refuse_bad_labels_and_names(
    sample: tuple[Path, str], label: str, reviewer: str, message: str
) -> None:
    database, run = sample
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)
        with pytest.raises(ParameterError, match=message):
            reviews.reclassify(run, SAMPLE, 0, 0, label, reviewer=reviewer, version=0)
        with pytest.raises(ParameterError, match="not one of sample"):
            reviews.reclassify(run, SAMPLE, 9, 9, "NEU", reviewer="Ann", version=0)
        with pytest.raises(ParameterError, match="not open for review"):
            reviews.reclassify(run, "S-2", 0, 0, "NEU", reviewer="Ann", version=0)
        assert reviews.audit(run, SAMPLE) == []


def test_existing_database_migrates_and_read_only_sees_no_review(tmp_path: Path) -> None:
    database = tmp_path / "old.sqlite"
    run, _ = finished_sample(database)
    with ReviewStore(database, read_only=True) as reader:  # never reviewed: no tables, no review
        assert reader.state(run, SAMPLE) is None and reader.cells(run, SAMPLE) == []
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)
    with ReviewStore(database, read_only=True) as reader:
        assert reader.state(run, SAMPLE) is not None and len(reader.cells(run, SAMPLE)) == 10
        with pytest.raises(StorageError, match="read-only"):
            reader.release(run, SAMPLE, reviewer="Ann", version=0)
    with ResultStore(database, read_only=True) as results:  # the results store still reads it
        assert results.summary(run, SAMPLE).cells_counted == 10

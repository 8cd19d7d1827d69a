"""The SQLite results store on real files: idempotence, resume, summaries, export, threads."""

from __future__ import annotations

import csv
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from leukoscope.errors import StorageError
from leukoscope.pictures.png import encode_png
from leukoscope.report.tables import render_csv
from leukoscope.results import counts
from leukoscope.results.ledger import SampleLedger
from leukoscope.results.store import ResultStore, RunRecord, SampleRecord
from leukoscope.results.tables import CELL_COLUMNS, cell_rows, run_rows, sample_rows
from leukoscope.types import CELL_CLASSES, CellClass, CellKey, CellResult, SampleStatus

NEU, LYM, MO, EOS, BAS = CELL_CLASSES


def result(fov: int, index: int, cls: CellClass, sample: str = "S-1") -> CellResult:
    return counts.result_from_heads(
        CellKey(sample, fov, index),
        [[0.9 if c == cls else 0.025 for c in CELL_CLASSES]] * 2 + [[0.2] * 5],
        min_probability=0.6,
        max_disagreement=0.25,
        bbox=(fov, index, 30, 31),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    with ResultStore(tmp_path / "results.sqlite") as db:
        yield db


def fill(db: ResultStore, run: str) -> list[CellResult]:
    db.start_sample(run, "S-1", target_cells=4)
    classes = [[NEU, LYM], [], [MO, EOS, BAS]]
    results = [result(f, i, c) for f, cells in enumerate(classes) for i, c in enumerate(cells)]
    for fov, cells in enumerate(classes):
        assert db.add_field(run, "S-1", fov, len(cells))
    assert db.add_results(run, results) == len(results)
    return results


def test_wal_mode_and_schema(store: ResultStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert {"runs", "samples", "fields", "cells"} <= tables


def test_inserts_are_idempotent(store: ResultStore) -> None:
    run = store.start_run(model_path="m.pt", model_version="1", config_digest="d")
    assert store.start_run(run) == run and len(store.runs()) == 1
    results = fill(store, run)
    assert store.add_results(run, results + results[:2]) == 0
    assert not store.add_field(run, "S-1", 0, 2)
    store.start_sample(run, "S-1")  # again: no-op
    assert [r.key for r in store.results(run, "S-1")] == [r.key for r in results]
    assert store.results(run, "S-1") == results  # floats, heads, flags and bbox round-trip


def test_failed_field_can_be_retried_but_done_stays_done(store: ResultStore) -> None:
    run = store.start_run()
    store.start_sample(run, "S-1")
    assert store.add_field(run, "S-1", 0, None, failed=True, reason="truncated")
    assert not store.add_field(run, "S-1", 0, None, failed=True, reason="again")
    assert store.progress(run, "S-1").fields_failed == {0: "truncated"}
    assert store.add_field(run, "S-1", 0, 3)
    assert not store.add_field(run, "S-1", 0, None, failed=True, reason="late")
    progress = store.progress(run, "S-1")
    assert progress.fields_done == {0: 3} and progress.fields_failed == {}


def test_resume_after_reopening_gives_the_same_summary(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as db:
        run = db.start_run("run-1")
        results = fill(db, run)
        db.set_fields_total(run, "S-1", 3)
    with ResultStore(path) as db:  # a restarted aggregator
        progress = db.progress(run, "S-1")
        assert progress.fields_total == 3 and progress.target_cells == 4
        assert progress.fields_done == {0: 2, 1: 0, 2: 3}
        assert progress.cell_keys == {r.key for r in results}
        summary = db.summary(run, "S-1")
    ledger = SampleLedger("S-1", target_cells=4)
    for fov, n in enumerate([2, 0, 3]):
        ledger.set_cell_count(fov, n)
    ledger.add_results(results)
    ledger.end(3)
    assert summary == counts.summarize(ledger)
    assert summary.status == SampleStatus.COMPLETE and summary.cells_counted == 4
    assert [c.count for c in summary.classes] == [1, 1, 1, 1, 0]
    assert summary.cells_flagged == 4  # the third head disagrees


def test_finish_sample_records_status_and_timings(store: ResultStore) -> None:
    run = store.start_run()
    fill(store, run)
    summary = store.summary(run, "S-1").model_copy(update={"elapsed_s": 2.5})
    summary = summary.model_copy(update={"timings": {"fields_per_s": 12.0}})
    store.finish_sample(run, summary)
    row = store.samples(run)[0]
    assert row["status"] == "complete" and row["cells_counted"] == 4
    assert row["timings"] == {"fields_per_s": 12.0} and row["finished_s"] is not None
    again = store.summary(run, "S-1")
    assert again.elapsed_s == 2.5 and again.timings == {"fields_per_s": 12.0}
    store.finish_run(run)
    assert store.runs()[0]["finished_s"] is not None


def test_an_aborted_sample_reads_back_incomplete(store: ResultStore) -> None:
    run = store.start_run()
    store.start_sample(run, "S-2", target_cells=100)
    store.add_field(run, "S-2", 0, 1)
    store.add_results(run, [result(0, 0, NEU, sample="S-2")])
    ledger = store.ledger(run, "S-2")
    store.finish_sample(run, counts.summarize(ledger, aborted="stopped by the user"))
    summary = store.summary(run, "S-2")
    assert summary.status == SampleStatus.INCOMPLETE
    assert summary.status_reason == "stopped by the user" and summary.cells_counted == 1


def test_thumbnails_round_trip_as_png(store: ResultStore) -> None:
    run = store.start_run()
    results = fill(store, run)
    image = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    store.set_thumbnails(run, {results[0].key: encode_png(image)})
    png = store.thumbnail(run, results[0].key)
    assert png is not None and png.startswith(b"\x89PNG")
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and np.array_equal(decoded, image)
    assert store.thumbnail(run, results[1].key) is None


def test_finish_marks_the_counted_cells_and_the_views_read_them(store: ResultStore) -> None:
    run = store.start_run(model_version="m sha256:00")
    results = fill(store, run)  # 5 cells in fields 0 and 2, target 4: the last one is not counted
    keys = [r.key for r in results]
    counted = [r[0] for r in store.query("SELECT counted FROM cells ORDER BY fov, cell_index")]
    assert counted == [None] * 5  # undecided while the sample runs
    store.finish_sample(run, store.summary(run, "S-1"))
    assert store.counted_keys(run, "S-1") == set(keys[:4])
    view = store.query("SELECT fov, cell_index, cell_class, p_MO FROM counted_cells")
    assert [(r["fov"], r["cell_index"]) for r in view] == [(k.fov, k.cell_index) for k in keys[:4]]
    assert view[2]["cell_class"] == "MO" and view[2]["p_MO"] == results[2].probabilities[2]
    by_class = dict(
        store.query("SELECT cell_class, COUNT(*) FROM counted_cells GROUP BY cell_class")
    )
    summary = store.summary(run, "S-1")
    assert by_class == {c.cell_class.value: c.count for c in summary.classes if c.count}
    # the tables a user lists read the same views; times are ISO 8601 UTC
    (run_row,) = run_rows(store)
    assert run_row.model_version == "m sha256:00" and run_row.samples == 1
    assert run_row.started_utc.endswith("+00:00") and "T" in run_row.started_utc
    (sample_row,) = sample_rows(store, run)
    assert sample_row.cells_counted == 4 and sample_row.simulated is False
    rows = cell_rows(store, run, "S-1")
    assert [r.counted for r in rows] == [True] * 4 + [False]
    # a five-class model: the further classes' columns are not recorded (None)
    assert rows[0].probabilities == (*results[0].probabilities, None, None, None, None)
    assert rows[0].flagged is True
    columns = [d[0] for d in store._db.execute("SELECT * FROM cell_list").description]
    assert tuple(columns) == CELL_COLUMNS


def test_cells_csv_has_one_column_per_class(store: ResultStore) -> None:
    run = store.start_run()
    results = fill(store, run)
    store.finish_sample(run, store.summary(run, "S-1"))
    text = render_csv([r.record() for r in cell_rows(store, run, "S-1")], CELL_COLUMNS)
    rows = list(csv.DictReader(text.splitlines()))
    assert tuple(rows[0]) == CELL_COLUMNS and len(rows) == 5
    assert rows[0]["cell_class"] == "NEU" and rows[0]["flagged"] == "true"
    assert [r["counted"] for r in rows] == ["true"] * 4 + ["false"]
    assert float(rows[0]["p_NEU"]) == results[0].probabilities[0]  # full precision
    assert rows[0]["simulated"] == "false"


def test_concurrent_writers_on_one_store(store: ResultStore) -> None:
    run = store.start_run()
    store.start_sample(run, "S-1")
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(50):
                store.add_results(run, [result(i % 10, i // 10, LYM), result(worker, i, NEU)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(10 + w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(store.results(run, "S-1")) == 50 + 4 * 50


def test_a_second_process_style_reader_sees_committed_rows(store: ResultStore) -> None:
    run = store.start_run()
    fill(store, run)
    with ResultStore(store.path) as reader:
        assert len(reader.results(run, "S-1")) == 5


def test_bad_files_raise_storage_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="cannot open"):
        ResultStore(junk)
    newer = tmp_path / "newer.sqlite"
    ResultStore(newer).close()
    conn = sqlite3.connect(newer)
    with conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema'")
    conn.close()
    with pytest.raises(StorageError, match="schema 99"):
        ResultStore(newer)
    with ResultStore(tmp_path / "ok.sqlite") as db, pytest.raises(StorageError, match="no sample"):
        db.summary("nope", "S-1")


def test_sample_source_folder_is_recorded(store: ResultStore, tmp_path: Path) -> None:
    run = store.start_run()
    store.start_sample(run, "S-3", source=str(tmp_path / "S-3"))
    store.start_sample(run, "S-3", source="elsewhere")  # the first record stays
    assert store.samples(run)[0]["source"] == str(tmp_path / "S-3")


def test_runs_and_samples_are_typed_rows(store: ResultStore) -> None:
    run = store.start_run(model_version="arch sha256:00", started_s=5.0)
    fill(store, run)
    store.finish_sample(run, store.summary(run, "S-1"))
    (run_row,) = store.runs()
    assert isinstance(run_row, RunRecord) and run_row.started_s == 5.0
    assert run_row.model_version == run_row["model_version"] == "arch sha256:00"
    with pytest.raises(KeyError):
        run_row["no_such_column"]
    (sample,) = store.samples(run)
    assert isinstance(sample, SampleRecord)
    assert (sample.status, sample.cells_counted, sample.target_cells) == ("complete", 4, 4)
    assert sample.simulated is False and isinstance(sample.timings, dict)
    assert sample["sample_id"] == "S-1"  # key access kept for callers of the dict rows

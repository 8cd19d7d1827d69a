"""The sample book without sockets, on a fake clock, over a real SQLite store: what it writes,
what it releases, when it publishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukoscope.pipeline.sample_book import REPLAY_INTERVAL_S, SUMMARY_INTERVAL_S, SampleBook
from leukoscope.results.store import ResultStore
from leukoscope.types import CellClass, CellKey, CellResult, SampleStatus, SampleSummary

PNG = b"\x89PNG fake bytes"


class FakeClock:
    """A clock the test moves by hand (named a fake: no real time passes)."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Book:
    def __init__(self, store: ResultStore) -> None:
        self.clock = FakeClock()
        self.emitted: list[SampleSummary] = []
        self.replayed: list[SampleSummary] = []
        self.released: list[tuple[str, int | None]] = []
        self.book = SampleBook(
            store, store.start_run(), target_cells=0, clock=self.clock,
            emit=self.emitted.append, replay=self.replayed.append,
            release=lambda s, f: self.released.append((s, f)),
        )  # fmt: skip


@pytest.fixture
def book(tmp_path: Path) -> Book:
    store = ResultStore(tmp_path / "r.sqlite")
    return Book(store)


def result(fov: int, index: int) -> CellResult:
    return CellResult(CellKey("s", fov, index), CellClass.LYM, (0.0, 1.0, 0.0, 0.0, 0.0))


def test_a_sample_is_written_resolved_released_and_finished(book: Book) -> None:
    b = book.book
    b.start("s", 2, None, simulated=True)
    run = b.samples["s"]
    assert b.add_field(run, 0, available_s=50.0) and not b.add_field(run, 0, available_s=50.0)
    assert b.segmented(run, 0, 1, {CellKey("s", 0, 0): PNG})
    assert not b.segmented(run, 0, 3, {}), "a second, different cell count was taken"
    book.clock.now = 50.5
    assert b.add_results(run, [result(0, 0)]) == [0]
    b.resolved(run, 0)
    assert run.latencies_s == [0.5] and ("s", 0) in book.released
    b.add_field(run, 1, available_s=50.5)
    b.fail(run, 1, "fov_0001.ome.tif truncated")
    assert b.finish_if_done("s")
    assert ("s", None) in book.released and "s" not in b.samples
    final = b.finished["s"]
    assert final.status != SampleStatus.RUNNING and final.fields_failed == 1 and final.simulated
    assert book.emitted[-1] == final
    assert b.store.thumbnail(b.run_id, CellKey("s", 0, 0)) == PNG
    assert [r.key for r in b.store.results(b.run_id, "s")] == [CellKey("s", 0, 0)]


def test_a_sample_end_is_believed_only_as_far_as_fields_came(book: Book) -> None:
    b = book.book
    b.start("s", None, None, simulated=False)
    run = b.samples["s"]
    b.end(run, claimed=200_000, seen=2)
    assert run.ledger.fields_total == 2
    assert b.store.progress(b.run_id, "s").fields_total == 2


def test_summaries_are_published_at_most_every_interval_and_finals_replayed(book: Book) -> None:
    b = book.book
    b.start("s", 1, None, simulated=False)
    run = b.samples["s"]
    b.publish()
    assert len(book.emitted) == 1 and b.next_deadline() is None  # nothing changed since
    b.add_field(run, 0, available_s=50.0)
    b.segmented(run, 0, 1, {})
    assert b.next_deadline() == pytest.approx(50.0 + SUMMARY_INTERVAL_S)
    b.publish()
    assert len(book.emitted) == 1, "published again before the interval"
    book.clock.now += SUMMARY_INTERVAL_S
    b.publish()
    assert len(book.emitted) == 2
    b.add_results(run, [result(0, 0)])
    assert b.finish_if_done("s")
    b.publish()
    assert len(book.replayed) == 1
    assert b.next_deadline() == pytest.approx(book.clock.now + REPLAY_INTERVAL_S)


def test_abort_stores_the_reason_and_releases(book: Book) -> None:
    b = book.book
    b.start("s", None, None, simulated=False)
    summary = b.abort("s", "interrupted")
    assert summary is not None and summary.status != SampleStatus.COMPLETE
    assert "interrupted" in summary.status_reason and ("s", None) in book.released

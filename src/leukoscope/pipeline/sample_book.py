"""The book of every running sample: its ledger, its store writes and its live summaries.

Socket-free: the aggregator tells it what arrived (fields, cell counts, results, failures) and hands
it how to publish (`emit` for a changed sample, `replay` for late subscribers of finished ones). The
ledger decides what counts; the book writes each change to the store as it happens, so a restarted
aggregator resumes from the store, and publishes the counts no more often than `summary_interval_s`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from leukoscope.results.counts import stop_decision, summarize
from leukoscope.results.ledger import SampleLedger
from leukoscope.results.store import Producer, ResultStore
from leukoscope.types import CellKey, CellResult, FrameSet, SampleStatus, SampleSummary

log = logging.getLogger(__name__)

SUMMARY_INTERVAL_S = 0.2
REPLAY_INTERVAL_S = 1.0  # final summaries are re-published this often, for late subscribers
REPLAY_LAST = 16

Publish = Callable[[SampleSummary], None]
Release = Callable[[str, int | None], None]
"""Called with (sample, field) when a field is settled, (sample, None) when a sample is."""


class FieldReplay(Protocol):
    """Reads a sample's saved fields again (handed in: the pipeline core reads no files itself).

    Each method raises a `LeukoscopeError` when the folder or field cannot be read."""

    def saved(self, folder: Path) -> int:
        """How many fields the saved acquisition holds or records as failed."""

    def fovs(self, folder: Path) -> list[int]:
        """The indices of the fields saved in `folder`."""

    def read(self, folder: Path, fov: int) -> FrameSet:
        """One saved field."""


def from_wall_clock(stamp_s: float, clock: Callable[[], float]) -> float:
    """A wall-clock time stamp from another process (or the store) on the monotonic `clock`: the
    only place the wall clock is read, to translate, never to time anything."""
    if not math.isfinite(stamp_s) or stamp_s <= 0.0:
        return clock()
    return clock() - max(0.0, time.time() - stamp_s)


@dataclass
class SampleRun:
    """One running sample (times on the book's monotonic clock)."""

    ledger: SampleLedger
    started_s: float
    source: Path | None = None  # saved acquisition the fields can be re-read from
    available_s: dict[int, float] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    thumbnails: dict[CellKey, bytes] = field(default_factory=dict)  # until the cell is classified
    last_published_s: float = -math.inf
    dirty: bool = True
    rig: tuple[float, str] | None = None  # (pixel size, settings digest) of its first field


class SampleBook:
    """Ledger, store writes and live publishing for every sample of one run."""

    def __init__(
        self,
        store: ResultStore,
        run_id: str,
        *,
        target_cells: int,
        clock: Callable[[], float],
        emit: Publish,
        replay: Publish,
        release: Release = lambda sample_id, fov: None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.target_cells = target_cells
        self.clock = clock
        self.emit = emit
        self.replay = replay
        self.release = release
        self.samples: dict[str, SampleRun] = {}
        self.finished: dict[str, SampleSummary] = {}
        self._last_replay_s = -math.inf

    @property
    def in_flight(self) -> int:
        """Fields entered but not resolved, over all running samples."""
        return sum(
            1 for run in self.samples.values() for s in run.ledger.fields.values() if not s.resolved
        )

    def start(
        self, sample_id: str, fields_total: int | None, source: Path | None, simulated: bool
    ) -> None:
        """A new sample (a repeated start, or one of a finished sample, is ignored)."""
        if sample_id in self.samples or sample_id in self.finished:
            return
        ledger = SampleLedger(sample_id, target_cells=self.target_cells, simulated=simulated)
        if fields_total is not None:
            ledger.fields_total = fields_total
        self.store.start_sample(
            self.run_id, sample_id, target_cells=self.target_cells, fields_total=fields_total,
            source="" if source is None else str(source), simulated=simulated,
        )  # fmt: skip
        self.samples[sample_id] = SampleRun(ledger, started_s=self.clock(), source=source)

    def resumable(self) -> Iterable[tuple[str, str, float]]:
        """(sample id, saved source, wall-clock start) of this run's samples the store says are
        still running."""
        for row in self.store.samples(self.run_id):
            if row["status"] == SampleStatus.RUNNING.value and row["sample_id"] not in self.samples:
                yield row["sample_id"], row["source"] or "", float(row["started_s"])

    def resume(self, sample_id: str, source: Path | None, started_wall_s: float) -> SampleRun:
        """Take up a running sample from the store."""
        ledger = self.store.ledger(self.run_id, sample_id)
        ledger.target_cells = self.target_cells
        started = from_wall_clock(started_wall_s, self.clock)
        run = SampleRun(ledger, started_s=started, source=source)
        self.samples[sample_id] = run
        return run

    def running(self, sample_id: str, what: str, reject: Callable[[str], None]) -> SampleRun | None:
        """The running sample a message is for; None (refused, unless it just finished) otherwise."""
        run = self.samples.get(sample_id)
        if run is None and sample_id not in self.finished:
            reject(f"ignored {what} for unknown sample {sample_id!r}")
        return run

    def add_field(
        self,
        run: SampleRun,
        fov: int,
        available_s: float,
        rig: tuple[float, str] | None = None,
    ) -> bool:
        """A field's frames arrived (`available_s` on the clock), taken with the rig set-up
        `rig` (pixel size, settings digest); False if it was known."""
        if not run.ledger.add_field(fov):
            return False
        run.available_s[fov] = available_s
        if rig is not None and rig != run.rig:
            self.store.note_rig(self.run_id, run.ledger.sample_id, *rig)
            run.rig = rig if run.rig is None else run.rig
        return True

    def end(self, run: SampleRun, claimed: int, seen: int) -> None:
        """The source says how many fields there were; believe it only as far as `seen` (fields
        that arrived or lie saved): one short message must not create 200,000 failed fields. A
        total from the sample's start is held to the same bound."""
        first = run.ledger.fields_total
        announced = claimed if first is None else first
        total = min(announced, seen)
        if total < announced:
            log.warning(
                "sample %s: %d fields announced, %d arrived or are saved; the sample has %d",
                run.ledger.sample_id, announced, seen, total,
            )  # fmt: skip
        if first is None or total < first:
            run.ledger.end(total)
            self.store.set_fields_total(self.run_id, run.ledger.sample_id, total, replace=True)
            run.dirty = True

    def segmented(
        self,
        run: SampleRun,
        fov: int,
        count: int,
        thumbnails: dict[CellKey, bytes],
        worker: Producer | None = None,
        quality: tuple[float | None, tuple[str, ...]] = (None, ()),
    ) -> bool:
        """A field's cell count (and its cells' thumbnails, its focus measure and quality notes)
        from `worker`; False if it contradicts an earlier count of the same field."""
        state = run.ledger.fields.get(fov)
        if state is not None and state.segmented:
            return state.cell_count == count
        run.ledger.set_cell_count(fov, count)
        run.thumbnails.update(thumbnails)
        self.store.add_field(
            self.run_id, run.ledger.sample_id, fov, count, worker=worker, quality=quality
        )
        run.dirty = True
        return True

    def add_results(
        self, run: SampleRun, results: list[CellResult], worker: Producer | None = None
    ) -> list[int]:
        """Count and store cells classified by `worker` (duplicates dropped); the fields they
        resolved."""
        fresh = run.ledger.add_results(results)
        if not fresh:
            return []
        thumbs = {r.key: run.thumbnails.pop(r.key) for r in fresh if r.key in run.thumbnails}
        self.store.add_results(self.run_id, fresh, thumbs, worker=worker)
        run.dirty = True
        return sorted({r.key.fov for r in fresh if run.ledger.fields[r.key.fov].resolved})

    def resolved(self, run: SampleRun, fov: int) -> None:
        """A field is resolved: its work is released; its latency, from available to counted."""
        self.release(run.ledger.sample_id, fov)
        if fov in run.available_s:
            run.latencies_s.append(self.clock() - run.available_s.pop(fov))

    def fail(self, run: SampleRun, fov: int, reason: str, worker: Producer | None = None) -> None:
        """A field failed, with the reason and the worker that gave up on it (its work is
        released)."""
        self.release(run.ledger.sample_id, fov)
        run.ledger.fail_field(fov, reason)
        run.available_s.pop(fov, None)
        sample_id = run.ledger.sample_id
        self.store.add_field(
            self.run_id, sample_id, fov, None, failed=True, reason=reason, worker=worker
        )
        run.dirty = True
        log.warning("sample %s field %d failed: %s", sample_id, fov, reason)

    def finish_if_done(self, sample_id: str) -> bool:
        """Finish the sample if the stop rule says so (store, publish); True when it did."""
        run = self.samples.get(sample_id)
        if run is None or not stop_decision(run.ledger).finished:
            return False
        summary = self._summary(run)
        self.store.finish_sample(self.run_id, summary)
        del self.samples[sample_id]
        self.release(sample_id, None)
        self.finished[sample_id] = summary
        self.emit(summary)
        log.info("sample %s %s: %s", sample_id, summary.status.value, summary.status_reason)
        return True

    def abort(self, sample_id: str, reason: str) -> SampleSummary | None:
        """Finish a running sample as incomplete (e.g. Ctrl-C); its summary."""
        run = self.samples.pop(sample_id, None)
        self.release(sample_id, None)
        if run is None:
            return self.finished.get(sample_id)
        elapsed = self.clock() - run.started_s
        summary = summarize(run.ledger, aborted=reason, elapsed_s=elapsed)
        self.store.finish_sample(self.run_id, summary)
        self.finished[sample_id] = summary
        self.emit(summary)
        return summary

    def publish(self) -> None:
        """Publish changed samples (at most every `SUMMARY_INTERVAL_S`) and replay the latest
        final summaries every `REPLAY_INTERVAL_S`."""
        now = self.clock()
        if self.finished and now - self._last_replay_s >= REPLAY_INTERVAL_S:
            self._last_replay_s = now
            for summary in list(self.finished.values())[-REPLAY_LAST:]:
                self.replay(summary)
        for run in self.samples.values():
            if run.dirty and now - run.last_published_s >= SUMMARY_INTERVAL_S:
                run.dirty = False
                run.last_published_s = now
                self.emit(self._summary(run))

    def next_deadline(self) -> float | None:
        """When `publish` next has something to do (None: nothing until a change)."""
        due = [r.last_published_s + SUMMARY_INTERVAL_S for r in self.samples.values() if r.dirty]
        if self.finished:
            due.append(self._last_replay_s + REPLAY_INTERVAL_S)
        return min(due, default=None)

    def _summary(self, run: SampleRun) -> SampleSummary:
        latencies = np.asarray(run.latencies_s or [0.0])
        timings = {
            "latency_p50_s": float(np.percentile(latencies, 50)),
            "latency_p95_s": float(np.percentile(latencies, 95)),
        }
        return summarize(run.ledger, elapsed_s=self.clock() - run.started_s, timings=timings)

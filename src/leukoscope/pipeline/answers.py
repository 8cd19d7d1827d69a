"""What workers answer (cells of a field, classified cells, a failed field), taken only when it
answers a dispatch of that very unit to the worker that sends it.

The sender is a *principal*: the worker's authenticated CurveZMQ key (the ZAP User-Id) when keys
are configured, otherwise the name it gives (loopback only). A guessed ticket, another worker's
ticket, or a stale or absent one is forged or misdirected: logged, counted and dropped, so it can
never change a count. A late duplicate of work already settled is dropped silently.

A failed field is failed at once, with its worker's reason, except a unit its worker gave up past
its time budget (`over_budget`): that goes to another worker, and fails only when it ran over on
two (or no other worker is there). Every field and cell stored names the worker that produced it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from leukoscope.pipeline import wire
from leukoscope.pipeline.budget import OVER_BUDGET
from leukoscope.pipeline.dispatcher import STAGES, Dispatcher, Stage, Unit
from leukoscope.pipeline.sample_book import SampleBook, SampleRun
from leukoscope.pipeline.thumbnails import thumbnails_of
from leukoscope.results.store import Producer
from leukoscope.types import CellKey

log = logging.getLogger(__name__)

Answer = wire.CellBatch | wire.FieldFailed


class Answers:
    """Checks workers' answers against the dispatcher's tickets and writes them into the book."""

    def __init__(self, book: SampleBook, dispatcher: Dispatcher, reject: Callable[[str], None]):
        self.book = book
        self.dispatcher = dispatcher
        self.reject = reject
        self.forged = 0  # answers dropped: no such dispatch, or not to the worker that answered

    def on_answer(self, message: Answer, principal: str) -> None:
        """Cells of a field, or a failed field, from a worker."""
        run = self.book.running(message.sample_id, type(message).__name__, self.reject)
        if run is None:
            return
        fov = message.fov
        if not self.dispatcher.busy(message.sample_id, fov):
            self.reject(f"ignored {type(message).__name__} for field {fov}: no work is out for it")
        elif not self._authentic(message, principal):
            pass  # logged and counted by _authentic
        elif isinstance(message, wire.CellBatch):
            self._on_cells(run, message, Producer.of(message.worker, principal))
        else:
            self._on_failed(run, message, Producer.of(message.worker, principal))
        self.book.finish_if_done(message.sample_id)

    def _on_failed(self, run: SampleRun, message: wire.FieldFailed, worker: Producer) -> None:
        """Fail the field, unless its worker ran over budget and another worker may try."""
        unit = self.dispatcher.unit_of(message.sample_id, message.fov, message.ticket)
        if message.reason.startswith(OVER_BUDGET) and unit is not None:
            if self.dispatcher.give_up(unit):
                log.warning(
                    "%s field %d: %s; sent to another worker", message.sample_id, message.fov,
                    message.reason,
                )  # fmt: skip
                return
            tried = len(set(unit.tickets.values()))
            reason = f"{message.reason} ({unit.attempts} attempt(s), {tried} worker(s))"
            self.book.fail(run, message.fov, reason, worker)
            return
        self.book.fail(run, message.fov, message.reason, worker)

    def _authentic(self, message: Answer, principal: str) -> bool:
        """True when `message` answers a dispatch of the field's unit to `principal`.

        Segmentation answers a segment unit; a failure answers whichever unit is out (its stage).
        """
        stages: tuple[Stage, ...] = ("segment",) if isinstance(message, wire.CellBatch) else STAGES
        sid, fov, ticket = message.sample_id, message.fov, message.ticket
        units = [self.dispatcher.pending(stage, sid, fov) for stage in stages]
        if any(u is not None and u.answered_by(ticket, principal) for u in units):
            return True
        if not self.dispatcher.is_late(sid, ticket, principal):
            self.forged += 1
            self.reject(
                f"dropped {type(message).__name__} for {sid} field {fov} from {principal!r}: "
                "it answers no work dispatched to that worker"
            )
        return False

    def _on_cells(self, run: SampleRun, batch: wire.CellBatch, worker: Producer) -> None:
        fov = batch.fov
        if len(batch.cells) != batch.cell_count or any(
            c.key != CellKey(batch.sample_id, fov, i) for i, c in enumerate(batch.cells)
        ):
            self.reject(f"rejected cells of field {fov}: keys do not match the count")
            return
        known = run.ledger.fields[fov].results if fov in run.ledger.fields else {}
        missing = tuple(c for c in batch.cells if c.key.cell_index not in known)
        thumbs = thumbnails_of(batch, missing)
        quality = (batch.focus, batch.quality_notes)
        if not self.book.segmented(run, fov, batch.cell_count, thumbs, worker, quality):
            self.reject(f"field {fov}: segmented again with a different cell count")
            return
        self.dispatcher.retire(batch.sample_id, fov, "segment")
        if not missing:
            self.book.resolved(run, fov)
        elif self.dispatcher.pending("classify", batch.sample_id, fov) is None:
            work = dataclasses.replace(batch, cells=missing)
            self.dispatcher.queue(Unit("classify", batch.sample_id, fov, work))

    def on_results(self, batch: wire.ResultBatch, principal: str) -> None:
        """Classified cells (of any fields and samples) from a classify worker."""
        for sample_id in {r.key.sample_id for r in batch.results}:
            self._on_results(sample_id, batch, principal)

    def _on_results(self, sample_id: str, batch: wire.ResultBatch, principal: str) -> None:
        run = self.book.running(sample_id, "results", self.reject)
        if run is None:
            return
        answered, late = set(), set()
        for sid, fov, ticket in batch.tickets:
            unit = self.dispatcher.pending("classify", sid, fov) if sid == sample_id else None
            if unit is not None and unit.answered_by(ticket, principal):
                answered.add(fov)
            elif sid == sample_id and self.dispatcher.is_late(sid, ticket, principal):
                late.add(fov)
        claimed = {r.key.fov for r in batch.results if r.key.sample_id == sample_id}
        if claimed - answered - late:
            self.forged += 1
            self.reject(
                f"dropped results for {sample_id} field(s) {sorted(claimed - answered - late)[:10]}"
                f" from {principal!r}: they answer no work dispatched to that worker"
            )
        mine = [r for r in batch.results if r.key.sample_id == sample_id and r.key.fov in answered]
        for fov in self.book.add_results(run, mine, Producer.of(batch.worker, principal)):
            self.book.resolved(run, fov)
        self.book.finish_if_done(sample_id)

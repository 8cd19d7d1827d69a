"""What workers answer (cells of a field, classified cells, a failed field), taken only when it
answers a dispatch of that very unit to the worker that sends it.

The sender is a *principal*: the worker's authenticated CurveZMQ key (the ZAP User-Id) when keys
are configured, otherwise the name it gives (loopback only). A guessed ticket, another worker's
ticket, or a stale or absent one is forged or misdirected: logged, counted and dropped, so it can
never change a count. A late duplicate of work already settled is dropped silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from leukoscope.pipeline import wire
from leukoscope.pipeline.dispatcher import STAGES, Dispatcher, Stage, Unit
from leukoscope.pipeline.sample_book import SampleBook, SampleRun
from leukoscope.pipeline.thumbnails import thumbnails_of
from leukoscope.types import CellKey

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
            self._on_cells(run, message)
        else:
            self.book.fail(run, fov, message.reason)
        self.book.finish_if_done(message.sample_id)

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

    def _on_cells(self, run: SampleRun, batch: wire.CellBatch) -> None:
        fov = batch.fov
        if len(batch.cells) != batch.cell_count or any(
            c.key != CellKey(batch.sample_id, fov, i) for i, c in enumerate(batch.cells)
        ):
            self.reject(f"rejected cells of field {fov}: keys do not match the count")
            return
        known = run.ledger.fields[fov].results if fov in run.ledger.fields else {}
        missing = tuple(c for c in batch.cells if c.key.cell_index not in known)
        if not self.book.segmented(run, fov, batch.cell_count, thumbnails_of(batch, missing)):
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
        for fov in self.book.add_results(run, mine):
            self.book.resolved(run, fov)
        self.book.finish_if_done(sample_id)

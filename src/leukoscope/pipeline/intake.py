"""What a source sends the aggregator (sample start, fields, failures, sample end), and recovery:
fields that never arrived are replayed from the saved acquisition through a function handed in.

The doors here: a source never chooses which server folder is read (only one inside the data
folder, when one is configured), never creates fields past the sample's total, and a sample end is
believed only as far as fields arrived or lie saved.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from leukoscope.errors import LeukoscopeError
from leukoscope.pipeline import wire
from leukoscope.pipeline.dispatcher import Dispatcher, Unit
from leukoscope.pipeline.sample_book import FieldReplay, SampleBook, SampleRun, from_wall_clock

log = logging.getLogger(__name__)

Reject = Callable[[str], None]


class Intake:
    """Takes a source's stream into the book and queues its fields for segmentation."""

    def __init__(
        self,
        book: SampleBook,
        dispatcher: Dispatcher,
        reject: Reject,
        *,
        replay: FieldReplay | None,
        acquisition_root: Path | None,
    ) -> None:
        self.book = book
        self.dispatcher = dispatcher
        self.reject = reject
        self.replay = replay
        # where sources may point the aggregator to re-read fields (None: anywhere, for the
        # embedded source, which is this process)
        self.acquisition_root = None if acquisition_root is None else acquisition_root.resolve()

    def on_message(self, message: wire.Message) -> None:
        """One message from the ingest socket."""
        if isinstance(message, wire.SampleStart):
            source = self.readable(message.acquisition, message.sample_id)
            self.book.start(message.sample_id, message.fields_total, source, message.simulated)
            return
        if isinstance(message, wire.FrameSetMessage):
            sample_id, fov = message.frameset.sample_id, message.frameset.fov
        elif isinstance(message, (wire.FieldFailed, wire.SampleEnd)):
            sample_id = message.sample_id
            fov = message.fov if isinstance(message, wire.FieldFailed) else -1
        else:
            self.reject(f"ignored a {type(message).__name__} message on the ingest socket")
            return
        run = self.book.running(sample_id, type(message).__name__, self.reject)
        if run is None:
            return
        total = run.ledger.fields_total
        if total is not None and fov >= total:
            self.reject(f"ignored field {fov} of {sample_id}: the sample has {total} fields")
            return
        if isinstance(message, wire.FrameSetMessage):
            available = from_wall_clock(message.t_available_s, self.book.clock)
            frameset = message.frameset
            rig = (frameset.pixel_size_um, frameset.settings_digest)
            if self.book.add_field(run, fov, available, rig):
                self.dispatcher.queue(Unit("segment", sample_id, fov, message))
        elif isinstance(message, wire.FieldFailed):
            self.book.fail(run, fov, message.reason)
        else:
            self.book.end(run, message.fields_total, self._seen(run))
            self.reload_missing(run)
        self.book.finish_if_done(sample_id)

    def _seen(self, run: SampleRun) -> int:
        """Fields that arrived, or lie in the saved acquisition."""
        seen = max(run.ledger.fields, default=-1) + 1
        if run.source is not None and self.replay is not None:
            with contextlib.suppress(LeukoscopeError):
                seen = max(seen, self.replay.saved(run.source))
        return seen

    def readable(self, acquisition: str, sample_id: str) -> Path | None:
        """The saved-acquisition folder a source names, if this aggregator may read it: with an
        `acquisition_root`, only a folder inside it (a client never chooses what the server reads)."""
        if not acquisition:
            return None
        path = Path(acquisition)
        if self.acquisition_root is None:
            return path
        resolved = (self.acquisition_root / path).resolve()  # an absolute path stays itself
        if not resolved.is_relative_to(self.acquisition_root):
            self.reject(
                f"sample {sample_id}: {acquisition} is outside the data folder "
                f"{self.acquisition_root}; lost fields will not be re-read"
            )
            return None
        return resolved

    def resume(self) -> list[str]:
        """Take up the samples of this run that the store says are still running; their ids."""
        resumed = []
        for sample_id, source, started_s in list(self.book.resumable()):
            run = self.book.resume(sample_id, self.readable(source, sample_id), started_s)
            self.reload_missing(run)
            self.book.finish_if_done(sample_id)
            resumed.append(sample_id)
            log.info("resumed sample %s from the store", sample_id)
        return resumed

    def reload_missing(self, run: SampleRun) -> None:
        """Queue, from the saved acquisition, every field that never reached this aggregator."""
        if run.source is None or self.replay is None:
            return
        sample_id, total = run.ledger.sample_id, run.ledger.fields_total
        try:
            fovs = range(total) if total is not None else self.replay.fovs(run.source)
        except LeukoscopeError as exc:
            log.warning("sample %s: saved fields cannot be listed: %s", sample_id, exc)
            return
        for fov in fovs:
            state = run.ledger.fields.get(fov)
            done = state is not None and (state.resolved or state.entered)
            if done or self.dispatcher.pending("segment", sample_id, fov) is not None:
                continue
            try:
                frameset = self.replay.read(run.source, fov)
            except LeukoscopeError as exc:
                if total is not None:
                    self.book.fail(run, fov, str(exc))
                continue
            rig = (frameset.pixel_size_um, frameset.settings_digest)
            self.book.add_field(run, fov, self.book.clock(), rig)
            message = wire.FrameSetMessage(frameset, t_available_s=time.time())
            self.dispatcher.queue(Unit("segment", sample_id, fov, message))

"""`batch --scheduler`: saved acquisitions analysed as Dask tasks, written by this one process.

Every field is one task (`dask_field.analyse_field`: read, quality check, segment, classify on a
worker). This process submits them in (sample, field) order, a window at a time (twice the
cluster's threads), and writes each answer through the same `SampleBook` the embedded aggregator
uses: the ledger decides which cells count by (field, cell index), so the counts do not depend on
which worker answered first. A sample that reaches its target has its outstanding tasks cancelled.

Dask retries a task whose worker died (up to `distributed.scheduler.allowed-failures`, then the
field fails alone as `worker_lost`); a field that fails for its own reason is answered as failed; a
field over its time budget is tried once more, as the embedded pipeline does. Ctrl-C (or any stop)
cancels what is out and stores the running samples as incomplete, `interrupted: ...`; the same run
id given again (`--run`) resumes them: only fields not stored are submitted.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leukoscope.classifier.checkpoint import file_digest
from leukoscope.classifier.infer import Predictor
from leukoscope.config import PipelineConfig, Settings
from leukoscope.errors import LeukoscopeError, PipelineError
from leukoscope.pipeline.budget import OVER_BUDGET
from leukoscope.pipeline.dask_cluster import (
    LOCAL,
    dashboard_link,
    dask_client,
    distributed,
    local_worker_count,
    worker_threads,
)
from leukoscope.pipeline.dask_field import FieldAnswer, FieldWork, analyse_field, usable_thumbnails
from leukoscope.pipeline.sample_book import SampleBook, SampleRun
from leukoscope.pipeline.service import RunOutcome, model_version
from leukoscope.pipeline.sources import SampleJob
from leukoscope.results.interrupted import INTERRUPTED
from leukoscope.results.store import Producer, ResultStore
from leukoscope.types import SampleStatus, SampleSummary

log = logging.getLogger(__name__)

WAIT_S = 0.25  # how long one wait for an answer lasts (Ctrl-C and the scheduler are looked at)
MAX_LOST = 3  # a field whose task the scheduler lost this often fails (`worker_lost`)
WORKER_LOST = "worker_lost"
OnSummary = Callable[[SampleSummary, Mapping[str, object]], None]


@dataclass
class Outstanding:
    """A submitted field: its sample, its index, which try, and when it was submitted."""

    sample_id: str
    fov: int
    attempt: int
    submitted_s: float
    workers: tuple[str, ...] = ()  # workers that ran it over budget before


@dataclass
class DaskStats:
    """What the tasks cost: answers, the seconds they computed, the wall time of the loop."""

    tasks: int = 0
    compute_s: float = 0.0
    wall_s: float = 0.0
    threads: int = 0


def abort_reason(exc: BaseException) -> str:
    """How a stopped run stores its running samples (resumable with `--run`)."""
    if isinstance(exc, KeyboardInterrupt):
        why = "Ctrl-C"
    elif isinstance(exc, SystemExit):
        why = "terminated"
    else:
        why = f"pipeline error: {exc}"
    return f"{INTERRUPTED}: {why}"


class DaskBatch:
    """Submits the fields of saved samples to a Dask client and books the answers."""

    def __init__(
        self, client: Any, store: ResultStore, run_id: str, config: PipelineConfig,
        work: FieldWork, on_summary: OnSummary | None = None,
    ) -> None:  # fmt: skip
        self.client = client
        self.run_id = run_id
        self.work = work
        self.on_summary = on_summary
        self.book = SampleBook(
            store, run_id, target_cells=config.target_cells, clock=time.monotonic,
            emit=self._emit, replay=lambda summary: None,
        )  # fmt: skip
        self.queue: deque[tuple[str, int]] = deque()
        self.folders: dict[str, str] = {}
        self.waiting: dict[str, SampleJob] = {}  # samples whose fields have not gone out yet
        self.out: dict[Any, Outstanding] = {}
        self.lost: dict[tuple[str, int], int] = {}
        self.stats = DaskStats()

    def _emit(self, summary: SampleSummary) -> None:
        if self.on_summary is not None:
            self.on_summary(summary, {})

    # -- samples ---------------------------------------------------------------------------------

    def add(self, job: SampleJob) -> None:
        """A sample to analyse: new, resumed from the store (this run's, interrupted), or already
        finished in this run (its stored summary is taken as it is)."""
        if job.acquisition is None or job.fields_total is None:
            raise PipelineError(f"sample {job.sample_id}: only saved acquisitions run on Dask")
        store, sample_id = self.book.store, job.sample_id
        self.folders[sample_id] = str(job.acquisition)
        row = next((r for r in store.samples(self.run_id) if r.sample_id == sample_id), None)
        if row is None and job.fields_total > 0:  # started when its first field goes out
            self.waiting[sample_id] = job
            self.queue.extend((sample_id, fov) for fov in range(job.fields_total))
            return
        if row is None:
            self.book.start(sample_id, job.fields_total, job.acquisition, job.simulated)
            run = self.book.samples[sample_id]
        elif row.status == SampleStatus.RUNNING.value:
            run = self.book.resume(sample_id, job.acquisition, float(row.started_s))
            if run.ledger.fields_total is None:
                self.book.end(run, job.fields_total, job.fields_total)
            log.info("resumed sample %s: %d field(s) stored", sample_id, run.ledger.fields_done)
        else:
            summary = store.summary(self.run_id, sample_id)
            self.book.finished[sample_id] = summary
            self._emit(summary)
            return
        total = run.ledger.fields_total or 0
        for fov in range(total):
            state = run.ledger.fields.get(fov)
            if state is None or not state.resolved:
                self.queue.append((sample_id, fov))
        self.book.finish_if_done(sample_id)

    # -- the loop --------------------------------------------------------------------------------

    def run(self, jobs: Sequence[SampleJob]) -> dict[str, SampleSummary]:
        """Submit and book until every sample of `jobs` is finished; each one's final summary.

        On any exception (Ctrl-C included) what is out is cancelled and the running samples are
        stored as incomplete, `interrupted: ...`, before it propagates."""
        wait = distributed().wait
        started = time.monotonic()
        try:
            for job in jobs:
                self.add(job)
            while self.queue or self.out:
                self._refill()
                if not self.out:
                    continue
                try:
                    done = wait(list(self.out), timeout=WAIT_S, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    done = set()
                    self._check_client()
                for future in done:
                    self._settle(future)
                self.book.publish()
        except BaseException as exc:
            self._stop(abort_reason(exc))
            raise
        finally:
            self.stats.wall_s = time.monotonic() - started
        return dict(self.book.finished)

    def _refill(self) -> None:
        """Submit queued fields of running samples until the window is full."""
        self.stats.threads = worker_threads(self.client)
        window = max(2, 2 * self.stats.threads)
        while self.queue and len(self.out) < window:
            sample_id, fov = self.queue.popleft()
            job = self.waiting.pop(sample_id, None)
            if job is not None:
                self.book.start(sample_id, job.fields_total, job.acquisition, job.simulated)
            if sample_id in self.book.samples:
                self._submit(Outstanding(sample_id, fov, 1, self.book.clock()))

    def _submit(self, item: Outstanding) -> None:
        key = f"leukoscope-field-{self.run_id[:8]}-{item.sample_id}-{item.fov}-{item.attempt}"
        lost = self.lost.get((item.sample_id, item.fov), 0)
        future = self.client.submit(
            analyse_field, self.folders[item.sample_id], item.sample_id, item.fov, self.work,
            key=f"{key}-{lost}", pure=False,
        )  # fmt: skip
        self.out[future] = item

    def _check_client(self) -> None:
        status = str(getattr(self.client, "status", "running"))
        if status not in ("running", "connecting"):
            raise PipelineError(f"lost the Dask scheduler (client {status})")

    def _settle(self, future: Any) -> None:
        """Book one finished, failed or cancelled task."""
        item = self.out.pop(future, None)
        if item is None:  # cancelled with its sample (target reached) after it had finished
            return
        run = self.book.samples.get(item.sample_id)
        if run is None:  # the sample finished (target reached) while it was out
            return
        if future.status == "finished":
            answer: FieldAnswer = future.result()
            self.stats.tasks += 1
            self.stats.compute_s += answer.compute_s
            self._book(run, item, answer)
        elif future.status == "cancelled":  # lost by the scheduler, not by us: again, a few times
            self._lost(run, item, "its task was cancelled by the scheduler")
        else:
            self._error(run, item, future.exception())
        self.book.finish_if_done(item.sample_id)
        if item.sample_id not in self.book.samples:
            self._cancel(item.sample_id)

    def _lost(self, run: SampleRun, item: Outstanding, why: str) -> None:
        key = (item.sample_id, item.fov)
        self.lost[key] = self.lost.get(key, 0) + 1
        if self.lost[key] < MAX_LOST:
            self._submit(item)
        else:
            self.book.fail(run, item.fov, f"{WORKER_LOST}: {why} ({self.lost[key]} times)")

    def _error(self, run: SampleRun, item: Outstanding, exc: BaseException | None) -> None:
        KilledWorker = distributed().KilledWorker
        if isinstance(exc, KilledWorker):
            reason = f"{WORKER_LOST}: the workers running it died (Dask gave up: {exc})"
            self.book.fail(run, item.fov, reason[:4000])
        elif isinstance(exc, LeukoscopeError):
            raise exc
        else:
            raise PipelineError(
                f"field {item.fov} of {item.sample_id}: its task failed on a Dask worker: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _book(self, run: SampleRun, item: Outstanding, answer: FieldAnswer) -> None:
        """An answer into the book, in the order the embedded aggregator takes its messages."""
        worker = Producer(answer.worker)
        if answer.stage == "read":
            self.book.fail(run, item.fov, answer.reason)  # the source's failure: no worker
            return
        if answer.reason.startswith(OVER_BUDGET):
            tried = (*item.workers, answer.worker)
            if item.attempt < 2:
                log.warning("%s field %d: %s; tried again", item.sample_id, item.fov, answer.reason)
                self._submit(Outstanding(item.sample_id, item.fov, 2, item.submitted_s, tried))
                return
            reason = f"{answer.reason} ({item.attempt} attempt(s), {len(set(tried))} worker(s))"
            self.book.fail(run, item.fov, reason, worker)
            return
        self.book.add_field(run, item.fov, item.submitted_s, answer.rig)
        if answer.cell_count is not None:
            pictures = usable_thumbnails(answer)
            missing = {k: v for k, v in pictures.items() if k not in run.thumbnails}
            run.thumbnails.update(missing)  # also for a field segmented before a resume
            if not self.book.segmented(
                run, item.fov, answer.cell_count, pictures, worker, answer.quality
            ):
                log.warning("field %d: segmented again with a different cell count", item.fov)
                return
        if answer.reason:
            self.book.fail(run, item.fov, answer.reason, worker)
            return
        state = run.ledger.fields[item.fov]
        if state.resolved:
            self.book.resolved(run, item.fov)
            return
        for fov in self.book.add_results(run, list(answer.results), worker):
            self.book.resolved(run, fov)

    def _cancel(self, sample_id: str) -> None:
        """Cancel the outstanding and queued fields of a finished sample."""
        mine = [f for f, item in self.out.items() if item.sample_id == sample_id]
        for future in mine:
            del self.out[future]
        if mine:
            self.client.cancel(mine)
        self.queue = deque(q for q in self.queue if q[0] != sample_id)

    def _stop(self, reason: str) -> None:
        """Cancel everything out; store every running sample as incomplete with `reason`."""
        pending, self.out = list(self.out), {}
        self.queue.clear()
        try:
            if pending:
                self.client.cancel(pending)
        except Exception as exc:  # the scheduler may be gone: the store is what matters
            log.debug("cancelling the outstanding tasks failed: %r", exc)
        for sample_id in list(self.book.samples):
            self.book.abort(sample_id, reason)


def field_work(settings: Settings, model_path: Path, *, workers: int = 0) -> FieldWork:
    """What each task is handed: the model (path and the SHA-256 every worker checks) and the
    pipeline settings. On `workers` processes of one machine, the model's threads share the
    cores (`classifier.threads` 0)."""
    config = settings.classifier
    threads = config.threads
    if threads == 0 and workers > 0:
        import os

        threads = max(1, (os.cpu_count() or 1) // workers)
    return FieldWork(
        model_path=str(Path(model_path).resolve()), model_digest=file_digest(Path(model_path)),
        backend=config.backend, threads=threads, pipeline=settings.pipeline,
    )  # fmt: skip


def resumable_run(store: ResultStore, run_id: str, version: str) -> str:
    """The full id of the stored run `run_id` names (its id or a unique prefix); PipelineError
    when there is none, or when it was analysed with another model (its cells would mix)."""
    found = [r for r in store.runs() if r.run_id.startswith(run_id)]
    if len(found) != 1:
        what = "no run" if not found else f"{len(found)} runs"
        raise PipelineError(f"{what} {run_id!r} in {store.path}: see `leukoscope runs`")
    run = found[0]
    if run.model_version and run.model_version != version:
        raise PipelineError(
            f"run {run.run_id[:8]} was analysed with {run.model_version}, not {version}: "
            "resume it with the same model, or start a new run"
        )
    return run.run_id


def analyse_on_dask(
    settings: Settings,
    jobs: Sequence[SampleJob],
    *,
    predictor: Predictor,
    model_path: Path,
    scheduler: str,
    run_id: str | None = None,
    database: Path | None = None,
    on_summary: OnSummary | None = None,
    on_started: Callable[[str, str], None] | None = None,
) -> RunOutcome:
    """`analyse` on a Dask cluster: the same run record, store rows and counts; `run_id` resumes
    an earlier run (its interrupted samples; finished ones are kept). `on_started` is told the
    run id and the Dask dashboard's address ('' when none) once the cluster is up."""
    ids = [job.sample_id for job in jobs]
    if len(set(ids)) != len(ids):
        raise PipelineError(f"sample ids repeat within one run: {ids}")
    database = database or settings.pipeline.results_db
    digest = hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:16]
    version = model_version(predictor, model_path)
    local = local_worker_count(settings.batch.local_workers) if scheduler == LOCAL else 0
    work = field_work(settings, model_path, workers=local)
    with ResultStore(database) as store:
        if run_id is not None:
            run_id = resumable_run(store, run_id, version)
        with dask_client(scheduler, local) as client:
            run_id = store.start_run(
                run_id, model_path=str(model_path), model_version=version, config_digest=digest
            )
            if on_started is not None:
                on_started(run_id, dashboard_link(client))
            try:
                batch = DaskBatch(client, store, run_id, settings.pipeline, work, on_summary)
                summaries = batch.run(jobs)
            finally:
                store.finish_run(run_id)
    return RunOutcome(run_id, database, {i: summaries[i] for i in ids if i in summaries})

"""Wires the stages together: the embedded default runs them all as threads over inproc.

The aggregator runs in the calling thread; segment and classify workers and the source run as
threads. The same stage classes run as separate processes over tcp (`leukoscope worker ...`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import zmq

from leukoscope.config import PipelineConfig
from leukoscope.errors import PipelineError
from leukoscope.pipeline.aggregator import Aggregator, SummaryCallback
from leukoscope.pipeline.assembly import configured_segmenter, send_jobs
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.security import check_bind
from leukoscope.pipeline.source_stage import Source
from leukoscope.pipeline.sources import SampleJob, SavedFields
from leukoscope.pipeline.stages import ClassifyWorker, HeadClassifier, Segmenter, SegmentWorker
from leukoscope.results.store import ResultStore
from leukoscope.types import Modality, SampleSummary

log = logging.getLogger(__name__)


class _Thread(threading.Thread):
    """A daemon thread that keeps the exception its target raised."""

    def __init__(self, name: str, target: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:
            self.error = exc
            # said once, as the run's one error line (`done` re-raises it); the trace only with -vv
            log.debug("%s stopped with an error", self.name, exc_info=True)


def stop_reason(exc: BaseException) -> str:
    """What an aborted sample's reason says: interrupted (Ctrl-C), terminated (SIGTERM), or the
    pipeline error."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, SystemExit):
        return "terminated"
    return f"pipeline error: {exc}"


def _one_opencv_thread() -> None:
    """OpenCV without its own thread pool, process-wide: the embedded pipeline is parallel already
    (a thread per stage, and the acquisition's capture and writer threads), and OpenCV's pool spun
    against them (2 cores: run --simulate -1.9 CPU-s, batch -0.5; the same results, OpenCV splits
    the rows of an image between its threads)."""
    import cv2

    cv2.setNumThreads(1)


def run_embedded(
    config: PipelineConfig,
    jobs: Sequence[SampleJob],
    *,
    classify: HeadClassifier,
    modalities: tuple[Modality, ...],
    input_size: int,
    store: ResultStore,
    run_id: str,
    on_summary: SummaryCallback | None = None,
    timeout_s: float | None = None,
    context: zmq.Context[Any] | None = None,
    endpoints: Endpoints | None = None,
    segmenter: Segmenter | None = None,
) -> dict[str, SampleSummary]:
    """Analyse `jobs` with every stage in this process; the final summary of each sample.

    `context` and `endpoints` default to a private context over fresh inproc addresses; pass them to
    let other sockets (extra workers, live subscribers) join the same pipeline. `segmenter`
    replaces the configured segmentation (tests).
    """
    _one_opencv_thread()
    if config.live_endpoint:
        check_bind(config.live_endpoint.partition("://")[2].rpartition(":")[0].strip("[]"), None)
    ids = [job.sample_id for job in jobs]
    if len(set(ids)) != len(ids):
        raise PipelineError(f"sample ids repeat within one run: {ids}")
    own_context = context is None
    context = context or zmq.Context()
    endpoints = endpoints or Endpoints.inproc()
    stop = threading.Event()
    aggregator = Aggregator.from_config(
        context, endpoints, store, config, run_id=run_id, on_summary=on_summary,
        live_also=config.live_endpoint, replay=SavedFields(),
    )  # fmt: skip
    segmenter = segmenter or configured_segmenter(config, input_size)
    threads = [
        _Thread(
            f"segment-{i}",
            SegmentWorker(
                context, endpoints, stop, segmenter=segmenter, unit_budget_s=config.unit_budget_s
            ).run,
        )
        for i in range(config.segment_workers)
    ]
    threads += [
        _Thread(
            f"classify-{i}",
            ClassifyWorker.from_config(
                context, endpoints, stop, config, classify=classify, modalities=modalities
            ).run,
        )
        for i in range(config.classify_workers)
    ]
    source = _Thread("source", functools.partial(send_jobs, Source(context, endpoints, stop), jobs))
    threads.append(source)
    for thread in threads:
        thread.start()

    def done() -> bool:
        failed = next((t for t in threads if t.error is not None), None)
        if failed is not None:
            raise PipelineError(f"{failed.name} failed: {failed.error}") from failed.error
        return all(i in aggregator.finished for i in ids)

    try:
        aggregator.run_until(done, timeout_s=timeout_s)
    except BaseException as exc:
        reason = stop_reason(exc)
        for sample_id in list(aggregator.samples):
            aggregator.abort(sample_id, reason)
        raise
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        aggregator.close()
        if own_context:
            context.term()
    return {i: aggregator.finished[i] for i in ids if i in aggregator.finished}

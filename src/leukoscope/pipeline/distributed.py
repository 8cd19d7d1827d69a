"""The pipeline as separate processes over tcp: `serve` (aggregator), `worker`, `send` (source).

These use the very stage classes the embedded runner uses; only the sockets' addresses differ. The
central host binds (loopback unless CurveZMQ keys are configured); workers and sources connect.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import zmq

from leukoscope.config import PipelineConfig, Settings
from leukoscope.errors import SecurityError
from leukoscope.pipeline.aggregator import Aggregator, SummaryCallback
from leukoscope.pipeline.assembly import configured_segmenter, head_classifier, send_jobs
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.reach import wait_for_server
from leukoscope.pipeline.security import CurveKeys, NamedAuthenticator, check_bind
from leukoscope.pipeline.source_stage import Source
from leukoscope.pipeline.sources import SampleJob, SavedFields
from leukoscope.pipeline.stages import ClassifyWorker, SegmentWorker
from leukoscope.results.store import ResultStore
from leukoscope.types import SampleSummary

log = logging.getLogger(__name__)

Role = Literal["segment", "classify"]


def server_keys(config: PipelineConfig) -> CurveKeys | None:
    """The central host's key pair (None when CURVE is not configured)."""
    if config.curve_server_key is None:
        return None
    return CurveKeys.load(config.curve_server_key)


def client_keys(config: PipelineConfig) -> CurveKeys | None:
    """A worker's or source's key pair plus the server's public key (None without CURVE)."""
    if config.curve_client_key is None and config.curve_server_key is None:
        return None
    if config.curve_client_key is None or config.curve_server_key is None:
        raise SecurityError(
            "CURVE needs both pipeline.curve_client_key (this client's .key_secret) and "
            "pipeline.curve_server_key (the server's .key)"
        )
    return CurveKeys.load(config.curve_client_key, config.curve_server_key)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT (main thread only), for a clean shutdown."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: object) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def _authenticated_context(keys: CurveKeys | None, key_file: Path | None) -> Iterator[Any]:
    """A context whose CURVE servers accept only the clients whose public keys sit in the folder
    of the server's key file (`leukoscope keys generate` puts them there), each known by the name
    of its key file."""
    context: zmq.Context[Any] = zmq.Context()
    auth = None
    try:
        if keys is not None and key_file is not None:
            auth = NamedAuthenticator(context, key_file.parent)
            auth.start()
        yield context
    finally:
        if auth is not None:
            auth.stop()
        context.term()


def serve(
    settings: Settings,
    bind: Endpoints,
    host: str,
    *,
    database: Path,
    run_id: str | None = None,
    on_summary: SummaryCallback | None = None,
    stop: threading.Event,
) -> str:
    """Run the aggregator on tcp until `stop`; resumes the run's unfinished samples. Its run id."""
    config = settings.pipeline
    keys = server_keys(config)
    check_bind(host, keys)
    with (
        ResultStore(database) as store,
        _authenticated_context(keys, config.curve_server_key) as context,
    ):
        run_id = store.start_run(run_id)
        aggregator = Aggregator.from_config(
            context, bind, store, config, run_id=run_id, keys=keys, on_summary=on_summary,
            acquisition_root=settings.rig.acquisition.data_dir, replay=SavedFields(),
        )  # fmt: skip
        try:
            resumed = aggregator.resume()
            if resumed:
                log.warning("resumed unfinished samples: %s", ", ".join(resumed))
            aggregator.run_until(stop.is_set)
        finally:
            aggregator.close()
    return run_id


def run_worker(
    role: Role,
    settings: Settings,
    connect: Endpoints,
    *,
    stop: threading.Event,
    notify: Callable[[str], None] = log.warning,
) -> None:
    """Run one segment or classify worker against a `serve` process until `stop`; `notify` hears
    that it waits for the server, and when it is connected."""
    config = settings.pipeline
    keys = client_keys(config)
    context: zmq.Context[Any] = zmq.Context()
    try:
        worker: SegmentWorker | ClassifyWorker
        if role == "segment":
            segmenter = configured_segmenter(config, _model_input_size(settings))
            worker = SegmentWorker(
                context, connect, stop, keys=keys, segmenter=segmenter,
                unit_budget_s=config.unit_budget_s,
            )  # fmt: skip
        else:
            from leukoscope.pipeline.service import load_predictor

            predictor, _ = load_predictor(settings)
            worker = ClassifyWorker.from_config(
                context,
                connect,
                stop,
                config,
                keys=keys,
                classify=head_classifier(predictor),
                modalities=predictor.modalities,
            )
        if not _reached(context, connect, keys, stop, config, notify):
            return
        notify(f"{worker.name} connected to {connect.results.rpartition(':')[0]}")
        worker.run()
    finally:
        context.term()


def _reached(
    context: zmq.Context[Any],
    connect: Endpoints,
    keys: CurveKeys | None,
    stop: threading.Event,
    config: PipelineConfig,
    notify: Callable[[str], None],
) -> bool:
    """Wait (saying so) until the serve process answers; False if stopped first."""
    return wait_for_server(
        context,
        connect.results,
        keys=keys,
        stop=stop,
        timeout_s=config.connect_timeout_s,
        notify=notify,
    )


def _model_input_size(settings: Settings) -> int:
    """The configured model's input side, read from its metadata without building it."""
    from leukoscope.classifier.checkpoint import read_checkpoint
    from leukoscope.classifier.shipped import resolve_model_path

    _, meta = read_checkpoint(resolve_model_path(settings.classifier.model_path))
    return meta.input_size


def send(
    settings: Settings,
    jobs: Sequence[SampleJob],
    connect: Endpoints,
    *,
    stop: threading.Event,
    notify: Callable[[str], None] = log.warning,
) -> dict[str, SampleSummary]:
    """Stream samples to a `serve` process; the final summary of each, as published."""
    keys = client_keys(settings.pipeline)
    context: zmq.Context[Any] = zmq.Context()
    try:
        if not _reached(context, connect, keys, stop, settings.pipeline, notify):
            return {}
        source = Source(context, connect, stop, keys=keys)
        send_jobs(source, jobs)
        return dict(source.final)
    finally:
        context.term()

"""`zmq.MAXMSGSIZE` on the worker and source sockets (docs/pipeline.md, docs/security.md: every socket
refuses a frame over 512 MiB, the peer is disconnected): read back from the sockets the stages
create, and, with the limit lowered to 1 MiB, a segment worker sent a bigger frame over real tcp
never sees it and goes on working."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import zmq

from leukoscope.pipeline import wire
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.source_stage import Source
from leukoscope.pipeline.stages import ClassifyWorker, SegmentWorker
from leukoscope.types import MODALITIES, FrameSet, Modality

from .pipeline_helpers import free_base_port

DOCUMENTED_LIMIT = 512 * 1024 * 1024  # "512 MiB", docs/pipeline.md
LOWERED = 1 << 20


@pytest.fixture
def context() -> Iterator[zmq.Context[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def frameset(fov: int, side: int) -> wire.FrameSetMessage:
    frame = np.zeros((side, side), np.uint16)
    fs = FrameSet("S-1", fov, MODALITIES, (frame,) * 4, (0.0,) * 4, (1.0,) * 4, MODALITIES,
                  ((0.0, 0.0),) * 4, "d", 0.25)  # fmt: skip
    return wire.FrameSetMessage(fs)


def test_every_stage_socket_refuses_frames_over_512_mib(context: zmq.Context[Any]) -> None:
    endpoints = Endpoints.tcp("127.0.0.1", free_base_port())
    stop = threading.Event()
    segment = SegmentWorker(context, endpoints, stop, segmenter=lambda fs: [])
    classify = ClassifyWorker(
        context, endpoints, stop, classify=lambda x: x, modalities=(Modality.FLUORESCENCE,),
        batch_size=8, batch_wait_ms=5, min_probability=0.5, max_disagreement=0.2,
    )  # fmt: skip
    source = Source(context, endpoints, stop)
    sockets = [
        segment._socket(zmq.DEALER, endpoints.segment),
        segment._socket(zmq.PUSH, endpoints.results),
        classify._socket(zmq.DEALER, endpoints.classify),
        source._connect(zmq.PUSH, endpoints.ingest),
        source._connect(zmq.SUB, endpoints.live),
    ]
    try:
        assert [s.getsockopt(zmq.MAXMSGSIZE) for s in sockets] == [DOCUMENTED_LIMIT] * 5
    finally:
        for sock in sockets:
            sock.close(linger=0)


def test_a_worker_sent_an_over_size_frame_drops_it_and_keeps_working(
    context: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "MAX_FRAME_BYTES", LOWERED)
    endpoints = Endpoints.tcp("127.0.0.1", free_base_port())
    work = context.socket(zmq.ROUTER)  # the aggregator's side, played by the test
    results = context.socket(zmq.PULL)
    for sock, address in ((work, endpoints.segment), (results, endpoints.results)):
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(address)
    stop = threading.Event()
    seen: list[int] = []

    def segmenter(fs: FrameSet) -> list[Any]:
        seen.append(fs.fov)
        return []

    worker = SegmentWorker(context, endpoints, stop, segmenter=segmenter)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        identity = ready(work)
        wire.send_message(work, frameset(fov=0, side=1024), route=identity)  # 2 MiB per frame
        # the worker's connection was cut; it reconnects and asks again (a fresh identity)
        identity = ready(work)
        wire.send_message(work, frameset(fov=1, side=256), route=identity)  # 128 KiB per frame
        batch = next_batch(results)
    finally:
        stop.set()
        thread.join(20)
        work.close()
        results.close()
    assert not thread.is_alive()
    assert (batch.fov, batch.cell_count) == (1, 0)
    assert seen == [1]  # the over-size field never reached the segmenter


def ready(work: zmq.Socket[Any]) -> bytes:
    """The identity of the next worker asking for work (within a generous 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = wire.recv_routed(work, 100)
        if got is not None and isinstance(got[1], wire.Ready):
            return got[0]
    raise AssertionError("the worker never asked for work")


def next_batch(results: zmq.Socket[Any]) -> wire.CellBatch:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = wire.recv_message(results, 100)
        if isinstance(message, wire.CellBatch):
            return message
    raise AssertionError("the worker sent no cell batch")

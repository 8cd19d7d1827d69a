"""What a source may make the aggregator do, over real (inproc) ZeroMQ sockets: it cannot choose
which server folder is read, nor create fields that were never sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from leukoscope.pipeline import wire
from leukoscope.pipeline.aggregator import Aggregator
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.results.store import ResultStore
from leukoscope.types import MODALITIES, FrameSet

from .pipeline_helpers import free_base_port


@contextmanager
def aggregator(tmp: Path, root: Path | None) -> Iterator[tuple[Aggregator, zmq.Socket[Any]]]:
    context: zmq.Context[Any] = zmq.Context()
    endpoints = Endpoints.inproc()
    with ResultStore(tmp / "r.sqlite") as store:
        agg = Aggregator(
            context, endpoints, store, run_id=store.start_run(), target_cells=0,
            acquisition_root=root,
        )  # fmt: skip
        push = context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(endpoints.ingest)
        try:
            yield agg, push
        finally:
            push.close()
            agg.close()
            context.term()


def settle(agg: Aggregator, steps: int = 50) -> None:
    for _ in range(steps):
        agg.step()


def test_a_source_cannot_point_the_server_outside_its_data_folder(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "S-1").mkdir(parents=True)
    with aggregator(tmp_path, root) as (agg, push):
        for sample, folder in (("S-1", root / "S-1"), ("S-2", "/etc"), ("S-3", "../../etc")):
            wire.send_message(push, wire.SampleStart(sample_id=sample, acquisition=str(folder)))
        settle(agg)
        sources = {row["sample_id"]: row["source"] for row in agg.store.samples()}
    assert sources == {"S-1": str(root / "S-1"), "S-2": "", "S-3": ""}


def test_a_sample_end_cannot_claim_fields_that_never_came(tmp_path: Path) -> None:
    with aggregator(tmp_path, tmp_path / "data") as (agg, push):
        wire.send_message(push, wire.SampleStart(sample_id="S-1"))
        for fov in (0, 1):
            wire.send_message(push, wire.FieldFailed(sample_id="S-1", fov=fov, reason="bad file"))
        wire.send_message(push, wire.SampleEnd(sample_id="S-1", fields_total=200_000))
        settle(agg)
        assert "S-1" in agg.finished
        summary = agg.finished["S-1"]
        rows = agg.store.progress(agg.run_id, "S-1")
    assert summary.fields_total == 2 and summary.fields_failed == 2
    assert len(rows.fields_failed) == 2 and rows.fields_total == 2


def test_a_frame_over_the_size_limit_never_reaches_the_aggregator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zmq.MAXMSGSIZE on every bound socket (limit lowered to 1 MiB here; 512 MiB in use): the
    peer sending a bigger frame is disconnected before the frame is buffered or decoded."""
    monkeypatch.setattr(wire, "MAX_FRAME_BYTES", 1 << 20)
    context: zmq.Context[Any] = zmq.Context()
    endpoints = Endpoints.tcp("127.0.0.1", free_base_port())
    with ResultStore(tmp_path / "r.sqlite") as store:
        agg = Aggregator(context, endpoints, store, run_id=store.start_run(), target_cells=0)
        assert agg.ingest.getsockopt(zmq.MAXMSGSIZE) == 1 << 20
        sockets = [context.socket(zmq.PUSH) for _ in range(3)]
        try:
            for sock in sockets:
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(endpoints.ingest)
            start, big, small = sockets
            wire.send_message(start, wire.SampleStart(sample_id="S-1"))
            for _ in range(50):
                agg.step()
            wire.send_message(big, frameset(fov=0, side=1024))  # 2 MiB per frame
            wire.send_message(small, frameset(fov=1, side=256))  # 128 KiB per frame
            deadline = time.monotonic() + 20
            while 1 not in agg.samples["S-1"].ledger.fields and time.monotonic() < deadline:
                agg.step()
            for _ in range(50):
                agg.step()
            fields = set(agg.samples["S-1"].ledger.fields)
        finally:
            for sock in sockets:
                sock.close()
            agg.close()
            context.term()
    assert fields == {1}, fields


def frameset(fov: int, side: int) -> wire.FrameSetMessage:
    frame = np.zeros((side, side), np.uint16)
    fs = FrameSet("S-1", fov, MODALITIES, (frame,) * 4, (0.0,) * 4, (1.0,) * 4, MODALITIES,
                  ((0.0, 0.0),) * 4, "d", 0.25)  # fmt: skip
    return wire.FrameSetMessage(fs)

"""The wire codec over real ZeroMQ sockets: PUSH/PULL and PUB/SUB, inproc and tcp on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import zmq

from leukoscope.errors import WireError
from leukoscope.pipeline import wire
from leukoscope.results import counts
from leukoscope.results.ledger import SampleLedger
from leukoscope.types import MODALITIES, CellCrop, CellKey, CellResult, FrameSet

TIMEOUT_MS = 2000


Pair = Callable[[int, int, str], tuple[zmq.Socket[Any], zmq.Socket[Any]]]


@pytest.fixture
def endpoint_pair(zmq_context: zmq.Context[Any]) -> Iterator[Pair]:
    """Makes (bound, connected) socket pairs; closes them all after the test."""
    sockets: list[zmq.Socket[Any]] = []

    def make(bind_type: int, connect_type: int, transport: str) -> tuple[Any, Any]:
        bound = zmq_context.socket(bind_type)
        sockets.append(bound)
        if transport == "tcp":
            port = bound.bind_to_random_port("tcp://127.0.0.1")
            address = f"tcp://127.0.0.1:{port}"
        else:
            address = f"inproc://wire-{id(bound)}"
            bound.bind(address)
        connected = zmq_context.socket(connect_type)
        sockets.append(connected)
        connected.connect(address)
        return bound, connected

    yield make
    for sock in sockets:
        sock.close(linger=0)


def frameset(fov: int) -> wire.FrameSetMessage:
    rng = np.random.default_rng(fov)
    frames = tuple(rng.integers(0, 4096, (512, 640), dtype=np.uint16) for _ in MODALITIES)
    fs = FrameSet(
        sample_id="S-1",
        fov=fov,
        modalities=MODALITIES,
        frames=frames,
        timestamps_s=(1.0, 2.0, 3.0, 4.0),
        exposures_us=(2000.0, 2000.0, 2000.0, 20000.0),
        lit=MODALITIES,
        shifts_px=((0.0, 0.0), (0.5, -0.25), (1.0, 0.0), (0.0, 2.0)),
        settings_digest="abc",
    )
    return wire.FrameSetMessage(fs, t_available_s=time.time())


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_push_pull_carries_every_kind(endpoint_pair: Pair, transport: str) -> None:
    pull, push = endpoint_pair(zmq.PULL, zmq.PUSH, transport)
    crops = np.arange(2 * 4 * 64 * 64, dtype=np.uint8).reshape(2, 4, 64, 64)
    cells = tuple(
        CellCrop(CellKey("S-1", 3, i), (i, 0, 9, 9), crops[i], 80.0, 0.5) for i in range(2)
    )
    result = CellResult(CellKey("S-1", 3, 1), counts.CELL_CLASSES[1], (0, 1.0, 0, 0, 0))
    sent: list[wire.Message] = [
        wire.SampleStart(sample_id="S-1", fields_total=5),
        frameset(3),
        wire.CellBatch("S-1", 3, 2, cells),
        wire.CellBatch("S-1", 4, 0),
        wire.ResultBatch((result,), worker="classify-1"),
        wire.FieldDone(sample_id="S-1", fov=3, cell_count=2),
        wire.SampleEnd(sample_id="S-1", fields_total=5),
    ]
    for message in sent:
        wire.send_message(push, message)
    received = [wire.recv_message(pull, TIMEOUT_MS) for _ in sent]
    assert [type(m) for m in received] == [type(m) for m in sent]
    got_fs = received[1]
    assert isinstance(got_fs, wire.FrameSetMessage)
    for a, b in zip(got_fs.frameset.frames, sent[1].frameset.frames, strict=True):  # type: ignore[union-attr]
        assert a.dtype == np.uint16 and np.array_equal(a, b)
    got_cells = received[2]
    assert isinstance(got_cells, wire.CellBatch)
    assert [c.key for c in got_cells.cells] == [c.key for c in cells]
    assert np.array_equal(np.stack([c.crops for c in got_cells.cells]), crops)
    assert received[3] == sent[3] and received[4] == sent[4]
    assert received[5] == sent[5] and received[6] == sent[6]
    assert wire.recv_message(pull, 50) is None  # nothing more: the timeout returns None


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_garbage_is_rejected_and_the_stream_goes_on(endpoint_pair: Pair, transport: str) -> None:
    pull, push = endpoint_pair(zmq.PULL, zmq.PUSH, transport)
    push.send_multipart([b'{"v":1,"kind":"frameset","arrays":[]}', b"x" * 10])
    push.send(b"\x80\x04pickle")
    wire.send_message(push, wire.SampleEnd(sample_id="S", fields_total=1))
    for _ in range(2):
        with pytest.raises(WireError):
            wire.recv_message(pull, TIMEOUT_MS)
    assert wire.recv_message(pull, TIMEOUT_MS) == wire.SampleEnd(sample_id="S", fields_total=1)


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_pub_sub_filters_live_summaries_by_topic(endpoint_pair: Pair, transport: str) -> None:
    pub, sub = endpoint_pair(zmq.PUB, zmq.SUB, transport)
    sub.setsockopt(zmq.SUBSCRIBE, wire.topic("summary"))
    ledger = SampleLedger("S-1", target_cells=1)
    ledger.set_cell_count(0, 1)
    ledger.add_results([CellResult(CellKey("S-1", 0, 0), counts.CELL_CLASSES[2], (0, 0, 1, 0, 0))])
    summary = wire.SummaryMessage(summary=counts.summarize(ledger), sent_s=1.0, workers=("w",))
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    got = None
    while got is None and time.monotonic() < deadline:  # PUB drops until the SUB has joined
        wire.send_message(pub, wire.SampleEnd(sample_id="S-1", fields_total=1))
        wire.send_message(pub, summary)
        got = wire.recv_message(sub, 20)
    assert isinstance(got, wire.SummaryMessage) and got == summary
    assert got.summary.classes[2].count == 1
    # a third-party subscriber needs nothing but JSON: frame 0 is the whole message
    wire.send_message(pub, summary)
    frames = sub.recv_multipart() if sub.poll(TIMEOUT_MS) else []
    assert len(frames) == 1 and frames[0].startswith(b'{"v":1,"kind":"summary"')


def test_large_frameset_goes_zero_copy_over_tcp(endpoint_pair: Pair) -> None:
    pull, push = endpoint_pair(zmq.PULL, zmq.PUSH, "tcp")
    message = frameset(0)
    wire.send_message(push, message)
    got = wire.recv_message(pull, TIMEOUT_MS)
    assert isinstance(got, wire.FrameSetMessage)
    assert got.frameset.shifts_px == message.frameset.shifts_px
    frame = got.frameset.frames[3]
    assert not frame.flags.owndata  # a view of the received zmq frame
    assert np.array_equal(frame, message.frameset.frames[3])


def test_leak_detector_sees_an_open_socket(zmq_context: Any) -> None:
    sock = zmq_context.socket(zmq.PUSH)
    assert [s for s in zmq_context._created if not s.closed] == [sock]
    sock.close()


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
def test_router_dealer_routes_by_identity(endpoint_pair: Pair, transport: str) -> None:
    router, dealer = endpoint_pair(zmq.ROUTER, zmq.DEALER, transport)
    ready = wire.Ready(worker="seg-1", role="segment", credit=2)
    wire.send_message(dealer, ready)
    routed = wire.recv_routed(router, TIMEOUT_MS)
    assert routed is not None and routed[1] == ready
    wire.send_message(router, frameset(1), route=routed[0])
    got = wire.recv_message(dealer, TIMEOUT_MS)
    assert isinstance(got, wire.FrameSetMessage) and got.frameset.fov == 1
    dealer.send_multipart([b"not json"])
    with pytest.raises(WireError):
        wire.recv_routed(router, TIMEOUT_MS)
    assert wire.recv_routed(router, 20) is None

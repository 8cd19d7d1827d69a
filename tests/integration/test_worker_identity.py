"""Per-worker identities under CurveZMQ, over real tcp sockets: the aggregator takes an answer only
from the key its unit was dispatched to, whatever name or ticket the sender puts in the message."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from leukoscope.config import Settings
from leukoscope.errors import SecurityError
from leukoscope.pipeline import wire
from leukoscope.pipeline.aggregator import Aggregator
from leukoscope.pipeline.distributed import run_worker, send, serve
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.security import (
    CurveKeys,
    NamedAuthenticator,
    allow_list,
    generate_keys,
    generate_worker_key,
    secure_client,
)
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.results.store import ResultStore
from leukoscope.types import MODALITIES, ClassCount, FrameSet, SampleStatus

from .pipeline_helpers import free_base_port
from .test_pipeline_tcp import acquisition, model, reference, settings_for, stored_summary

__all__ = ["acquisition", "model", "reference"]  # module fixtures shared with the tcp tests


@dataclass
class Rig:
    context: zmq.Context[Any]
    endpoints: Endpoints
    folder: Path
    agg: Aggregator

    def client(self, kind: int, address: str, key: str) -> zmq.Socket[Any]:
        """A socket holding the allow-listed key `key` (server's public key known)."""
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        keys = CurveKeys.load(self.folder / f"{key}.key_secret", self.folder / "server.key")
        secure_client(sock, keys)
        sock.connect(address)
        return sock

    def until(self, condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = self.agg.clock() + timeout_s
        while not condition():
            assert self.agg.clock() < deadline, "timed out"
            self.agg.step()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    folder = tmp_path / "keys"
    server_secret, _ = generate_keys(folder)
    for name in ("host-a", "host-b"):
        generate_worker_key(folder, name)
    context: zmq.Context[Any] = zmq.Context()
    auth = NamedAuthenticator(context, folder)
    auth.start()
    endpoints = Endpoints.tcp("127.0.0.1", free_base_port())
    with ResultStore(tmp_path / "r.sqlite") as store:
        agg = Aggregator(
            context, endpoints, store, run_id=store.start_run(), target_cells=0,
            keys=CurveKeys.load(server_secret),
        )  # fmt: skip
        try:
            yield Rig(context, endpoints, folder, agg)
        finally:
            agg.close()
            auth.stop()
            context.term()


def frameset(fov: int) -> wire.FrameSetMessage:
    frame = np.zeros((16, 16), np.uint16)
    fs = FrameSet("S-1", fov, MODALITIES, (frame,) * 4, (0.0,) * 4, (1.0,) * 4, MODALITIES,
                  ((0.0, 0.0),) * 4, "d", 0.25)  # fmt: skip
    return wire.FrameSetMessage(fs)


@contextmanager
def sockets(*socks: zmq.Socket[Any]) -> Iterator[None]:
    try:
        yield
    finally:
        for sock in socks:
            sock.close()


def test_another_workers_key_cannot_answer_its_unit_even_with_its_name_and_ticket(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    source = rig.client(zmq.PUSH, rig.endpoints.ingest, "client")
    work_a = rig.client(zmq.DEALER, rig.endpoints.segment, "host-a")
    out_a = rig.client(zmq.PUSH, rig.endpoints.results, "host-a")
    out_b = rig.client(zmq.PUSH, rig.endpoints.results, "host-b")
    with sockets(source, work_a, out_a, out_b):
        wire.send_message(source, wire.SampleStart(sample_id="S-1", fields_total=1))
        wire.send_message(source, frameset(0))
        wire.send_message(work_a, wire.Ready(worker="seg-a", role="segment", credit=1))
        handed: list[wire.Message] = []

        def received() -> bool:
            message = wire.recv_message(work_a, 0)
            if message is not None:
                handed.append(message)
            return bool(handed)

        rig.until(received)
        (unit,) = handed
        assert isinstance(unit, wire.FrameSetMessage) and unit.ticket
        # B holds an allowed key, and knows A's name and even A's ticket: an empty field would
        # resolve the sample with 0 cells
        forged = wire.CellBatch("S-1", 0, 0, worker="seg-a", ticket=unit.ticket)
        wire.send_message(out_b, forged)
        rig.until(lambda: rig.agg.forged == 1)
        assert not rig.agg.samples["S-1"].ledger.fields[0].resolved
        assert "from 'key:host-b': it answers no work dispatched to that worker" in caplog.text
        # A itself answers, from its own key: taken
        wire.send_message(out_a, forged)
        rig.until(lambda: "S-1" in rig.agg.finished)
    assert rig.agg.forged == 1
    assert rig.agg.finished["S-1"].fields_done == 1


def test_a_claimed_name_does_not_move_a_workers_work_to_another_key(rig: Rig) -> None:
    """B announces itself under A's name: work dispatched to B is B's, answered only from B."""
    source = rig.client(zmq.PUSH, rig.endpoints.ingest, "client")
    work_b = rig.client(zmq.DEALER, rig.endpoints.segment, "host-b")
    out_a = rig.client(zmq.PUSH, rig.endpoints.results, "host-a")
    with sockets(source, work_b, out_a):
        wire.send_message(source, wire.SampleStart(sample_id="S-1", fields_total=1))
        wire.send_message(source, frameset(0))
        wire.send_message(work_b, wire.Ready(worker="seg-a", role="segment", credit=1))
        handed: list[wire.Message] = []

        def received() -> bool:
            message = wire.recv_message(work_b, 0)
            if message is not None:
                handed.append(message)
            return bool(handed)

        rig.until(received)
        (unit,) = handed
        assert isinstance(unit, wire.FrameSetMessage)
        answer = wire.CellBatch("S-1", 0, 0, worker="seg-a", ticket=unit.ticket)
        wire.send_message(out_a, answer)  # the real seg-a's key, B's ticket
        rig.until(lambda: rig.agg.forged == 1)
    assert not rig.agg.samples["S-1"].ledger.fields[0].resolved


def test_worker_keys_are_named_allowed_and_never_replaced_silently(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    with pytest.raises(SecurityError, match="no server key"):
        generate_worker_key(folder, "host-a")
    generate_keys(folder)
    secret = generate_worker_key(folder, "host-a")
    assert secret.name == "host-a.key_secret" and secret.stat().st_mode & 0o077 == 0
    assert sorted(allow_list(folder).values()) == ["client", "host-a"]
    with pytest.raises(SecurityError, match="--force"):
        generate_worker_key(folder, "host-a")
    before = secret.read_bytes()
    generate_worker_key(folder, "host-a", force=True)
    assert secret.read_bytes() != before
    for bad in ("server", "../x", "", "a b", "x" * 65):
        with pytest.raises(SecurityError, match="worker key name"):
            generate_worker_key(folder, bad)


@pytest.mark.timeout(300)
def test_workers_with_their_own_keys_analyse_a_sample_as_the_embedded_run_does(
    tmp_path: Path, model: Path, acquisition: Path, reference: list[ClassCount]
) -> None:
    """serve (NamedAuthenticator) + a segment worker on key scope-1 and a classify worker on key
    scope-2 + a source on the shared client key, all over tcp with CurveZMQ."""
    folder = tmp_path / "keys"
    server_secret, client_secret = generate_keys(folder)
    worker_keys = {
        role: generate_worker_key(folder, f"scope-{i}")
        for i, role in ((1, "segment"), (2, "classify"))
    }
    server = settings_for(model, tmp_path, curve_server_key=server_secret)
    public = server_secret.with_suffix(".key")

    def client(secret: Path) -> Settings:
        return settings_for(model, tmp_path, curve_server_key=public, curve_client_key=secret)

    endpoints = Endpoints.tcp("127.0.0.1", free_base_port())
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=serve, args=(server, endpoints, "127.0.0.1"),
            kwargs={"database": server.pipeline.results_db, "stop": stop},
        )
    ]  # fmt: skip
    threads += [
        threading.Thread(
            target=run_worker, args=(role, client(secret), endpoints), kwargs={"stop": stop}
        )
        for role, secret in worker_keys.items()
    ]
    for thread in threads:
        thread.start()
    try:
        finals = send(
            client(client_secret), [saved_acquisition(acquisition)], endpoints,
            stop=threading.Event(),
        )  # fmt: skip
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    assert finals["t1"].status == SampleStatus.COMPLETE
    assert stored_summary(server, "t1").classes == reference

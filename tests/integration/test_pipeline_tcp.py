"""The tcp pipeline in one process (stages as threads, real sockets on loopback): hostile
messages on every bound socket, and CurveZMQ keeping out clients without the right keys."""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import zmq

from leukoscope.config import PipelineConfig, Settings
from leukoscope.errors import SecurityError, WireError
from leukoscope.pipeline import wire
from leukoscope.pipeline.distributed import run_worker, send, serve
from leukoscope.pipeline.endpoints import ROLES, Endpoints
from leukoscope.pipeline.security import check_bind, generate_keys
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.results.store import ResultStore
from leukoscope.types import CellClass, CellKey, CellResult, ClassCount, SampleStatus

from .pipeline_helpers import (
    embedded_classes,
    free_base_port,
    small_acquisition,
    untrained_checkpoint,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="module")
def acquisition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_acquisition(tmp_path_factory.mktemp("acq") / "t1", "t1", 6, seed=21)


@pytest.fixture(scope="module")
def reference(
    model: Path, acquisition: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[ClassCount]:
    """Counts of an uninterrupted embedded run."""
    return embedded_classes(model, acquisition, tmp_path_factory.mktemp("ref") / "ref.sqlite")


def settings_for(model: Path, tmp: Path, **pipeline: Any) -> Settings:
    settings = Settings()
    settings.classifier.model_path = model
    settings.classifier.backend = "torch"
    settings.classifier.threads = 1
    settings.pipeline = PipelineConfig(
        target_cells=0, worker_timeout_s=2.0, results_db=tmp / "results.sqlite", **pipeline
    )
    return settings


@contextmanager
def tcp_pipeline(server: Settings, client: Settings) -> Iterator[Endpoints]:
    """serve + one segment and one classify worker, as threads over tcp on loopback."""
    endpoints = Endpoints.tcp("127.0.0.1", free_base_port())
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=serve,
            args=(server, endpoints, "127.0.0.1"),
            kwargs={"database": server.pipeline.results_db, "stop": stop},
        )
    ]
    threads += [
        threading.Thread(target=run_worker, args=(role, client, endpoints), kwargs={"stop": stop})
        for role in ("segment", "classify")
    ]
    for thread in threads:
        thread.start()
    try:
        yield endpoints
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        assert not any(t.is_alive() for t in threads), "a pipeline thread did not stop"


def stored_summary(settings: Settings, sample_id: str) -> Any:
    with ResultStore(settings.pipeline.results_db) as store:
        run_id = store.runs()[-1]["run_id"]
        return store.summary(run_id, sample_id)


def hostile_messages(rng: random.Random) -> list[list[bytes]]:
    """Malformed and unwelcome multipart messages of every kind."""
    frames = wire.encode(wire.SampleStart(sample_id="intruder"))
    header = json.loads(bytes(frames[0]))
    bad_arrays = dict(header, arrays=[{"name": "x", "dtype": "uint8", "shape": [4, 4]}])
    huge = dict(header, arrays=[{"name": "x", "dtype": "float64", "shape": [65536, 65536, 64]}])
    result = CellResult(
        key=CellKey("nobody", 0, 0),
        cell_class=CellClass.NEU,
        probabilities=(1.0, 0.0, 0.0, 0.0, 0.0),
        head_probabilities=((1.0, 0.0, 0.0, 0.0, 0.0),),
    )
    messages = [
        [rng.randbytes(rng.randrange(1, 300)) for _ in range(rng.randrange(1, 4))]
        for _ in range(20)
    ]
    messages += [
        [b"not json"],
        [b'{"v": 2, "kind": "sample_start", "sample_id": "x", "arrays": []}'],
        [b'{"v": 1, "kind": "launch_missiles", "arrays": []}'],
        [json.dumps(bad_arrays).encode(), b"short"],
        [json.dumps(huge).encode(), b"\0" * 16],
        [bytes(f) for f in wire.encode(wire.ResultBatch(results=(result,)))],
        [bytes(f) for f in wire.encode(wire.FieldFailed(sample_id="t1", fov=10**6, reason="x"))],
    ]
    return messages


def bombard(endpoints: Endpoints, stop: threading.Event, seed: int) -> None:
    """Send hostile messages to every bound socket, and raw garbage to every port."""
    rng = random.Random(seed)
    context: zmq.Context[Any] = zmq.Context()
    kinds = {"ingest": zmq.PUSH, "results": zmq.PUSH, "segment": zmq.DEALER, "classify": zmq.DEALER}
    sockets = {}
    try:
        for role, kind in kinds.items():
            sock = context.socket(kind)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(getattr(endpoints, role))
            sockets[role] = sock
        while not stop.is_set():
            for sock in sockets.values():
                for message in hostile_messages(rng):
                    sock.send_multipart(message, flags=zmq.NOBLOCK)
            for role in ROLES:
                port = int(getattr(endpoints, role).rpartition(":")[2])
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                        raw.sendall(rng.randbytes(rng.randrange(1, 2000)))
                except OSError:
                    pass  # not bound yet, or the peer hung up on the garbage: both fine
            time.sleep(0.05)
    except zmq.Again:
        pass
    finally:
        for sock in sockets.values():
            sock.close()
        context.term()


@pytest.mark.timeout(300)
def test_hostile_messages_on_every_socket_do_not_change_counts(
    model: Path, acquisition: Path, reference: list[ClassCount], tmp_path: Path
) -> None:
    settings = settings_for(model, tmp_path)
    stop_attack = threading.Event()
    with tcp_pipeline(settings, settings) as endpoints:
        attacker = threading.Thread(target=bombard, args=(endpoints, stop_attack, 1))
        attacker.start()
        try:
            finals = send(
                settings, [saved_acquisition(acquisition)], endpoints, stop=threading.Event()
            )
        finally:
            stop_attack.set()
            attacker.join(timeout=20)
    assert finals["t1"].status == SampleStatus.COMPLETE
    summary = stored_summary(settings, "t1")
    assert summary.classes == reference
    with ResultStore(settings.pipeline.results_db) as store:
        ids = {row["sample_id"] for row in store.samples()}
    assert ids == {"t1"}, "a message for an unknown sample was accepted"


def test_non_loopback_bind_without_keys_is_refused() -> None:
    with pytest.raises(SecurityError, match="leukoscope keys generate"):
        check_bind("0.0.0.0", None)
    check_bind("127.0.0.1", None)
    check_bind("::1", None)


@pytest.mark.timeout(300)
def test_curve_keeps_out_clients_without_the_right_keys(
    model: Path, acquisition: Path, tmp_path: Path
) -> None:
    server_secret, client_secret = generate_keys(tmp_path / "keys")
    server = settings_for(model, tmp_path, curve_server_key=server_secret)
    client = settings_for(
        model,
        tmp_path,
        curve_server_key=server_secret.with_suffix(".key"),
        curve_client_key=client_secret,
    )
    stranger_public, stranger_secret = zmq.curve_keypair()
    server_public = zmq.auth.load_certificate(str(server_secret.with_suffix(".key")))[0]
    context: zmq.Context[Any] = zmq.Context()
    with tcp_pipeline(server, client) as endpoints:
        intruders = []
        for with_stranger_key in (False, True):
            push = context.socket(zmq.PUSH)
            sub = context.socket(zmq.SUB)
            for sock in (push, sub):
                sock.setsockopt(zmq.LINGER, 0)
                if with_stranger_key:  # knows the server's public key, but is not allowed
                    sock.curve_secretkey = stranger_secret
                    sock.curve_publickey = stranger_public
                    sock.curve_serverkey = server_public
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            push.connect(endpoints.ingest)
            sub.connect(endpoints.live)
            intruders.append((push, sub))
        for index, (push, _) in enumerate(intruders):
            start = wire.SampleStart(sample_id=f"intruder{index}")
            with contextlib.suppress(zmq.Again):  # no connection accepted: nothing to queue
                wire.send_message(push, start, flags=zmq.NOBLOCK)
        finals = send(client, [saved_acquisition(acquisition)], endpoints, stop=threading.Event())
        heard = [wire.recv_message(sub, 1500) for _, sub in intruders]
        for push, sub in intruders:
            push.close()
            sub.close()
    context.term()
    assert finals["t1"].status == SampleStatus.COMPLETE, "the keyed client was refused"
    assert heard == [None, None], "a client without the right keys read live results"
    with ResultStore(server.pipeline.results_db) as store:
        ids = {row["sample_id"] for row in store.samples()}
    assert ids == {"t1"}, f"an intruder's sample was accepted: {ids}"
    assert stored_summary(server, "t1").cells_counted > 0


def forge(endpoints: Endpoints, stop: threading.Event, fields: int) -> int:
    """A local process on the results socket forging answers for work in flight: empty cell
    batches, all-basophil results and failures, under the real workers' names (read off the live
    summaries) with guessed tickets. How many forged messages it sent."""
    context: zmq.Context[Any] = zmq.Context()
    push, sub = context.socket(zmq.PUSH), context.socket(zmq.SUB)
    for sock in (push, sub):
        sock.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    push.connect(endpoints.results)
    sub.connect(endpoints.live)
    names: set[str] = {"", "segment-forger"}
    basophil = (0.0, 0.0, 0.0, 0.0, 1.0)
    sent = 0
    try:
        while not stop.is_set():
            with contextlib.suppress(WireError):
                heard = wire.recv_message(sub, 20)
                if isinstance(heard, wire.SummaryMessage):
                    names.update(heard.workers)
            for name in sorted(names):
                for fov in range(fields):
                    ticket = secrets.token_hex(16)
                    results = tuple(
                        CellResult(CellKey("t1", fov, i), CellClass.BAS, basophil, (basophil,))
                        for i in range(30)
                    )
                    for message in (
                        wire.CellBatch("t1", fov, 0, worker=name, ticket=ticket),
                        wire.ResultBatch(results, worker=name, tickets=(("t1", fov, ticket),)),
                        wire.FieldFailed(sample_id="t1", fov=fov, reason="forged", worker=name),
                    ):
                        with contextlib.suppress(zmq.Again):
                            wire.send_message(push, message, flags=zmq.NOBLOCK)
                            sent += 1
    finally:
        push.close()
        sub.close()
        context.term()
    return sent


@pytest.mark.timeout(300)
def test_forged_results_are_dropped_and_counts_stay_identical(
    model: Path,
    acquisition: Path,
    reference: list[ClassCount],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(model, tmp_path)
    stop_forger = threading.Event()
    forged: list[int] = []
    with tcp_pipeline(settings, settings) as endpoints:
        forger = threading.Thread(
            target=lambda: forged.append(forge(endpoints, stop_forger, fields=6))
        )
        forger.start()
        try:
            finals = send(
                settings, [saved_acquisition(acquisition)], endpoints, stop=threading.Event()
            )
        finally:
            stop_forger.set()
            forger.join(timeout=20)
    assert forged and forged[0] > 0
    assert finals["t1"].status == SampleStatus.COMPLETE
    summary = stored_summary(settings, "t1")
    assert summary.classes == reference, "a forged answer changed the counts"
    assert summary.fields_failed == 0
    assert "answers no work dispatched to that worker" in caplog.text


def black_hole(endpoints: Endpoints, stop: threading.Event) -> int:
    """A segment "worker" that asks for all the work it may (credit 1024, re-announced every
    second so it never looks gone) and answers nothing. How many units it swallowed."""
    context: zmq.Context[Any] = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoints.segment)
    swallowed = 0
    last = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() - last > 1.0:
                last = time.monotonic()
                ready = wire.Ready(worker="segment-hole", role="segment", credit=1024, reset=True)
                wire.send_message(dealer, ready)
            if dealer.poll(50):
                dealer.recv_multipart()
                swallowed += 1
    finally:
        dealer.close()
        context.term()
    return swallowed


@pytest.mark.timeout(300)
def test_a_black_hole_worker_delays_but_does_not_starve_a_sample(
    model: Path, acquisition: Path, reference: list[ClassCount], tmp_path: Path
) -> None:
    settings = settings_for(model, tmp_path)
    stop_hole = threading.Event()
    swallowed: list[int] = []
    with tcp_pipeline(settings, settings) as endpoints:
        hole = threading.Thread(target=lambda: swallowed.append(black_hole(endpoints, stop_hole)))
        hole.start()
        try:
            finals = send(
                settings, [saved_acquisition(acquisition)], endpoints, stop=threading.Event()
            )
        finally:
            stop_hole.set()
            hole.join(timeout=20)
    assert swallowed and swallowed[0] > 0, "the black hole was never handed work"
    assert finals["t1"].status == SampleStatus.COMPLETE
    summary = stored_summary(settings, "t1")
    assert summary.classes == reference and summary.fields_failed == 0

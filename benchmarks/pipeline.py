"""Pipeline throughput and latency on a simulated saved acquisition.

Prints, for the embedded pipeline and for 1..N classify workers as separate processes over tcp:
fields/s, cells/s, p50/p95 latency from a field being available to its cells being counted; the
wall time of `leukoscope batch --cells 200` from process start to printed summary; and the cost of
the wire (bytes and ms per field, tcp loopback against inproc).

    .venv/bin/python benchmarks/pipeline.py --fields 50 --workers 1,2,3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from leukoscope.acquisition_files import storage
from leukoscope.classifier.shipped import resolve_model_path
from leukoscope.config import Settings, load_settings
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.pipeline import wire
from leukoscope.pipeline.distributed import send
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.pipeline.service import analyse, load_predictor
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.types import SampleSummary

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))


def _row(name: str, summary: SampleSummary, wall_s: float) -> str:
    fields = summary.fields_done
    return (
        f"| {name} | {fields} | {summary.cells_counted} | {fields / wall_s:.1f} | "
        f"{summary.cells_counted / wall_s:.1f} | {summary.timings.get('latency_p50_s', 0) * 1000:.0f} | "
        f"{summary.timings.get('latency_p95_s', 0) * 1000:.0f} |"
    )


def embedded(settings: Settings, folder: Path, db: Path) -> str:
    predictor, model_path = load_predictor(settings)
    start = time.perf_counter()
    outcome = analyse(
        settings,
        [saved_acquisition(folder)],
        predictor=predictor,
        model_path=model_path,
        database=db,
    )
    wall = time.perf_counter() - start
    return _row("embedded (threads, inproc)", next(iter(outcome.summaries.values())), wall)


def processes(
    settings: Settings, folder: Path, workers: int, tmp: Path, env: dict[str, str]
) -> str:
    from pipeline_helpers import free_base_port  # type: ignore[import-not-found]

    address = f"tcp://127.0.0.1:{free_base_port()}"
    cli = [sys.executable, "-m", "leukoscope"]
    db = tmp / f"procs{workers}.sqlite"
    env = dict(env, LEUKOSCOPE__PIPELINE__RESULTS_DB=str(db))
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([*cli, "serve", "--bind", address], **quiet)]  # type: ignore[call-overload]
    procs.append(subprocess.Popen([*cli, "worker", "segment", "--connect", address], **quiet))  # type: ignore[call-overload]
    procs += [
        subprocess.Popen([*cli, "worker", "classify", "--connect", address], **quiet)  # type: ignore[call-overload]
        for _ in range(workers)
    ]
    try:
        time.sleep(8.0)  # let every worker import torch and connect before the clock starts
        start = time.perf_counter()
        finals = send(
            settings, [saved_acquisition(folder)], Endpoints.parse(address), stop=threading.Event()
        )
        wall = time.perf_counter() - start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    return _row(f"{workers} classify worker process(es), tcp", next(iter(finals.values())), wall)


def batch_wall(folder: Path, env: dict[str, str], db: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "leukoscope",
            "batch",
            str(folder),
            "--cells",
            "200",
            "--db",
            str(db),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def wire_cost(folder: Path, repeats: int = 20) -> list[str]:
    frameset = storage.read_field(folder, 0)
    message = wire.FrameSetMessage(frameset)
    size = sum(len(f) if isinstance(f, bytes) else f.nbytes for f in wire.encode(message))
    rows = []
    context: zmq.Context[Any] = zmq.Context()
    for name, address in (("inproc", "inproc://bench"), ("tcp loopback", "tcp://127.0.0.1:*")):
        pull = context.socket(zmq.PULL)
        if address.startswith("tcp"):
            port = pull.bind_to_random_port("tcp://127.0.0.1")
            address = f"tcp://127.0.0.1:{port}"
        else:
            pull.bind(address)
        push = context.socket(zmq.PUSH)
        push.connect(address)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            wire.send_message(push, message)
            received = wire.recv_message(pull, 10_000)
            assert isinstance(received, wire.FrameSetMessage)
            times.append(time.perf_counter() - start)
        push.close(linger=0)
        pull.close(linger=0)
        rows.append(f"| {name} | {size / 1e6:.1f} MB | {np.median(times) * 1000:.1f} ms |")
    context.term()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fields", type=int, default=50)
    parser.add_argument("--frame", type=int, default=2048)
    parser.add_argument("--cells-per-field", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2,3", help="classify worker counts ('' = none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="leukoscope-bench-"))
    try:
        folder = tmp / "bench"
        generate_acquisition(
            folder, "bench", args.fields, seed=args.seed,
            cells_per_field=args.cells_per_field, frame_shape=(args.frame, args.frame),
        )  # fmt: skip
        settings = load_settings()
        settings.pipeline.target_cells = 0
        env = dict(os.environ, LEUKOSCOPE__PIPELINE__TARGET_CELLS="0")
        model = resolve_model_path(settings.classifier.model_path)
        print(f"model {model}, backend {settings.classifier.backend}, {os.cpu_count()} CPUs")
        print(
            f"{args.fields} fields of {args.frame}x{args.frame}x4, ~{args.cells_per_field} cells/field\n"
        )
        print("| mode | fields | cells | fields/s | cells/s | p50 latency ms | p95 latency ms |")
        print("|---|---|---|---|---|---|---|")
        print(embedded(settings, folder, tmp / "embedded.sqlite"), flush=True)
        for workers in [int(w) for w in args.workers.split(",") if w]:
            print(processes(settings, folder, workers, tmp, env), flush=True)
        wall = batch_wall(folder, env, tmp / "batch.sqlite")
        print(f"\n`leukoscope batch --cells 200`, process start to printed summary: {wall:.1f} s\n")
        print("| wire | bytes per field | ms per field (encode, send, receive, decode) |")
        print("|---|---|---|")
        for row in wire_cost(folder):
            print(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

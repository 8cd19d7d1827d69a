"""`batch` on Dask against plain `batch`: fields/s, per-task overhead, where it breaks even.

Writes simulated acquisitions (full-size fields by default), then times, alternating, plain `batch`
(the embedded pipeline, `service.analyse`) and `batch --scheduler` on a LocalCluster of worker
processes (one thread each) started once, cold (each worker loads the model on its first field)
and warm; then the per-task overhead of Dask itself: no-op tasks through the same window (twice
the threads), and one at a time (round trip). Counts are checked to be identical.

    .venv/bin/python benchmarks/dask_batch.py --samples 3 --fields 10 --workers 2 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from leukoscope.config import Settings, load_settings
from leukoscope.instrument.simulator.acquisition import generate_acquisition
from leukoscope.pipeline.dask_batch import analyse_on_dask
from leukoscope.pipeline.service import RunOutcome, analyse, load_predictor
from leukoscope.pipeline.sources import saved_acquisition


def noop(i: int) -> int:
    """A task that does nothing: what Dask costs per task."""
    return i


def counts(outcome: RunOutcome) -> dict[str, list[tuple[str, int]]]:
    return {
        s: [(c.cell_class.value, c.count) for c in summary.classes]
        for s, summary in outcome.summaries.items()
    }


def timed(run: Any) -> tuple[float, RunOutcome]:
    start = time.perf_counter()
    outcome = run()
    return time.perf_counter() - start, outcome


def overhead(client: Any, tasks: int) -> tuple[float, float]:
    """(ms per no-op task through a window of twice the threads, ms per round trip)."""
    from distributed import wait

    window = 2 * sum(client.nthreads().values())
    start = time.perf_counter()
    out: set[Any] = set()
    for i in range(tasks):
        out.add(client.submit(noop, i, pure=False))
        if len(out) >= window:
            done = wait(list(out), return_when="FIRST_COMPLETED").done
            out -= set(done)
    wait(list(out))
    windowed = (time.perf_counter() - start) / tasks * 1000
    start = time.perf_counter()
    for i in range(tasks // 4):
        client.submit(noop, i, pure=False).result()
    trip = (time.perf_counter() - start) / (tasks // 4) * 1000
    return windowed, trip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--fields", type=int, default=10, help="fields per sample")
    parser.add_argument("--frame", type=int, default=2048)
    parser.add_argument("--cells-per-field", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=400, help="no-op tasks for the overhead")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    tmp = Path(tempfile.mkdtemp(prefix="leukoscope-dask-bench-"))
    try:
        folders = []
        for i in range(args.samples):
            folder = tmp / f"S{i}"
            generate_acquisition(
                folder, f"S{i}", args.fields, seed=i, cells_per_field=args.cells_per_field,
                frame_shape=(args.frame, args.frame),
            )  # fmt: skip
            folders.append(folder)
        fields = args.samples * args.fields
        settings: Settings = load_settings()
        settings.pipeline.target_cells = 0
        settings.pipeline.live_endpoint = ""
        predictor, model = load_predictor(settings)
        on_dask = settings.model_copy(deep=True)
        on_dask.classifier.threads = max(1, (os.cpu_count() or 1) // args.workers)
        print(f"model {model}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"{args.samples} samples x {args.fields} fields of {args.frame}x{args.frame}x4\n")

        start = time.perf_counter()
        cluster = LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)
        started_s = time.perf_counter() - start
        address = cluster.scheduler_address
        jobs = lambda: [saved_acquisition(f) for f in folders]  # noqa: E731
        walls: dict[str, list[float]] = {"plain": [], "cold": [], "warm": []}
        reference = None
        for repeat in range(args.repeats):
            db = tmp / f"plain{repeat}.sqlite"
            wall, outcome = timed(
                lambda db=db: analyse(
                    settings, jobs(), predictor=predictor, model_path=model, database=db
                )
            )
            walls["plain"].append(wall)
            reference = reference or counts(outcome)
            for kind in ("cold", "warm") if repeat == 0 else ("warm",):
                db = tmp / f"dask{repeat}{kind}.sqlite"
                wall, outcome = timed(
                    lambda db=db: analyse_on_dask(
                        on_dask,
                        jobs(),
                        predictor=predictor,
                        model_path=model,
                        scheduler=address,
                        database=db,
                    )
                )
                walls[kind].append(wall)
                assert counts(outcome) == reference, "Dask counted differently"
            print(f"repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in walls.items()))
        windowed, trip = overhead(client, args.tasks)
        client.close()
        cluster.close()

        print(f"\nLocalCluster of {args.workers} processes started in {started_s:.1f} s\n")
        print("| mode | fields | wall s (runs) | fields/s (median) |")
        print("|---|---|---|---|")
        names = {
            "plain": "plain `batch` (embedded, threads)",
            "cold": f"Dask, {args.workers} processes, first run (model loads)",
            "warm": f"Dask, {args.workers} processes, warm",
        }
        for kind, runs in walls.items():
            median = statistics.median(runs)
            shown = ", ".join(f"{w:.1f}" for w in runs)
            print(f"| {names[kind]} | {fields} | {shown} | {fields / median:.2f} |")
        plain = fields / statistics.median(walls["plain"])
        warm = fields / statistics.median(walls["warm"])
        per_worker = warm / args.workers
        print(f"\nDask per-task overhead: {windowed:.1f} ms per no-op task through the window,")
        print(f"{trip:.1f} ms per round trip (submit, run, result) one at a time")
        print(
            f"per field: plain {1000 / plain:.0f} ms, Dask {1000 / warm:.0f} ms wall "
            f"({1000 / per_worker:.0f} ms per field per worker process)"
        )
        print(
            f"break-even: Dask on {args.workers} processes runs at {warm / plain:.2f}x plain; "
            f"it matches one plain machine at {max(1.0, plain / per_worker):.1f} worker processes "
            "with a core each"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

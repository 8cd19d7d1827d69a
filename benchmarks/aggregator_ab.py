"""The aggregator before and after a change, in one run on one machine: embedded fields/s, p95
latency and the CPU an idle aggregator uses.

Each tree is a source folder (`src` of a checkout, e.g. a `git worktree` of the commit before);
every measurement runs in a fresh interpreter with that tree first on PYTHONPATH, A and B
alternating, on the same simulated acquisition and the default model. Prints one row per run, then
the medians and the ratio B / A.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/aggregator_ab.py --a /tmp/before/src --b src --fields 30 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

EMBEDDED = """
import json, sys, time
from pathlib import Path
from leukoscope.config import load_settings
from leukoscope.pipeline.service import analyse, load_predictor
from leukoscope.pipeline.sources import saved_acquisition
settings = load_settings()
settings.pipeline.target_cells = 0
predictor, model_path = load_predictor(settings)
start = time.perf_counter()
outcome = analyse(settings, [saved_acquisition(Path(sys.argv[1]))], predictor=predictor,
                  model_path=model_path, database=Path(sys.argv[2]))
wall = time.perf_counter() - start
summary = next(iter(outcome.summaries.values()))
print(json.dumps({"fields_s": summary.fields_done / wall, "cells": summary.cells_counted,
                  "p95_ms": summary.timings.get("latency_p95_s", 0.0) * 1000}))
"""

IDLE = """
import json, sys, time
from pathlib import Path
import zmq
from leukoscope.pipeline.aggregator import Aggregator
from leukoscope.pipeline.endpoints import Endpoints
from leukoscope.results.store import ResultStore
seconds = float(sys.argv[2])
context = zmq.Context()
with ResultStore(Path(sys.argv[1])) as store:
    agg = Aggregator(context, Endpoints.inproc(), store, run_id=store.start_run(), target_cells=0)
    cpu, wall = time.process_time(), time.monotonic()
    agg.run_until(lambda: time.monotonic() - wall > seconds)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    agg.close()
context.term()
print(json.dumps({"idle_cpu_percent": 100 * cpu / wall}))
"""


def _run(tree: str, code: str, *args: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--a", required=True, help="source folder of the tree before")
    parser.add_argument("--b", required=True, help="source folder of the tree after")
    parser.add_argument("--fields", type=int, default=30)
    parser.add_argument("--frame", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=5.0)
    args = parser.parse_args()

    from leukoscope.instrument.simulator.acquisition import generate_acquisition

    tmp = Path(tempfile.mkdtemp(prefix="leukoscope-ab-"))
    try:
        folder = tmp / "bench"
        generate_acquisition(
            folder, "bench", args.fields, seed=0, cells_per_field=10.0,
            frame_shape=(args.frame, args.frame),
        )  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
        print(f"{args.fields} fields of {args.frame}x{args.frame}x4, {os.cpu_count()} CPUs")
        print("| run | tree | fields/s | p95 latency ms | cells | idle CPU % |")
        print("|---|---|---|---|---|---|")
        for repeat in range(args.repeats):
            for name, tree in (("A", args.a), ("B", args.b)):
                db = tmp / f"{name}{repeat}.sqlite"
                row = _run(tree, EMBEDDED, str(folder), str(db))
                row |= _run(tree, IDLE, str(tmp / f"idle{name}{repeat}.sqlite"), str(args.idle_s))
                runs[name].append(row)
                print(
                    f"| {repeat} | {name} | {row['fields_s']:.2f} | {row['p95_ms']:.0f} | "
                    f"{row['cells']:.0f} | {row['idle_cpu_percent']:.2f} |",
                    flush=True,
                )
        med = {
            name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            for name, rows in runs.items()
        }
        for key in ("fields_s", "p95_ms", "idle_cpu_percent"):
            a, b = med["A"][key], med["B"][key]
            ratio = f"{b / a:.2f}" if a else "n/a"
            print(f"median {key}: A {a:.2f}, B {b:.2f}, B/A {ratio}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

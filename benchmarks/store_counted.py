"""What marking the counted cells costs: `finish_sample` (which rebuilds the sample's ledger and
writes `cells.counted`), the schema 2 -> 3 backfill of a whole database, and exporting a sample.

A sample of `--cells` stored cells (target 200: the rest stored but not counted) in fields of 10;
`--samples` such samples for the migration. Prints a markdown table of the medians.

    .venv/bin/python benchmarks/store_counted.py --cells 1000 --samples 50
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from leukoscope.report.tables import parquet_bytes, render_csv
from leukoscope.results.store import ResultStore
from leukoscope.results.tables import CELL_COLUMNS, cell_rows
from leukoscope.types import CELL_CLASSES, CellKey, CellResult

PER_FIELD = 10


def fill(store: ResultStore, run: str, sample: str, cells: int) -> None:
    """A sample of `cells` stored cells, fields of 10, target 200; not finished."""
    store.start_sample(run, sample, target_cells=200, fields_total=cells // PER_FIELD)
    results = []
    for i in range(cells):
        fov, index = divmod(i, PER_FIELD)
        cls = CELL_CLASSES[i % len(CELL_CLASSES)]
        p = tuple(0.8 if c == cls else 0.05 for c in CELL_CLASSES)
        results.append(CellResult(CellKey(sample, fov, index), cls, p, (p, p), 0.0))
    for fov in range(cells // PER_FIELD):
        store.add_field(run, sample, fov, PER_FIELD)
    store.add_results(run, results)


def timed(action: object, repeat: int) -> float:
    """Median seconds of `repeat` calls."""
    assert callable(action)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        path = Path(temp) / "bench.sqlite"
        with ResultStore(path) as store:
            run = store.start_run()
            fill(store, run, "S", args.cells)
            summary = store.summary(run, "S")
            finish = timed(lambda: store.finish_sample(run, summary), args.repeat)
            summarize = timed(lambda: store.summary(run, "S"), args.repeat)
            rows = cell_rows(store, run, "S")
            read = timed(lambda: cell_rows(store, run, "S"), args.repeat)
            csv_s = timed(lambda: render_csv([r.record() for r in rows], CELL_COLUMNS), args.repeat)
            parquet_s = timed(lambda: parquet_bytes(rows), args.repeat)
            for n in range(1, args.samples):
                fill(store, run, f"S{n}", args.cells)
                store.finish_sample(run, store.summary(run, f"S{n}"))
        db = sqlite3.connect(path)  # back to schema 2: the column dropped, the views gone
        for view in ("counted_cells", "cell_list", "sample_list", "run_list"):
            db.execute(f"DROP VIEW {view}")
        db.execute("ALTER TABLE cells DROP COLUMN counted")
        db.execute("UPDATE meta SET value='2' WHERE key='schema'")
        db.commit()
        db.close()
        start = time.perf_counter()
        ResultStore(path).close()
        migrate = time.perf_counter() - start
    cells = args.cells
    print(f"| step ({cells} stored cells per sample, 200 counted) | seconds (median) |")
    print("| --- | --- |")
    print(f"| `finish_sample` (summary figures + `cells.counted`) | {finish:.4f} |")
    print(f"| `summary` (for comparison: the ledger rebuilt, counted) | {summarize:.4f} |")
    print(f"| `cell_rows` (the `cell_list` SELECT) | {read:.4f} |")
    print(f"| CSV of the sample | {csv_s:.4f} |")
    print(f"| Parquet of the sample | {parquet_s:.4f} |")
    print(f"| schema 2 -> 3 migration, {args.samples} samples ({args.samples * cells} cells) | "
          f"{migrate:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()

"""Runs, samples and cells as files a user opens with pandas, R or a spreadsheet: CSV, JSON, Parquet.

Rows come from `results.tables` (the database's views); this module only writes them. The
cell columns are documented in docs/pipeline.md ("Querying results"). In CSV a boolean is `true` or
`false`; `counted` is empty while the sample's differential is not final; `simulated` is `unknown`
when the store did not record it (never empty: a simulated result must not pass for a real one).
Parquet (through pyarrow, `pip install 'leukoscope[parquet]'`) keeps the types, nulls included.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leukoscope.atomic import atomic_write_bytes
from leukoscope.errors import ParameterError
from leukoscope.results.schema import PROBABILITY_COLUMNS
from leukoscope.results.tables import CELL_COLUMNS, CellRow
from leukoscope.spreadsheet import csv_text

FORMATS = ("csv", "json", "parquet")
PARQUET_SCHEMA = "leukoscope-cells/2"
"""Recorded in a Parquet file's metadata (`leukoscope.schema`)."""


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    """`fmt` lower-cased if allowed; else ParameterError naming the choices."""
    chosen = fmt.strip().lower()
    if chosen not in allowed:
        raise ParameterError(f"format {fmt!r} is not one of {', '.join(allowed)}")
    return chosen


def _csv_value(column: str, value: Any) -> Any:
    if column == "simulated" and value is None:
        return "unknown"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def render_csv(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A header row of `columns`, then one row per record (formula-like text neutralised)."""
    return csv_text(columns, ([_csv_value(c, record[c]) for c in columns] for record in records))


def render_json(records: Sequence[dict[str, Any]]) -> str:
    """The records as a JSON array (null where a value is not recorded)."""
    return json.dumps(list(records), indent=1, ensure_ascii=False) + "\n"


def parquet_bytes(cells: Sequence[CellRow]) -> bytes:
    """The cells as a Parquet file (columns `CELL_COLUMNS`, typed, nullable where recorded so)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ParameterError(
            "--format parquet needs pyarrow: pip install 'leukoscope[parquet]' (or use csv)"
        ) from None
    types = {
        "run_id": pa.string(),
        "sample_id": pa.string(),
        "fov": pa.int32(),
        "cell_index": pa.int32(),
        "cell_class": pa.string(),
        "counted": pa.bool_(),
        "flagged": pa.bool_(),
        "flag_reason": pa.string(),
        "disagreement": pa.float64(),
        **dict.fromkeys(PROBABILITY_COLUMNS, pa.float64()),
        "bbox_x": pa.int32(),
        "bbox_y": pa.int32(),
        "bbox_w": pa.int32(),
        "bbox_h": pa.int32(),
        "simulated": pa.bool_(),
        **dict.fromkeys(("worker", "worker_key", "segment_worker"), pa.string()),
    }
    schema = pa.schema(
        [pa.field(c, types[c]) for c in CELL_COLUMNS],
        metadata={"leukoscope.schema": PARQUET_SCHEMA},
    )
    records = [cell.record() for cell in cells]
    table = pa.Table.from_pylist(records, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def default_path(sample_id: str, run_id: str, fmt: str) -> Path:
    """`cells-<sample>-<run8>.<fmt>` in the working directory, the sample id made file-safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id).strip("._") or "sample"
    return Path(f"cells-{safe[:80]}-{run_id[:8]}.{check_format(fmt)}")


def write_file(path: Path, data: bytes) -> None:
    """Write a file the user named, whole or not at all, through the one writer
    (`leukoscope.atomic`: a regular file or a new path only); one StorageError line when it cannot
    be written."""
    atomic_write_bytes(path, data)

"""Typed rows of the results store: a run and a sample as stored (Unix times, raw figures).

`ResultStore.runs()` and `samples()` return these; `Producer` is who produced a field or a cell.
Key access (`row["status"]`) works as well as attributes; attributes are what the code uses. What
a user lists (ISO times) is `tables.py`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Producer:
    """The worker that produced a field or cells: the name it gave, and the name of its CurveZMQ
    key when keys are configured (the identity the server authenticated; '' without keys)."""

    name: str = ""
    key: str = ""

    @classmethod
    def of(cls, name: str, principal: str) -> Producer:
        """From a worker's name and the dispatcher's principal (`key:<name>` with CurveZMQ)."""
        return cls(name, principal.removeprefix("key:") if principal.startswith("key:") else "")


@dataclass(frozen=True)
class _Record:
    def __getitem__(self, key: str) -> Any:
        """`row[key]` is `row.key` (KeyError for a name that is not a column)."""
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)


@dataclass(frozen=True)
class RunRecord(_Record):
    """One run as stored."""

    run_id: str
    started_s: float
    finished_s: float | None
    model_path: str
    model_version: str  # architecture, checkpoint time, sha256 of the model file; "" if none
    config_digest: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRecord:
        """From a `runs` row."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class SampleRecord(_Record):
    """One sample of one run as stored: status and its latest summary figures."""

    run_id: str
    sample_id: str
    status: str
    reason: str
    target_cells: int
    fields_total: int | None
    fields_done: int
    fields_failed: int
    cells_counted: int
    cells_flagged: int
    started_s: float
    finished_s: float | None
    elapsed_s: float
    timings: dict[str, float]
    source: str
    simulated: bool | None  # None: stored before leukoscope recorded it
    pixel_size_um: float | None = None  # the rig set-up of its fields; None: not recorded
    settings_digest: str | None = None  # '' : its fields came from different set-ups

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SampleRecord:
        """From a `samples` row (a file read as it is may lack the newer columns: None)."""
        values = {k: row[k] for k in row.keys()}  # noqa: SIM118 (Row: keys)
        values.setdefault("pixel_size_um", None)
        values.setdefault("settings_digest", None)
        simulated = values.get("simulated")
        values["simulated"] = None if simulated is None else bool(simulated)
        values["timings"] = json.loads(values["timings"])
        return cls(**{f.name: values[f.name] for f in fields(cls)})

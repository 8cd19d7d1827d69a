"""Review pictures prepared ahead: every counted cell's native crop, cut once when the sample is
analysed (end of `run` / `batch`) or in the background when `leukoscope review` starts, kept in the
results database so that a sample's first view reads small PNGs instead of its 16 MB fields.

A cell is one 8-bit grey PNG strip: each modality's native crop, auto-contrasted (1st..99.5th
percentiles to 0..255), side by side in the order of `modalities`. The display colours are applied
when a picture is served, so they stay configuration.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from leukoscope.errors import StorageError
from leukoscope.pictures.native import NativeCrops
from leukoscope.pictures.png import encode_png
from leukoscope.pictures.thumbnail import split_tiles
from leukoscope.pictures.views import auto_contrast
from leukoscope.results.connection import connect
from leukoscope.results.store import ResultStore
from leukoscope.types import Modality, SampleStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS cell_pictures (
    run_id TEXT NOT NULL, sample_id TEXT NOT NULL, fov INTEGER NOT NULL,
    cell_index INTEGER NOT NULL, modalities TEXT NOT NULL, strip BLOB NOT NULL,
    PRIMARY KEY (run_id, sample_id, fov, cell_index));
CREATE TABLE IF NOT EXISTS cell_pictures_samples (
    run_id TEXT NOT NULL, sample_id TEXT NOT NULL, cells INTEGER NOT NULL,
    crop_um REAL NOT NULL, made_s REAL NOT NULL, PRIMARY KEY (run_id, sample_id));
"""
Progress = Callable[[int, int], None]
"""Called with (cells prepared, cells of the sample)."""


def strip_png(tiles: dict[Modality, np.ndarray]) -> tuple[str, bytes]:
    """The modalities' names (comma-separated) and their auto-contrasted tiles as one PNG."""
    names = list(tiles)
    grey = [(auto_contrast(tiles[m]) * 255.0 + 0.5).astype(np.uint8) for m in names]
    return ",".join(m.value for m in names), encode_png(np.hstack(grey))


def _connect(database: Path) -> sqlite3.Connection:
    db = connect(database)
    db.executescript(SCHEMA)
    return db


def _finished(db: sqlite3.Connection, run_id: str, sample_id: str, crop_um: float) -> bool:
    row = db.execute(
        "SELECT crop_um FROM cell_pictures_samples WHERE run_id=? AND sample_id=?",
        (run_id, sample_id),
    ).fetchone()
    return row is not None and abs(float(row[0]) - crop_um) < 1e-9


def prepare_sample(
    database: Path, run_id: str, sample_id: str, crop_um: float, on_cell: Progress | None = None
) -> int:
    """Cut and store the native pictures of a finished sample's counted cells (each saved field
    read once); returns how many were stored: 0 when they already are, or when the sample's
    acquisition is not there (the page then shows the stored crops)."""
    db = _connect(database)
    try:
        if _finished(db, run_id, sample_id, crop_um):
            return 0
        with ResultStore(database, read_only=True) as results:
            rows = [r for r in results.samples(run_id) if r["sample_id"] == sample_id]
            if not rows or rows[0]["status"] == SampleStatus.RUNNING.value:
                return 0
            source = str(rows[0]["source"] or "")
            cells = sorted(results.counted_results(run_id, sample_id), key=lambda r: r.key)
        native = NativeCrops(crop_um, fields_cached=1)
        made: list[tuple[str, str, int, int, str, bytes]] = []
        for done, result in enumerate(cells, 1):
            tiles = native.tiles(source, result.key.fov, result.bbox)
            if tiles is None:
                return 0
            names, png = strip_png(tiles)
            made.append((run_id, sample_id, result.key.fov, result.key.cell_index, names, png))
            if on_cell is not None:
                on_cell(done, len(cells))
        with db:
            db.executemany("INSERT OR REPLACE INTO cell_pictures VALUES (?, ?, ?, ?, ?, ?)", made)
            db.execute(
                "INSERT OR REPLACE INTO cell_pictures_samples VALUES (?, ?, ?, ?, ?)",
                (run_id, sample_id, len(made), crop_um, time.time()),
            )
        return len(made)
    finally:
        db.close()


def pending(database: Path, crop_um: float) -> list[tuple[str, str]]:
    """Finished samples whose pictures are not prepared yet, newest first."""
    db = _connect(database)
    try:
        rows = db.execute(
            "SELECT s.run_id, s.sample_id FROM samples s LEFT JOIN cell_pictures_samples p"
            " ON p.run_id = s.run_id AND p.sample_id = s.sample_id AND abs(p.crop_um - ?) < 1e-9"
            " WHERE p.run_id IS NULL AND s.status != ? AND coalesce(s.source, '') != ''"
            " ORDER BY s.rowid DESC",
            (crop_um, SampleStatus.RUNNING.value),
        ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]
    finally:
        db.close()


class PreparedPictures:
    """Reads prepared pictures; prepares pending samples in a background thread on request."""

    def __init__(self, database: Path, crop_um: float) -> None:
        self.database = database
        self.crop_um = crop_um
        self._db = _connect(database)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tiles(
        self, run_id: str, sample_id: str, fov: int, cell_index: int
    ) -> dict[Modality, np.ndarray] | None:
        """The cell's prepared tiles (grey, 0..255), or None when not prepared."""
        with self._lock:
            row = self._db.execute(
                "SELECT modalities, strip FROM cell_pictures"
                " WHERE run_id=? AND sample_id=? AND fov=? AND cell_index=?",
                (run_id, sample_id, fov, cell_index),
            ).fetchone()
        if row is None:
            return None
        modalities = tuple(Modality(name) for name in str(row[0]).split(","))
        return split_tiles(bytes(row[1]), modalities)

    def start(self) -> None:
        """Prepare every pending sample, newest first, in a daemon thread."""
        self._thread = threading.Thread(target=self._prepare_pending, daemon=True)
        self._thread.start()

    def _prepare_pending(self) -> None:
        for run_id, sample_id in pending(self.database, self.crop_um):
            if self._stop.is_set():
                return
            try:
                prepare_sample(self.database, run_id, sample_id, self.crop_um)
            except (StorageError, sqlite3.Error, OSError):
                continue  # served from the fields (or the stored crop), as if never prepared

    def close(self) -> None:
        """Stop the background preparation (after the sample in hand) and close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        with self._lock:
            self._db.close()


def read_prepared(
    database: Path, run_id: str, sample_id: str
) -> dict[tuple[int, int], dict[Modality, np.ndarray]]:
    """Every prepared cell of a sample by (fov, cell_index), its tiles (grey, 0..255); read only,
    {} when there are none or the file has no such table."""
    try:
        db = connect(database, read_only=True)
    except sqlite3.Error:
        return {}
    try:
        rows = db.execute(
            "SELECT fov, cell_index, modalities, strip FROM cell_pictures"
            " WHERE run_id=? AND sample_id=?",
            (run_id, sample_id),
        ).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return {
        (int(r[0]), int(r[1])): split_tiles(
            bytes(r[3]), tuple(Modality(m) for m in str(r[2]).split(","))
        )
        for r in rows
    }

"""The review tables' connection: opened read-write (tables created, older ones brought up to date
in place, the SQL guards set) or read-only (also on read-only media), one write transaction at a
time. `ReviewStore` adds the review's reads and writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from leukoscope.errors import StorageError
from leukoscope.results.connection import connect
from leukoscope.review.chain import chain_existing
from leukoscope.review.schema import (
    ADDED_COLUMNS,
    GUARDS,
    SCHEMA,
    table_sql,
    widen_actions,
    widen_labels,
)

_Self = TypeVar("_Self", bound="ReviewDatabase")


class ReviewDatabase:
    """The review tables of a results database; a context manager."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._has_tables = True
        try:
            if read_only:
                self._db = self._open_read_only()
            else:
                if not self.path.is_file():
                    raise StorageError(f"results database {self.path} not found")
                self._db = connect(self.path, autocommit=True)
                self._db.row_factory = sqlite3.Row
                self._db.executescript(SCHEMA)
                self._add_columns()
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open for review: {exc}") from None

    def _add_columns(self) -> None:
        """Columns of the review tables newer than the file: added in place; audit rows written
        before the chain are chained once, in id order; then the SQL guards."""
        db = self._db
        unchained = False
        for table, columns in ADDED_COLUMNS.items():
            have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                    unchained |= name == "row_hash"
        if unchained and db.execute("SELECT 1 FROM review_audit LIMIT 1").fetchone():
            chain_existing(db)
            db.executescript(SCHEMA)  # the append-only triggers again
        if "UNIDENTIFIED" not in table_sql(db, "review_cells"):
            widen_labels(db)  # a file whose review_cells predates the UNIDENTIFIED label
            db.executescript(SCHEMA)
        if "'comment'" not in table_sql(db, "review_audit"):
            widen_actions(db)  # a file whose review_audit predates comments
            db.executescript(SCHEMA)
        db.executescript(GUARDS)

    def _open_read_only(self) -> sqlite3.Connection:
        """Read only, also on read-only media (`results.connection.connect`)."""
        db = connect(self.path, read_only=True, autocommit=True)
        db.row_factory = sqlite3.Row
        try:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.Error:
            db.close()
            raise
        self._has_tables = "review_samples" in names
        return db

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._db.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction taken at once (BEGIN IMMEDIATE): writers are serialised."""
        if self.read_only:
            raise StorageError(f"{self.path}: opened read-only")
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

    def _rows(self, sql: str, params: tuple[object, ...]) -> list[sqlite3.Row]:
        if not self._has_tables:
            return []
        try:
            return list(self._db.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from None

"""The review tables' connection: opened read-write (an older results database migrated in place,
`results.migrations`: the review tables are part of schema 5) or read-only (also on read-only
media), one write transaction at a time. `ReviewStore` adds the review's reads and writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from leukoscope.errors import StorageError
from leukoscope.results.connection import connect
from leukoscope.results.migrations import migrate
from leukoscope.results.schema import READABLE_VERSIONS, SCHEMA_VERSION

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
                found = migrate(self._db, self.path)
                if found not in READABLE_VERSIONS:
                    self._db.close()
                    raise StorageError(
                        f"{self.path}: results schema {found}, this build reads {SCHEMA_VERSION}"
                    )
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open for review: {exc}") from None

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

"""Local accounts of the review page, in the results database's `review_users` table.

A name follows the reviewer-name rule (`records.check_reviewer`) and is unique regardless of case;
a password has 10-256 characters and is stored only as an Argon2id hash (argon2-cffi's
PasswordHasher), re-hashed at the next login when the hasher's parameters change. A login fails
with one message, in comparable time, for an unknown name, a disabled account or a wrong password
(an unknown name is checked against a dummy hash).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from leukoscope.errors import LeukoscopeError, ParameterError, StorageError
from leukoscope.results.review_database import ReviewDatabase
from leukoscope.results.review_records import check_reviewer

PASSWORD_MIN = 10
PASSWORD_MAX = 256
REFUSED = "wrong name or password, or the account is disabled"
HASHER = PasswordHasher()  # Argon2id with argon2-cffi's recommended parameters


class LoginRefused(LeukoscopeError, PermissionError):
    """A login refused: unknown name, disabled account or wrong password (one message for all)."""


@dataclass(frozen=True)
class Account:
    """One account: its name as added, whether it may log in, when it was made and last changed."""

    name: str
    active: bool
    created_s: float
    changed_s: float


def check_password(password: str) -> str:
    """`password` unchanged if it has 10-256 characters; else ParameterError."""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ParameterError(
            f"a password needs {PASSWORD_MIN}-{PASSWORD_MAX} characters"
            + (f", got {len(password)}" if isinstance(password, str) else "")
        )
    return password


@cache
def _dummy_hash() -> str:
    """A hash with the real parameters, verified for unknown names so they take as long."""
    return HASHER.hash("no account has this password")


def _matches(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


class Accounts(ReviewDatabase):
    """The accounts of one results database; a context manager. Thread-safe (one lock)."""

    def __init__(self, database: Path | str) -> None:
        if not Path(database).is_file():
            raise ParameterError(f"results database {database} not found (pass --db)")
        super().__init__(database)  # the review tables, review_users among them
        self._lock = threading.Lock()

    def _execute(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._db.execute(sql, params).fetchall())
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: {exc}") from None

    def _row(self, name: str) -> sqlite3.Row | None:
        rows = self._execute("SELECT * FROM review_users WHERE name = ?", (name,))
        return rows[0] if rows else None

    @staticmethod
    def _account(row: sqlite3.Row) -> Account:
        return Account(row["name"], bool(row["active"]), row["created_s"], row["changed_s"])

    # -- reading ---------------------------------------------------------------------------------

    def account(self, name: str) -> Account | None:
        """The account called `name` (any case), or None."""
        row = self._row(name.strip()) if isinstance(name, str) else None
        return self._account(row) if row is not None else None

    def list_users(self) -> list[Account]:
        """Every account, by name."""
        rows = self._execute("SELECT * FROM review_users ORDER BY name")
        return [self._account(r) for r in rows]

    def _existing(self, name: str) -> Account:
        found = self.account(check_reviewer(name))
        if found is None:
            raise ParameterError(f"no user {name.strip()!r} (leukoscope user list shows them)")
        return found

    # -- writing ---------------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> Account:
        """A new active account; ParameterError for a bad or taken name or a bad password."""
        name, password = check_reviewer(name), check_password(password)
        if self.account(name) is not None:
            raise ParameterError(f"user {name!r} exists already (leukoscope user reset changes "
                                 "its password)")  # fmt: skip
        digest = HASHER.hash(password)
        now = time.time()
        try:
            self._execute(
                "INSERT INTO review_users (name, password_hash, active, created_s, changed_s)"
                " VALUES (?, ?, 1, ?, ?)",
                (name, digest, now, now),
            )
        except StorageError as exc:
            if "UNIQUE" in str(exc):  # added by another process meanwhile
                raise ParameterError(f"user {name!r} exists already") from None
            raise
        return self._existing(name)

    def reset_password(self, name: str, password: str) -> Account:
        """A new password; the account's open sessions end."""
        account, password = self._existing(name), check_password(password)
        self._execute(
            "UPDATE review_users SET password_hash = ?, changed_s = ? WHERE name = ?",
            (HASHER.hash(password), time.time(), account.name),
        )
        return self._existing(account.name)

    def _set_active(self, name: str, active: bool) -> Account:
        account = self._existing(name)
        if account.active != active:
            self._execute(
                "UPDATE review_users SET active = ?, changed_s = ? WHERE name = ?",
                (int(active), time.time(), account.name),
            )
        return self._existing(account.name)

    def disable_user(self, name: str) -> Account:
        """The account may no longer log in; its open sessions end at their next request."""
        return self._set_active(name, False)

    def enable_user(self, name: str) -> Account:
        """The account may log in again."""
        return self._set_active(name, True)

    # -- logging in ------------------------------------------------------------------------------

    def check_login(self, name: str, password: str) -> Account:
        """The account if `password` is its password and it is active; else LoginRefused with the
        same message and in comparable time whatever the reason."""
        try:
            row = self._row(check_reviewer(name))
        except ParameterError:
            row = None
        stored = row["password_hash"] if row is not None else _dummy_hash()
        ok = _matches(stored, password if isinstance(password, str) else "")
        if not ok or row is None or not row["active"]:
            raise LoginRefused(REFUSED)
        if HASHER.check_needs_rehash(stored):  # parameters changed: store a fresh hash
            self._execute(
                "UPDATE review_users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                (HASHER.hash(password), row["name"], stored),
            )
        return self._account(row)

    def authenticate(self, name: str, password: str) -> str:
        """The account's name (as added) for a right password of an active account; else
        LoginRefused (see `check_login`)."""
        return self.check_login(name, password).name

"""`leukoscope user add|list|disable|enable|reset` as a script runs them (--password-stdin), on a
real results database: the accounts then log in (or not) to the review app."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from leukoscope.review.accounts import Accounts, LoginRefused

from ..cli_helpers import run_cli
from ..integration.review_helpers import finished_sample


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LEUKOSCOPE_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "results.sqlite"
    finished_sample(path)
    return path


def user(monkeypatch: pytest.MonkeyPatch, *args: object, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return run_cli(monkeypatch, "user", *args)


def test_add_list_disable_enable_reset(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ("--db", database)
    assert user(monkeypatch, "add", "Ann Lee", *db, "--password-stdin",
                stdin="first password\n") == 0  # fmt: skip
    assert "added user 'Ann Lee'" in capsys.readouterr().out
    assert user(monkeypatch, "add", "Bo", *db, "--password-stdin", stdin="bo's password") == 0
    capsys.readouterr()
    assert user(monkeypatch, "list", *db) == 0
    rows = [line.split("│")[1:4] for line in capsys.readouterr().out.splitlines() if "│" in line]
    assert [[c.strip() for c in row[:2]] for row in rows] == [["Ann Lee", "yes"], ["Bo", "yes"]]
    assert rows[0][2].strip().endswith("UTC")
    with Accounts(database) as accounts:
        assert accounts.authenticate("Ann Lee", "first password") == "Ann Lee"
        assert accounts.authenticate("Bo", "bo's password") == "Bo"  # no newline in it
    assert user(monkeypatch, "disable", "bo", *db) == 0
    assert "user 'Bo' is disabled" in capsys.readouterr().out
    assert user(monkeypatch, "list", *db) == 0
    assert "│ Bo      │ no " in capsys.readouterr().out
    with Accounts(database) as accounts, pytest.raises(LoginRefused):
        accounts.authenticate("Bo", "bo's password")
    assert user(monkeypatch, "enable", "Bo", *db) == 0
    assert user(monkeypatch, "reset", "Ann Lee", *db, "--password-stdin",
                stdin="second password\n") == 0  # fmt: skip
    with Accounts(database) as accounts:
        assert accounts.authenticate("Bo", "bo's password") == "Bo"
        assert accounts.authenticate("Ann Lee", "second password") == "Ann Lee"
        with pytest.raises(LoginRefused):
            accounts.authenticate("Ann Lee", "first password")


def test_the_configured_database_is_the_default(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEUKOSCOPE__PIPELINE__RESULTS_DB", str(database))
    assert user(monkeypatch, "add", "Cy", "--password-stdin", stdin="cy's password\n") == 0
    assert user(monkeypatch, "list") == 0
    assert "Cy" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "Ann"), "short\n", "error: a password needs 10-256 characters, got 5"),
        (("add", "Ann"), "x" * 257 + "\n", "error: a password needs 10-256 characters, got 257"),
        (("add", "Ann"), "", "error: no password on standard input"),
        (("add", "<b>"), "long enough pw\n", "error: reviewer name '<b>' is not allowed"),
        (("add", "ann lee"), "long enough pw\n", "error: user 'Ann Lee' exists already"),
        (("reset", "Dee"), "long enough pw\n", "error: no user 'Dee'"),
        (("disable", "Dee"), "", "error: no user 'Dee' (leukoscope user list shows them)"),
        (("enable", "Dee"), "", "error: no user 'Dee'"),
    ],
)
def test_bad_input_is_one_error_line(
    database: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    stdin: str,
    message: str,
) -> None:
    with Accounts(database) as accounts:
        accounts.add_user("Ann Lee", "first password")
    code = user(monkeypatch, *args, "--db", database,
                *(("--password-stdin",) if args[0] in ("add", "reset") else ()), stdin=stdin)  # fmt: skip
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_no_terminal_and_no_database_are_one_error_line(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert user(monkeypatch, "add", "Ann", "--db", database) == 2  # stdin is no terminal
    assert capsys.readouterr().err.strip() == (
        "error: no terminal to ask the password on: use --password-stdin"
    )
    missing = database.parent / "missing.sqlite"
    assert user(monkeypatch, "list", "--db", missing) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: results database {missing} not found (pass --db)"
    )
    assert not missing.exists()

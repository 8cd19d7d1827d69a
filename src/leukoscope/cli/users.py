"""`leukoscope user add|reset|disable|enable|list`: the review page's local accounts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from leukoscope.cli.core import app as root
from leukoscope.cli.core import console, settings
from leukoscope.cli.options import RESULTS_DB_OPTION
from leukoscope.errors import ParameterError

if TYPE_CHECKING:
    from leukoscope.review.accounts import Accounts

user_app = typer.Typer(
    help="Accounts that log in to the review page (leukoscope review).", no_args_is_help=True
)
root.add_typer(user_app, name="user")

NameArgument = Annotated[str, typer.Argument(help="The account's name (as audit rows show it).")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from one line of standard input (scripts)."
    ),
]


def _accounts(db: Path | None) -> Accounts:
    """The accounts of the results database `db` (default: the configured one)."""
    from leukoscope.report.data import open_results
    from leukoscope.review.accounts import Accounts

    database = db or settings().pipeline.results_db
    open_results(database).close()  # one clear line for a missing or foreign file
    return Accounts(database)


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or a hidden prompt asked twice; checked."""
    from leukoscope.review.accounts import check_password

    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
        if not password:
            raise ParameterError("no password on standard input (--password-stdin reads one line)")
        return check_password(password)
    if not sys.stdin.isatty():
        raise ParameterError("no terminal to ask the password on: use --password-stdin")
    first = typer.prompt("Password", hide_input=True, err=True)
    check_password(first)
    if typer.prompt("Password again", hide_input=True, err=True) != first:
        raise ParameterError("the two passwords differ: nothing changed")
    return str(first)


def _said(text: str) -> None:
    console.print(text, markup=False, highlight=False)


@user_app.command("add")
def user_add(
    name: NameArgument, db: RESULTS_DB_OPTION = None, password_stdin: PasswordStdin = False
) -> None:
    """Add an account (asks its password twice, or reads it with --password-stdin)."""
    from leukoscope.results.review_records import check_reviewer

    name = check_reviewer(name)
    with _accounts(db) as accounts:
        found = accounts.account(name)
        if found is not None:  # said before the password is asked for
            raise ParameterError(f"user {found.name!r} exists already (leukoscope user reset "
                                 "changes its password)")  # fmt: skip
        added = accounts.add_user(name, read_password(password_stdin))
    _said(f"added user {added.name!r}")


@user_app.command("reset")
def user_reset(
    name: NameArgument, db: RESULTS_DB_OPTION = None, password_stdin: PasswordStdin = False
) -> None:
    """Give an account a new password; its open sessions end."""
    with _accounts(db) as accounts:
        found = accounts.account(name)
        if found is None:
            raise ParameterError(f"no user {name.strip()!r} (leukoscope user list shows them)")
        account = accounts.reset_password(found.name, read_password(password_stdin))
    _said(f"new password for user {account.name!r}; its open sessions end")


@user_app.command("disable")
def user_disable(name: NameArgument, db: RESULTS_DB_OPTION = None) -> None:
    """Stop an account from logging in; its open sessions end at their next request."""
    with _accounts(db) as accounts:
        account = accounts.disable_user(name)
    _said(f"user {account.name!r} is disabled")


@user_app.command("enable")
def user_enable(name: NameArgument, db: RESULTS_DB_OPTION = None) -> None:
    """Let a disabled account log in again."""
    with _accounts(db) as accounts:
        account = accounts.enable_user(name)
    _said(f"user {account.name!r} is enabled")


@user_app.command("list")
def user_list(db: RESULTS_DB_OPTION = None) -> None:
    """Every account: name, whether it may log in, when it was added."""
    from leukoscope.review.page import utc

    with _accounts(db) as accounts:
        found = accounts.list_users()
    if not found:
        _said("no users yet: add one with leukoscope user add NAME")
        return
    table = Table("name", "active", "created")
    for account in found:
        table.add_row(account.name, "yes" if account.active else "no", utc(account.created_s))
    console.print(table, markup=False, highlight=False)

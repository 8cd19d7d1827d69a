"""`leukoscope lis listen|import|send|status|resend`: orders in, results out (docs/lis.md)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from leukoscope.cli.core import app as root
from leukoscope.cli.core import console, err_console, settings
from leukoscope.cli.help import RESULTS_DB
from leukoscope.errors import LisError

lis_app = typer.Typer(
    help="The laboratory system: orders in (worklist), results out (MLLP, FHIR), the outbox.",
    no_args_is_help=True,
)
root.add_typer(lis_app, name="lis")

DbOption = Annotated[
    Path | None, typer.Option("--db", help="Results database (SQLite).", show_default=RESULTS_DB)
]


def _say(line: str) -> None:
    err_console.print(line, markup=False, highlight=False)


def _database(db: Path | None) -> Path:
    return db or settings().pipeline.results_db


@lis_app.command("listen")
def listen_command(
    db: DbOption = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on; default: config lis.listen_port.")
    ] = None,
) -> None:
    """Receive orders (OML^O33, ORM^O01) over MLLP and answer each with an ACK (Ctrl-C to stop)."""
    from leukoscope.lis.db import connect
    from leukoscope.lis.listener import serve

    current = settings()
    if port is not None:
        current.lis.listen_port = port
    database = _database(db)
    connection = connect(database, create=True)

    def ready(bound: int) -> None:
        _say(f"listening for orders on {current.lis.listen_host}:{bound} (results {database})")

    try:
        asyncio.run(serve(connection, current, _say, ready))
    finally:
        connection.close()


@lis_app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(help="Worklist files: .csv, or HL7 (.hl7 ...).")],
    db: DbOption = None,
) -> None:
    """File orders from worklist files; each refused order or message is kept and named."""
    from leukoscope.lis import orders
    from leukoscope.lis.db import connect

    connection = connect(_database(db), create=True)
    filed = refused = 0
    try:
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise LisError(
                    f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
                ) from None
            source = f"file {path}"
            if path.suffix.lower() == ".csv":
                try:
                    rows = orders.parse_csv(text)
                except LisError as exc:
                    orders.reject(connection, "file", source, str(exc), text)
                    typer.echo(f"error: {path}: {exc}", err=True)
                    refused += 1
                    continue
                for line, result, raw in rows:
                    if isinstance(result, LisError):
                        orders.reject(connection, "file", f"{source} line {line}", str(result), raw)
                        typer.echo(f"error: {path} line {line}: {result}", err=True)
                        refused += 1
                        continue
                    orders.store(connection, [orders.Received(orders.NEW, result)], source, "")
                    filed += 1
                continue
            for number, message in enumerate(orders.split_messages(text), start=1):
                try:
                    filed += len(orders.receive(connection, message, "file", source))
                except LisError as exc:
                    typer.echo(f"error: {path} message {number}: {exc}", err=True)
                    refused += 1
    finally:
        connection.close()
    _say(f"filed {filed} order(s), refused {refused}")
    if refused:
        raise typer.Exit(2)


@lis_app.command("send")
def send_command(
    db: DbOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running: send each result as it is released.")
    ] = False,
) -> None:
    """Queue released results that have an order and deliver them (MLLP with ACK, FHIR)."""
    from leukoscope.lis.sender import send

    send(_database(db), settings(), follow=follow, say=_say)


def _when(seconds: float | None) -> str:
    return "" if seconds is None else datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


@lis_app.command("status")
def status_command(
    db: DbOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="Rows of each table shown.")] = 50,
) -> None:
    """Show the outbox, the results held for want of an order and the refused input.

    The outbox lists each message as pending, sent, or failed with the reason."""
    from leukoscope.lis import outbox
    from leukoscope.lis.db import connect

    connection = connect(_database(db))
    try:
        rows = outbox.items(connection, limit)
        held = outbox.without_order(connection)
        refused = connection.execute(
            "SELECT * FROM lis_rejected ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
    finally:
        connection.close()
    table = Table("id", "sample", "release", "channel", "state", "tries", "queued", "sent",
                  "reason / control id", title="outbox")  # fmt: skip
    for item in rows:
        detail = item.reason or item.control_id
        table.add_row(str(item.id), item.sample_id, str(item.release_no), item.channel,
                      item.state, str(item.attempts), _when(item.queued_s), _when(item.sent_s),
                      detail)  # fmt: skip
    console.print(table)
    counts = {s: sum(i.state == s for i in rows) for s in ("pending", "sent", "failed")}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()), markup=False)
    for run_id, sample_id, release_no in held:
        console.print(f"no order: {sample_id} release {release_no} (run {run_id[:8]}) is not "
                      "sent until its order arrives", markup=False)  # fmt: skip
    for row in refused:
        console.print(f"refused #{row['id']} {_when(row['received_s'])} {row['source']}: "
                      f"{row['error']}", markup=False, highlight=False)  # fmt: skip


@lis_app.command("resend")
def resend_command(
    item_id: Annotated[int, typer.Argument(help="Outbox id (leukoscope lis status).")],
    db: DbOption = None,
) -> None:
    """Put an outbox message back in the queue (it leaves with the next lis send)."""
    from leukoscope.lis import outbox
    from leukoscope.lis.db import connect

    connection = connect(_database(db))
    try:
        item = outbox.resend(connection, item_id)
    finally:
        connection.close()
    _say(f"outbox {item_id} ({item.sample_id} release {item.release_no}, {item.channel}) "
         "queued again")  # fmt: skip

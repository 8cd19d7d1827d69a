"""`leukoscope runs`, `samples` and `cells`: what the results database holds, as tables and files.

Every command opens the database read-only (it may sit on read-only media) and never creates one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from leukoscope.cli.core import app, console, err_console, settings
from leukoscope.cli.help import RESULTS_DB

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db", help="Results database (SQLite); opened read-only.", show_default=RESULTS_DB
    ),
]
ListFormat = Annotated[str, typer.Option("--format", help="table (on screen), csv or json.")]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="File to write (csv/json); default or '-': stdout."),
]


def _database(db: Path | None) -> Path:
    return db or settings().pipeline.results_db


def _emit(text: str, out: Path | None) -> None:
    """Text to stdout, or to the file the user named (written whole or not at all)."""
    from leukoscope.report.tables import write_file

    if out is None or str(out) == "-":
        typer.echo(text, nl=False)
        return
    write_file(out, text.encode("utf-8"))
    err_console.print(f"wrote {out}", markup=False, highlight=False)


def _listing(records: list[dict[str, Any]], columns: tuple[str, ...], fmt: str) -> str:
    from leukoscope.report.tables import render_csv, render_json

    return render_csv(records, columns) if fmt == "csv" else render_json(records)


def _simulated(value: bool | None) -> str:
    if value is None:
        return "[yellow]unknown[/]"
    return "[bold red]SIMULATED[/]" if value else "no"


def _short_model(version: str) -> str:
    """The model version with its SHA-256 cut to 12 digits (csv/json keep it whole)."""
    if not version:
        return "[yellow]not recorded[/] (serve: its workers load the model)"
    return re.sub(r"sha256:([0-9a-f]{12})[0-9a-f]+", r"sha256:\1", version)


def _time(value: str | None) -> str:
    """An ISO UTC time as 'YYYY-MM-DD HH:MM' (two words, so a narrow column wraps between them)."""
    return "—" if value is None else value.replace("T", " ").removesuffix("+00:00")[:16]


def _heading(text: str) -> None:
    """A listing's first line, wrapped by the terminal rather than cut into the table."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _table() -> Table:
    """A listing table that fits an 80-column terminal: light rules, one space between columns;
    identifiers never wrap, other cells wrap only between words."""
    return Table(
        box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
        show_edge=False,
    )  # fmt: skip


def _run_id(store: Any, run: str) -> str:
    """The run named by `run` (its id or a unique prefix); ParameterError listing candidates."""
    from leukoscope.errors import ParameterError
    from leukoscope.report.data import matching_runs
    from leukoscope.results.tables import run_rows

    ids = [r.run_id for r in run_rows(store)]
    matches = matching_runs(ids, run)
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join((matches or ids)[-10:]) or "none"
    what = f"{len(matches)} runs match" if matches else "no run"
    raise ParameterError(f"{what} {run!r} in {store.path} (runs: {shown})")


@app.command("runs")
def runs_command(db: DbOption = None, fmt: ListFormat = "table", out: OutOption = None) -> None:
    """List the runs in the results database: when, how many samples, which model."""
    from leukoscope.report.data import open_results
    from leukoscope.report.tables import check_format
    from leukoscope.results.tables import RUN_COLUMNS, record, run_rows

    chosen = check_format(fmt, ("table", "csv", "json"))
    with open_results(_database(db)) as store:
        rows = run_rows(store)
    if chosen != "table":
        _emit(_listing([record(r) for r in rows], RUN_COLUMNS, chosen), out)
        return
    _heading(f"{len(rows)} run(s) in {_database(db)}; times UTC")
    table = _table()
    table.add_column("run", no_wrap=True)
    for column in ("started", "finished", "samples", "model"):
        table.add_column(column, no_wrap=column == "samples")
    for r in rows:
        model = _short_model(r.model_version)
        table.add_row(
            r.run_id[:12], _time(r.started_utc), _time(r.finished_utc), str(r.samples), model
        )
    console.print(table)


@app.command("samples")
def samples_command(
    run: Annotated[
        str | None, typer.Option(help="Only this run (its id or a unique prefix).")
    ] = None,
    db: DbOption = None,
    fmt: ListFormat = "table",
    out: OutOption = None,
) -> None:
    """List the samples in the results database: status, cells counted and flagged, fields."""
    from leukoscope.report.data import open_results
    from leukoscope.report.tables import check_format
    from leukoscope.results.tables import SAMPLE_COLUMNS, record, sample_rows

    chosen = check_format(fmt, ("table", "csv", "json"))
    with open_results(_database(db)) as store:
        rows = sample_rows(store, None if run is None else _run_id(store, run))
    if chosen != "table":
        _emit(_listing([record(r) for r in rows], SAMPLE_COLUMNS, chosen), out)
        return
    _heading(f"{len(rows)} sample(s) in {_database(db)}; times UTC")
    table = _table()
    for column in ("run", "sample", "status", "cells", "flagged", "fields", "started"):
        table.add_column(column, no_wrap=column not in ("fields", "started"))
    table.add_column("simulated", no_wrap=True)
    for r in rows:
        fields = f"{r.fields_done}/{r.fields_total if r.fields_total is not None else '?'}"
        if r.fields_failed:
            fields += f" {r.fields_failed} failed"
        table.add_row(
            r.run_id[:8], r.sample_id, r.status, f"{r.cells_counted}/{r.target_cells or 'all'}",
            str(r.cells_flagged), fields, _time(r.started_utc), _simulated(r.simulated),
        )  # fmt: skip
    console.print(table)


@app.command("cells")
def cells_command(
    sample: Annotated[str, typer.Argument(help="Sample id.")],
    run: Annotated[
        str | None,
        typer.Option(help="Run id (or a unique prefix); default: the latest run with the sample."),
    ] = None,
    db: DbOption = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or json.")] = "csv",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="File to write; '-' = stdout (csv, json); default: cells-<sample>-<run>.",
        ),
    ] = None,
    counted_only: Annotated[
        bool, typer.Option("--counted-only", help="Only the cells the differential counts.")
    ] = False,
) -> None:
    """Export a sample's cells as CSV, Parquet or JSON: class, counted or not, probabilities."""
    from leukoscope.ids import check_sample_id
    from leukoscope.report.data import open_results, resolve_run
    from leukoscope.report.tables import (
        check_format,
        default_path,
        parquet_bytes,
        render_csv,
        render_json,
        write_file,
    )
    from leukoscope.results.tables import CELL_COLUMNS, cell_rows

    check_sample_id(sample)
    chosen = check_format(fmt)
    if chosen == "parquet" and out is not None and str(out) == "-":
        from leukoscope.errors import ParameterError

        raise ParameterError("parquet is binary: name a file with --out")
    with open_results(_database(db)) as store:
        run_id = resolve_run(store, sample, run)
        rows = cell_rows(store, run_id, sample)
    if counted_only:
        rows = [r for r in rows if r.counted]
    if chosen == "parquet":
        data = parquet_bytes(rows)
    else:
        records = [r.record() for r in rows]
        text = render_csv(records, CELL_COLUMNS) if chosen == "csv" else render_json(records)
        data = text.encode("utf-8")
    if out is not None and str(out) == "-":
        typer.echo(data.decode("utf-8"), nl=False)
    else:
        target = out or default_path(sample, run_id, chosen)
        write_file(target, data)
        counted = sum(1 for r in rows if r.counted)
        err_console.print(
            f"wrote {target}: {len(rows)} cells ({counted} counted), sample {sample}, run {run_id}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    if any(r.simulated for r in rows):
        err_console.print("SIMULATED sample: these cells are not a patient's.", style="bold red")

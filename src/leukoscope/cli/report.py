"""`leukoscope report` and `review`: what a user reads and signs off."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, err_console, settings, write_text
from leukoscope.cli.options import RESULTS_DB_OPTION


@app.command("report")
def report_command(
    sample: Annotated[str, typer.Argument(help="Sample id.")],
    run: Annotated[
        str | None,
        typer.Option(help="Run id (or a unique prefix); default: the latest run with the sample."),
    ] = None,
    db: RESULTS_DB_OPTION = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="File to write; '-' = stdout; default: report-<sample>-<run>."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="html, json or csv; hl7 (v2.5.1 ORU^R01) or fhir (R4 Bundle) for a released sample.",
        ),
    ] = "html",
) -> None:
    """Write a sample's report: differential, 95% CIs, flags, chart and cell gallery; or the
    released differential for a laboratory information system (--format hl7|fhir)."""
    from rich.progress import Progress

    from leukoscope.ids import check_sample_id
    from leukoscope.report.data import GALLERY_LIMIT, gather_report, open_results
    from leukoscope.report.render import check_format, default_output, render_report

    check_sample_id(sample)
    current = settings()
    html = check_format(fmt) == "html"  # json/csv: every counted cell, no images
    with (
        open_results(db or current.pipeline.results_db) as store,
        Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar,
    ):
        task = bar.add_task(f"reading sample {sample}", total=None)

        def picture(done: int, total: int) -> None:
            bar.update(task, description="cell pictures", completed=done, total=total)

        limit = GALLERY_LIMIT if html else None
        data = gather_report(
            store, sample, run, current, gallery_limit=limit, with_thumbnails=html,
            on_picture=picture,
        )  # fmt: skip
    order = None
    if fmt.lower() in ("hl7", "fhir"):  # with its order from the worklist, when there is one
        from leukoscope.lis.orders import order_for

        order = order_for(db or current.pipeline.results_db, data.sample_id)
    text = render_report(data, fmt, order=order)
    if out is not None and str(out) == "-":
        typer.echo(text, nl=False)
        return
    target = out or default_output(data.sample_id, data.run_id, fmt)
    write_text(target, text)
    err_console.print(f"wrote {target}", markup=False, highlight=False)


@app.command("review")
def review_command(
    db: RESULTS_DB_OPTION = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; off loopback a --token is required.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(envvar="LEUKOSCOPE_REVIEW_TOKEN", help="Access token (16+ characters)."),
    ] = None,
) -> None:
    """Serve the review web page: log in, reclassify cells, sign a sample off (docs/review.md)."""
    from leukoscope.report.data import open_results
    from leukoscope.review.accounts import Accounts
    from leukoscope.review.server import check_bind, check_port, serve

    check_bind(host, port, token)
    current = settings()
    database = db or current.pipeline.results_db
    open_results(database).close()  # one clear line for a missing or foreign file
    check_port(host, port)
    with Accounts(database) as accounts:
        if not any(a.active for a in accounts.list_users()):
            err_console.print(
                "no account may log in yet: add one with leukoscope user add NAME", markup=False
            )
    err_console.print(f"review {database} at http://{host}:{port}/ (Ctrl-C to stop)", markup=False)
    serve(database, current, host=host, port=port, token=token)


@app.command("verify")
def verify_command(
    db: RESULTS_DB_OPTION = None,
) -> None:
    """Check the review records (audit chain, cells, sample states, releases) for changes made
    outside the review; exit status 1 and every problem, first bad row first, when any."""
    from leukoscope.report.data import open_results
    from leukoscope.results.review_store import ReviewStore

    database = db or settings().pipeline.results_db
    open_results(database).close()  # one clear line for a missing or foreign file
    with ReviewStore(database, read_only=True) as reviews:
        problems = reviews.verify()
        head = reviews.head()
    if problems:
        for problem in problems:
            typer.echo(f"broken: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"review records intact; chain head sha256:{head}", err=True)

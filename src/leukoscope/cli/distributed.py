"""`leukoscope keys generate`, `serve`, `worker segment|classify`, `send` (pipeline over tcp)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import (
    app,
    console,
    err_console,
    notice,
    pipeline_settings,
    print_summary,
    settings,
)
from leukoscope.cli.options import RESULTS_DB_OPTION, TARGET_CELLS_OPTION
from leukoscope.types import SampleSummary

keys_app = typer.Typer(help="CurveZMQ keys for pipelines that span hosts.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
worker_app = typer.Typer(
    help="Run a pipeline worker against a `serve` process.", no_args_is_help=True
)
app.add_typer(worker_app, name="worker")

ConnectOption = Annotated[
    str, typer.Option("--connect", help="The serve process: tcp://HOST:PORT (its base port).")
]


@keys_app.command("generate")
def keys_generate(
    folder: Annotated[Path, typer.Argument(help="Where to write the key files.")],
    force: Annotated[
        bool, typer.Option(help="Replace existing keys (locks out workers holding the old ones).")
    ] = False,
    worker: Annotated[
        str,
        typer.Option(
            help="Instead: one worker host's own key pair NAME.key(_secret), allowed by the server."
        ),
    ] = "",
) -> None:
    """Write a server and a client key pair (ZeroMQ certificate files), or one worker's pair."""
    from leukoscope.pipeline.security import generate_keys, generate_worker_key

    if worker:
        secret = generate_worker_key(folder, worker, force=force)
        console.print(
            f"worker {worker} secret key: {secret} (copy to that worker host only)", soft_wrap=True
        )
        console.print(
            f"on {worker}: pipeline.curve_client_key = this secret key and "
            "pipeline.curve_server_key = the server public key; the server allows it as "
            f"{worker!r} (restart serve to pick it up)",
            soft_wrap=True,
        )
        return
    server_secret, client_secret = generate_keys(folder, force=force)
    console.print(f"server secret key: {server_secret} (keep on the central host)")
    console.print(f"client secret key: {client_secret} (copy to source hosts)")
    console.print(f"server public key: {server_secret.with_suffix('.key')} (copy to worker hosts)")
    console.print(
        "central host: pipeline.curve_server_key = the server secret key; "
        "worker hosts: pipeline.curve_server_key = the server public key and "
        "pipeline.curve_client_key = their own secret key (`keys generate DIR --worker NAME`)",
        soft_wrap=True,
    )


@app.command("serve")
def serve_command(
    bind: Annotated[
        str, typer.Option("--bind", help="tcp://ADDR:PORT; five ports from PORT are used.")
    ] = "tcp://127.0.0.1:5550",
    cells: TARGET_CELLS_OPTION = None,
    db: RESULTS_DB_OPTION = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Run id to continue (restart after a crash).")
    ] = None,
) -> None:
    """Run the aggregator for workers and sources on other processes or hosts."""
    from leukoscope.pipeline.distributed import serve, stop_on_signals
    from leukoscope.pipeline.endpoints import Endpoints

    current = pipeline_settings(cells, db)
    endpoints = Endpoints.parse(bind)
    host = bind.partition("://")[2].rpartition(":")[0].strip("[]")

    def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
        if summary.status.value != "running":
            print_summary(summary)

    with stop_on_signals() as stop:
        err_console.print(f"serving on {bind} (results in {current.pipeline.results_db})")
        run_id = serve(
            current,
            endpoints,
            host,
            database=current.pipeline.results_db,
            run_id=run,
            on_summary=show,
            stop=stop,
        )
    err_console.print(f"run {run_id} stopped")


@worker_app.command("segment")
def worker_segment(connect: ConnectOption) -> None:
    """Find cells in framesets handed out by the serve process."""
    _run_worker("segment", connect)


@worker_app.command("classify")
def worker_classify(connect: ConnectOption) -> None:
    """Classify cell batches handed out by the serve process."""
    _run_worker("classify", connect)


def _run_worker(role: str, connect: str) -> None:
    from leukoscope.pipeline.distributed import run_worker, stop_on_signals
    from leukoscope.pipeline.endpoints import Endpoints

    endpoints = Endpoints.parse(connect)
    with stop_on_signals() as stop:
        run_worker(
            "segment" if role == "segment" else "classify",
            settings(),
            endpoints,
            stop=stop,
            notify=notice,
        )


@app.command("send")
def send_command(
    paths: Annotated[list[Path], typer.Argument(help="Saved acquisition folders.")],
    connect: ConnectOption,
) -> None:
    """Stream saved acquisitions to a serve process and print each final summary."""
    from leukoscope.errors import StorageError
    from leukoscope.pipeline.distributed import send, stop_on_signals
    from leukoscope.pipeline.endpoints import Endpoints
    from leukoscope.pipeline.sources import SampleJob, saved_acquisition

    jobs: list[SampleJob] = []
    skipped: list[tuple[Path, str]] = []
    for path in paths:  # every path checked before the server is waited for
        try:
            jobs.append(saved_acquisition(path))
        except StorageError as exc:
            skipped.append((path, str(exc)))
    if not jobs:
        raise StorageError(f"nothing to send: {'; '.join(reason for _, reason in skipped)}")
    for path, reason in skipped:
        err_console.print(f"skipped {path}: {reason}", markup=False, highlight=False)
    with stop_on_signals() as stop:
        finals = send(settings(), jobs, Endpoints.parse(connect), stop=stop, notify=notice)
    for summary in finals.values():
        print_summary(summary)
    if len(finals) < len(paths):
        raise typer.Exit(1)

"""`leukoscope run` and `batch`: the embedded pipeline with its live display."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, console, err_console, notice, pipeline_settings, print_summary
from leukoscope.cli.options import REPLACE, new_sample_folder
from leukoscope.types import SampleSummary


def _show_outcome(outcome: object) -> None:
    from leukoscope.pipeline.service import RunOutcome

    assert isinstance(outcome, RunOutcome)
    for summary in outcome.summaries.values():
        print_summary(summary)
    console.print(f"run {outcome.run_id} stored in {outcome.database}")


@app.command("run")
def run_command(
    sample: Annotated[str, typer.Option("--sample", "-s", help="Sample id.")],
    simulate: Annotated[bool, typer.Option(help="Use the simulated rig.")] = False,
    cells: Annotated[
        int | None, typer.Option(help="Target white-cell count (0 = all fields).", min=0)
    ] = None,
    max_fields: Annotated[int, typer.Option(help="Most fields to acquire.", min=1)] = 200,
    out: Annotated[Path | None, typer.Option(help="Where acquisitions are saved.")] = None,
    db: Annotated[Path | None, typer.Option(help="Results database (SQLite).")] = None,
    seed: Annotated[int, typer.Option(help="Simulated sample seed.")] = 0,
    replace: REPLACE = False,
) -> None:
    """Acquire a sample and show its live 5-part differential."""
    from rich.live import Live

    from leukoscope.ids import check_sample_id
    from leukoscope.instrument.rig import SimulationOptions, open_rig
    from leukoscope.pipeline.service import analyse, load_predictor
    from leukoscope.pipeline.sources import rig_acquisition
    from leukoscope.report.table import summary_table

    check_sample_id(sample)
    current = pipeline_settings(cells, db)
    out_dir = (out or current.rig.acquisition.data_dir) / sample
    new_sample_folder(sample, out_dir, replace)
    try:
        with open_rig(current.rig, simulate=simulate, options=SimulationOptions(seed=seed)) as rig:
            predictor, model_path = load_predictor(current)  # after the rig: no rig, no wait
            with Live(console=console, auto_refresh=False, transient=True) as live:

                def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
                    live.update(summary_table(summary, workers), refresh=True)

                job = rig_acquisition(rig, sample, max_fields, out_dir)
                outcome = analyse(
                    current, [job], predictor=predictor, model_path=model_path, on_summary=show
                )
    except (KeyboardInterrupt, SystemExit) as exc:
        _where_the_run_stands(sample, out_dir, exc)
        raise
    _show_outcome(outcome)


def _where_the_run_stands(sample: str, out_dir: Path, exc: BaseException) -> None:
    """After Ctrl-C or SIGTERM: what was saved, and how to analyse it."""
    from leukoscope.errors import StorageError
    from leukoscope.instrument.storage import list_fields
    from leukoscope.pipeline.runner import stop_reason

    try:
        saved = len(list_fields(out_dir))
    except StorageError:
        saved = 0
    how = f"; analyse them with: leukoscope batch {out_dir}" if saved else ""
    notice(f"{stop_reason(exc)}: {saved} field(s) of sample {sample} saved in {out_dir}{how}")


@app.command("batch")
def batch_command(
    paths: Annotated[list[Path], typer.Argument(help="Saved acquisition folders.")],
    cells: Annotated[
        int | None, typer.Option(help="Target white-cell count (0 = all fields).", min=0)
    ] = None,
    db: Annotated[Path | None, typer.Option(help="Results database (SQLite).")] = None,
) -> None:
    """Analyse saved acquisitions; one summary per sample."""
    from rich.progress import Progress

    from leukoscope.errors import StorageError
    from leukoscope.pipeline.service import analyse, load_predictor
    from leukoscope.pipeline.sources import SampleJob, saved_acquisition

    current = pipeline_settings(cells, db)
    jobs: list[SampleJob] = []
    for path in paths:
        try:
            jobs.append(saved_acquisition(path))
        except StorageError as exc:
            err_console.print(f"skipped {path}: {exc}", markup=False, highlight=False)
    if not jobs:
        raise typer.Exit(1)
    predictor, model_path = load_predictor(current)
    with Progress(console=console, transient=True) as progress:
        tasks = {j.sample_id: progress.add_task(j.sample_id, total=j.fields_total) for j in jobs}

        def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
            done = summary.fields_done + summary.fields_failed
            progress.update(tasks[summary.sample_id], completed=done)

        outcome = analyse(
            current, jobs, predictor=predictor, model_path=model_path, on_summary=show
        )
    _show_outcome(outcome)
    if len(jobs) < len(paths):
        raise typer.Exit(1)

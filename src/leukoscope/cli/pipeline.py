"""`leukoscope run` and `batch`: the embedded pipeline with its live display."""

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
    state,
)
from leukoscope.cli.help import DATA_DIR
from leukoscope.cli.live import (
    Invocation,
    below_target,
    live_view,
    next_commands,
    progress_rows,
    waiting,
)
from leukoscope.cli.options import (
    REPLACE,
    RESULTS_DB_OPTION,
    TARGET_CELLS_OPTION,
    new_sample_folder,
)
from leukoscope.types import SampleSummary

BELOW_TARGET_EXIT = 3
"""`batch --strict`: a sample ended below its target or incomplete."""


def _show_outcome(
    outcome: object,
    target: int,
    acquisitions: Mapping[str, Path],
    how: Invocation,
    after: str = "run",
) -> list[str]:
    """Each sample's final table (once), where the run is stored, what to run next; returns the
    lines of the samples that ended below their target (said on stderr too)."""
    from leukoscope.pipeline.service import RunOutcome

    assert isinstance(outcome, RunOutcome)
    short: list[str] = []
    for summary in outcome.summaries.values():
        print_summary(summary)
        line = below_target(summary, target)
        if line is not None:
            short.append(line)
    for line in short:
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"run {outcome.run_id} stored in {outcome.database}", markup=False)
    console.print("next:", markup=False)
    for command in next_commands(outcome.summaries, acquisitions, how, after=after):
        console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
    return short


def _prepare_pictures(outcome: object, crop_um: float) -> None:
    """Cut the review page's native cell pictures of each finished sample now, while its fields
    are at hand, so that its first view in `leukoscope review` is quick (a progress bar)."""
    from rich.progress import Progress

    from leukoscope.errors import StorageError
    from leukoscope.pipeline.service import RunOutcome
    from leukoscope.results.prepared_pictures import prepare_sample

    assert isinstance(outcome, RunOutcome)
    with Progress(console=err_console, transient=True) as bar:
        for sample_id in outcome.summaries:
            task = bar.add_task(f"review pictures of {sample_id}", total=None)

            def step(done: int, total: int, task: object = task) -> None:
                bar.update(task, completed=done, total=total)  # type: ignore[arg-type]

            try:
                prepare_sample(outcome.database, outcome.run_id, sample_id, crop_um, step)
            except StorageError as exc:  # the review cuts them from the fields when opened
                notice(f"review pictures of {sample_id} not prepared: {exc}")


@app.command("run")
def run_command(
    sample: Annotated[str, typer.Option("--sample", "-s", help="Sample id.")],
    simulate: Annotated[bool, typer.Option(help="Use the simulated rig.")] = False,
    cells: TARGET_CELLS_OPTION = None,
    max_fields: Annotated[int, typer.Option(help="Most fields to acquire.", min=1)] = 200,
    out: Annotated[
        Path | None, typer.Option(help="Where acquisitions are saved.", show_default=DATA_DIR)
    ] = None,
    db: RESULTS_DB_OPTION = None,
    seed: Annotated[int, typer.Option(help="Simulated sample seed.")] = 0,
    replace: REPLACE = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue an interrupted run: keep its saved fields, acquire the rest."
        ),
    ] = False,
) -> None:
    """Acquire a sample and show its live 5-part differential (--resume: keep the fields an
    interrupted run saved, acquire the rest)."""
    from rich.live import Live

    from leukoscope.ids import check_sample_id
    from leukoscope.instrument.rig import SimulationOptions, open_rig
    from leukoscope.pipeline.resume import (
        refuse_complete,
        resume_args,
        resume_point,
        resumed_acquisition,
    )
    from leukoscope.pipeline.service import analyse, load_predictor
    from leukoscope.pipeline.sources import rig_acquisition

    check_sample_id(sample)
    current = pipeline_settings(cells, db)
    out_dir = (out or current.rig.acquisition.data_dir) / sample
    point = resume_point(out_dir, sample, replace) if resume else None
    if point is not None:
        refuse_complete(current.pipeline.results_db, sample)
    if point is None:
        new_sample_folder(sample, out_dir, replace)
    target = current.pipeline.target_cells
    last: dict[str, SampleSummary] = {}  # the latest summary: where the run stands if stopped
    try:
        with open_rig(current.rig, simulate=simulate, options=SimulationOptions(seed=seed)) as rig:
            predictor, model_path = load_predictor(current)  # after the rig: no rig, no wait
            with Live(console=console, auto_refresh=False, transient=True) as live:
                live.update(live_view(waiting(sample, None), {}, target, out_dir), refresh=True)

                def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
                    last[summary.sample_id] = summary
                    view = live_view(summary, workers, target, out_dir)
                    live.update(view, refresh=True)

                job = (
                    rig_acquisition(rig, sample, max_fields, out_dir)
                    if point is None
                    else resumed_acquisition(rig, point, max_fields)
                )
                outcome = analyse(
                    current, [job], predictor=predictor, model_path=model_path, on_summary=show
                )
    except (KeyboardInterrupt, SystemExit) as exc:
        how = Invocation(state.config_path, db)
        args = resume_args(
            sample, simulate=simulate, seed=seed, out=out, cells=cells, max_fields=max_fields
        )
        again = f"{how.prefix()} {args}{how.db_option()}"
        _where_the_run_stands(sample, out_dir, exc, again, last.get(sample))
        raise
    _prepare_pictures(outcome, current.pipeline.segmentation.crop_um)
    _show_outcome(outcome, target, {sample: out_dir}, Invocation(state.config_path, db))


def _where_the_run_stands(
    sample: str, out_dir: Path, exc: BaseException, again: str, summary: SampleSummary | None
) -> None:
    """After Ctrl-C or SIGTERM: what was saved and analysed (the sample's last summary: the
    aborted one the store holds), how to resume the run or analyse it as it is."""
    from leukoscope.acquisition_files.storage import list_fields
    from leukoscope.errors import StorageError
    from leukoscope.pipeline.runner import stop_reason

    try:
        saved = len(list_fields(out_dir))
    except StorageError:
        saved = 0
    how = f"; resume with: {again} (or analyse them as they are: leukoscope batch {out_dir})"
    how = how if saved else ""
    stands = ""
    if summary is not None:
        done = summary.fields_done + summary.fields_failed
        stands = f", {done} analysed ({summary.cells_counted} cells), stored as "
        stands += summary.status.value
    notice(
        f"{stop_reason(exc)}: {saved} field(s) of sample {sample} saved in {out_dir}{stands}{how}"
    )


@app.command("batch")
def batch_command(
    paths: Annotated[list[Path], typer.Argument(help="Saved acquisition folders.")],
    cells: TARGET_CELLS_OPTION = None,
    db: RESULTS_DB_OPTION = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help=f"Exit with status {BELOW_TARGET_EXIT} when a sample ends below its target "
            "or incomplete (for scripts).",
        ),
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Run the fields as Dask tasks: local, tcp://HOST:8786 or a scheduler file "
            "(needs leukoscope[dask]; default: [batch] scheduler, else in this process).",
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run", help="With --scheduler: resume this stopped run (id or prefix)."),
    ] = None,
) -> None:
    """Analyse saved acquisitions; one summary per sample."""
    from rich.live import Live

    from leukoscope.cli.dask_batch import check_scheduler, on_dask
    from leukoscope.errors import StorageError
    from leukoscope.pipeline.service import analyse, load_predictor
    from leukoscope.pipeline.sources import SampleJob, saved_acquisition

    current = pipeline_settings(cells, db)
    scheduler = check_scheduler(current.batch.scheduler if scheduler is None else scheduler, run_id)
    target = current.pipeline.target_cells
    jobs: list[SampleJob] = []
    folders: dict[str, Path] = {}
    for path in paths:
        try:
            job = saved_acquisition(path)
        except StorageError as exc:
            notice(f"skipped {path}: {exc}")  # one line, however long
            continue
        jobs.append(job)
        folders[job.sample_id] = path
    if not jobs:
        raise typer.Exit(1)
    predictor, model_path = load_predictor(current)
    latest = {j.sample_id: waiting(j.sample_id, j.fields_total) for j in jobs}
    with Live(console=console, auto_refresh=False, transient=True) as live:

        def show(summary: SampleSummary, workers: Mapping[str, object]) -> None:
            latest[summary.sample_id] = summary
            live.update(progress_rows(latest.values(), target, folders), refresh=True)

        live.update(progress_rows(latest.values(), target, folders), refresh=True)
        if scheduler:
            how = Invocation(state.config_path, db)
            outcome = on_dask(current, jobs, predictor, model_path, scheduler, run_id, show, how)
        else:
            outcome = analyse(
                current, jobs, predictor=predictor, model_path=model_path, on_summary=show
            )
    _prepare_pictures(outcome, current.pipeline.segmentation.crop_um)
    short = _show_outcome(outcome, target, folders, Invocation(state.config_path, db), "batch")
    if len(jobs) < len(paths):
        raise typer.Exit(1)
    if strict and short:
        raise typer.Exit(BELOW_TARGET_EXIT)

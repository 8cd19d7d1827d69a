"""`leukoscope batch --scheduler`: the Dask run's own lines (dashboard, how to resume a stop)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from leukoscope.classifier.infer import Predictor
from leukoscope.cli.core import console, notice
from leukoscope.cli.live import Invocation
from leukoscope.config import Settings
from leukoscope.errors import ConfigError
from leukoscope.pipeline.service import RunOutcome
from leukoscope.pipeline.sources import SampleJob
from leukoscope.types import SampleSummary


def check_scheduler(scheduler: str, run_id: str | None) -> str:
    """The scheduler to use ('' for in process); one error line for `--run` without one, or for
    a scheduler without Dask installed."""
    if run_id is not None and not scheduler:
        raise ConfigError("--run resumes a batch run made on Dask: give --scheduler too")
    if scheduler:
        from leukoscope.pipeline.dask_cluster import require_dask

        require_dask()
    return scheduler


def resume_command(
    how: Invocation, jobs: Sequence[SampleJob], scheduler: str, run_id: str, target: int
) -> str:
    """The command that resumes a stopped Dask run."""
    paths = " ".join(shlex.quote(str(j.acquisition)) for j in jobs)
    return (
        f"{how.prefix()} batch {paths} --cells {target} --scheduler {shlex.quote(scheduler)}"
        f" --run {run_id}{how.db_option()}"
    )


def on_dask(
    current: Settings,
    jobs: Sequence[SampleJob],
    predictor: Predictor,
    model_path: Path,
    scheduler: str,
    run_id: str | None,
    show: Callable[[SampleSummary, Mapping[str, object]], None],
    how: Invocation,
) -> RunOutcome:
    """Run `batch` on Dask with the live view; after Ctrl-C or SIGTERM, what was stored and the
    command that resumes the run."""
    from leukoscope.pipeline.dask_batch import analyse_on_dask

    started: list[str] = []
    latest: dict[str, SampleSummary] = {}

    def begun(run: str, dashboard: str) -> None:
        started.append(run)
        where = f"; dashboard {dashboard}" if dashboard else ""
        console.print(f"Dask scheduler {scheduler}{where}", markup=False, highlight=False)

    def seen(summary: SampleSummary, workers: Mapping[str, object]) -> None:
        latest[summary.sample_id] = summary
        show(summary, workers)

    try:
        return analyse_on_dask(
            current, jobs, predictor=predictor, model_path=model_path, scheduler=scheduler,
            run_id=run_id, on_summary=seen, on_started=begun,
        )  # fmt: skip
    except (KeyboardInterrupt, SystemExit):
        if started:
            stopped = sum(1 for s in latest.values() if s.status_reason.startswith("interrupted"))
            again = resume_command(how, jobs, scheduler, started[0], current.pipeline.target_cells)
            notice(
                f"interrupted: run {started[0]} stopped, {stopped} sample(s) stored as "
                f"incomplete; resume with: {again}"
            )
        raise

"""Where a `run` or `batch` stands: progress toward the target (cells, fields, ETA) and where the
fields are saved, while it runs; after it, which samples ended below their target and what to run
next."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from leukoscope.report.flags import image_note
from leukoscope.types import SampleStatus, SampleSummary


def eta_s(summary: SampleSummary, target: int) -> float | None:
    """Seconds until the sample is done at its pace so far: toward `target` cells when there is
    one, else toward its known number of fields; None when it is not running or cannot tell yet."""
    if summary.status != SampleStatus.RUNNING or summary.elapsed_s <= 0:
        return None
    if target > 0 and summary.cells_counted > 0:
        remaining = max(target - summary.cells_counted, 0)
        return remaining * summary.elapsed_s / summary.cells_counted
    done = summary.fields_done + summary.fields_failed
    if summary.fields_total is not None and done > 0:
        return max(summary.fields_total - done, 0) * summary.elapsed_s / done
    return None


def duration(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', or '—'."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_text(summary: SampleSummary, target: int) -> str:
    """'cells 193/200 · fields 12 (1 failed) · ETA 4 s' (fields 12/20 when their number is known)."""
    cells = (
        f"cells {min(summary.cells_counted, target)}/{target}"
        if target
        else (f"cells {summary.cells_counted} (all fields)")
    )
    done = summary.fields_done + summary.fields_failed
    fields = f"fields {done}" + (f"/{summary.fields_total}" if summary.fields_total else "")
    if summary.fields_failed:
        fields += f" ({summary.fields_failed} failed{image_note(summary)})"
    when = (
        f"ETA {duration(eta_s(summary, target))}"
        if summary.status == SampleStatus.RUNNING
        else summary.status.value
    )
    return f"{cells} · {fields} · {when}"


def _bar(summary: SampleSummary, target: int) -> ProgressBar:
    if target:
        return ProgressBar(total=target, completed=min(summary.cells_counted, target), width=30)
    return ProgressBar(
        total=summary.fields_total, completed=summary.fields_done + summary.fields_failed, width=30
    )


def progress_rows(
    summaries: Iterable[SampleSummary], target: int, folders: Mapping[str, Path]
) -> Table:
    """One line per sample: id, bar, progress text, and the folder its fields are in."""
    grid = Table.grid(padding=(0, 1))
    for summary in summaries:
        folder = folders.get(summary.sample_id)
        where = Text(f"fields in {folder}", style="dim") if folder is not None else Text("")
        grid.add_row(
            Text(summary.sample_id, style="bold"),
            _bar(summary, target),
            Text(progress_text(summary, target)),
            where,
        )
    return grid


def live_view(
    summary: SampleSummary, workers: Mapping[str, object], target: int, saving_to: Path
) -> RenderableType:
    """What `run` shows while it acquires: progress, where the fields go, the live table."""
    from leukoscope.report.table import summary_table

    head = Table.grid(padding=(0, 1))
    head.add_row(_bar(summary, target), Text(progress_text(summary, target)))
    head.add_row(Text(""), Text(f"saving fields to {saving_to}", style="dim"))
    return Group(head, summary_table(summary, workers))


def waiting(sample_id: str, fields_total: int | None) -> SampleSummary:
    """A sample's line before its first summary arrives."""
    return SampleSummary(
        sample_id=sample_id,
        classes=[],
        cells_counted=0,
        cells_flagged=0,
        fields_done=0,
        fields_total=fields_total,
    )


def below_target(summary: SampleSummary, target: int) -> str | None:
    """Why a finished sample is short of a full differential, or None when it is not."""
    failed = (
        f", {summary.fields_failed} failed{image_note(summary)}" if summary.fields_failed else ""
    )
    fields = f"{summary.fields_done} field(s) analysed{failed}"
    if target and summary.cells_counted < target:
        return (
            f"sample {summary.sample_id} ended below its target: {summary.cells_counted} of "
            f"{target} cells in {fields}"
        )
    if summary.status == SampleStatus.INCOMPLETE:
        return f"sample {summary.sample_id} is incomplete ({fields}): {summary.status_reason}"
    return None


@dataclass(frozen=True)
class Invocation:
    """The options a follow-up command needs to reach the same results: --config and --db."""

    config: Path | None = None
    db: Path | None = None

    def prefix(self) -> str:
        """'leukoscope' or 'leukoscope -c lab.toml'."""
        return "leukoscope" + (f" -c {shlex.quote(str(self.config))}" if self.config else "")

    def db_option(self) -> str:
        """' --db results.sqlite' when the run was given one, else ''."""
        return f" --db {shlex.quote(str(self.db))}" if self.db else ""


def next_commands(
    samples: Iterable[str],
    acquisitions: Mapping[str, Path],
    how: Invocation,
    *,
    after: str = "run",
) -> list[str]:
    """The commands to run next: each sample's report, then its review and sign-off; after a
    `run`, also re-analysing the saved fields (after a `batch` that is what just happened)."""
    samples = list(samples)
    lines = [f"{how.prefix()} report {shlex.quote(s)}{how.db_option()}" for s in samples]
    lines.append(f"{how.prefix()} review{how.db_option()}")
    folders = [acquisitions[s] for s in samples if s in acquisitions]
    if folders and after == "run":
        paths = " ".join(shlex.quote(str(f)) for f in folders)
        lines.append(f"{how.prefix()} batch {paths}{how.db_option()}")
    return lines

"""Progress of a training run on the terminal: rich bars, or nothing when quiet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainProgress:
    """Rich progress bars (or nothing when quiet)."""

    def __init__(self, console: Console | None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self._progress: Progress | None = None

    @contextmanager
    def active(self) -> Iterator[TrainProgress]:
        """Show the bars while the block runs."""
        if self.quiet:
            yield self
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            self._progress = progress
            try:
                yield self
            finally:
                self._progress = None

    def task(self, description: str, total: int) -> TaskID | None:
        """Start a bar; returns its id."""
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total, info="")

    def advance(self, task: TaskID | None, info: str = "") -> None:
        """One step done."""
        if self._progress is not None and task is not None:
            self._progress.update(task, advance=1, info=info)

    def log(self, message: str) -> None:
        """A line above the bars."""
        if not self.quiet:
            (self._progress.console if self._progress else self.console).print(message)

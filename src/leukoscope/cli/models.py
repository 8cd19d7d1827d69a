"""`leukoscope models` (parameters and MACs) and `export` (ONNX)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, console, err_console


@contextmanager
def counting_progress() -> Iterator[Callable[[str, int | None], None]]:
    """A transient bar on stderr: 'loading PyTorch', then 'counting MACs: NAME' per model."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
    with Progress(
        *columns, MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True
    ) as bar:
        task = bar.add_task("loading PyTorch", total=None)
        seen: list[str] = []

        def step(name: str, total: int | None) -> None:
            if total is not None:
                bar.update(task, total=total)
            if name:
                bar.update(task, description=f"counting MACs: {name}", completed=len(seen))
                seen.append(name)

        yield step


@app.command("models")
def models_table(
    in_chans: Annotated[int, typer.Option(min=1, help="Channels per modality.")] = 3,
    size: Annotated[int, typer.Option(min=32, help="Input side, pixels.")] = 224,
    width: Annotated[float, typer.Option(help="ShuffleNetV2 width: 0.5, 1.0, 1.5, 2.0.")] = 1.0,
) -> None:
    """Parameters and MACs of every network (4 modalities, 5 classes) beside the paper's figures."""
    from rich import box
    from rich.table import Table

    with counting_progress() as step:  # loading torch and tracing five networks take a while
        from leukoscope.classifier.complexity import MAC_COUNTER, TABLE_ROWS, complexity_table

        step("", len(TABLE_ROWS))
        rows = complexity_table(in_chans, size, width, progress=lambda name: step(name, None))
    table = Table(
        title=f"{in_chans} channel(s) x 4 modalities, {size}x{size}, width {width}",
        box=box.SIMPLE,
        pad_edge=False,
        show_edge=False,
    )
    for column in ("model", "params", "MACs", "paper", "difference"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for row in rows:
        paper = row.paper
        diffs = [f"{d:+.2%}" if d is not None else "-" for d in (row.params_diff, row.macs_diff)]
        table.add_row(
            row.name,
            f"{row.params:,}",
            f"{row.macs / 1e6:.2f}M",
            f"{paper.params_text} / {paper.macs_text}" if paper else "-",
            " / ".join(diffs),
        )
    console.print(table)
    console.print(f"MACs: {MAC_COUNTER}; the paper calls them FLOPs.")


@app.command("export")
def export_model(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint file (.pt).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="ONNX file; default: beside the checkpoint.")
    ] = None,
    check: Annotated[bool, typer.Option(help="Compare onnxruntime with PyTorch.")] = True,
) -> None:
    """Export a checkpoint to ONNX for the onnxruntime backend."""
    from leukoscope.classifier.export import export_checkpoint
    from leukoscope.classifier.export_check import check_export

    target = export_checkpoint(checkpoint, out)
    console.print(f"wrote {target}")
    if check:
        worst = check_export(checkpoint, target)
        console.print(f"onnxruntime vs PyTorch: max probability difference {worst:.2e}")

"""`leukoscope models` (parameters and MACs) and `export` (ONNX)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leukoscope.cli.core import app, console


@app.command("models")
def models_table(
    in_chans: Annotated[int, typer.Option(min=1, help="Channels per modality.")] = 3,
    size: Annotated[int, typer.Option(min=32, help="Input side, pixels.")] = 224,
    width: Annotated[float, typer.Option(help="ShuffleNetV2 width: 0.5, 1.0, 1.5, 2.0.")] = 1.0,
) -> None:
    """Parameters and MACs of every network (4 modalities, 5 classes) beside the paper's figures."""
    from rich import box
    from rich.table import Table

    from leukoscope.classifier.complexity import MAC_COUNTER, complexity_table

    table = Table(
        title=f"{in_chans} channel(s) x 4 modalities, {size}x{size}, width {width}",
        box=box.SIMPLE,
        pad_edge=False,
        show_edge=False,
    )
    for column in ("model", "params", "MACs", "paper", "difference"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for row in complexity_table(in_chans, size, width):
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

"""What `leukoscope evaluate` prints: per reading (raw argmax, prior-corrected) a rich table of the
overall figures and one of precision, recall, F1 and support per class, the heads, the confusion."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text


def _classes(metrics: dict[str, Any]) -> list[str]:
    """The model's classes, in its order: the keys of the per-class figures."""
    return list(metrics["precision"])


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def overall_table(metrics: dict[str, Any]) -> Table:
    """Cells, accuracy, macro-F1, balanced accuracy (%)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("cells", "accuracy %", "macro-F1 %", "balanced accuracy %"):
        table.add_column(column, justify="right")
    table.add_row(
        str(metrics["cells"]),
        _pct(metrics["accuracy"]),
        _pct(metrics["macro_f1"]),
        _pct(metrics["balanced_accuracy"]),
    )
    return table


def per_class_table(metrics: dict[str, Any]) -> Table:
    """Precision, recall, F1 (%) and support (true cells) per class."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("class")
    for column in ("precision %", "recall %", "F1 %", "support"):
        table.add_column(column, justify="right")
    for name in _classes(metrics):
        table.add_row(
            name,
            _pct(metrics["precision"][name]),
            _pct(metrics["recall"][name]),
            _pct(metrics["f1"][name]),
            str(metrics["support"][name]),
        )
    return table


def confusion_table(metrics: dict[str, Any]) -> Table:
    """Counts, rows the true class, columns the predicted one; the diagonal in bold."""
    table = Table(title="confusion (rows true, columns predicted)", box=box.SIMPLE_HEAD)
    table.title_justify = "left"
    table.add_column("")
    names = _classes(metrics)
    for name in names:
        table.add_column(name, justify="right")
    for i, (name, row) in enumerate(zip(names, metrics["confusion"], strict=True)):
        table.add_row(
            name, *(Text(str(int(v)), style="bold" if i == j else "") for j, v in enumerate(row))
        )
    return table


def heads_table(metrics: dict[str, Any], names: list[str] | None) -> Table | None:
    """Each head's accuracy and how often the heads disagree (MIMO models only)."""
    if "head_accuracy" not in metrics:
        return None
    labels = names or [str(h) for h in range(len(metrics["head_accuracy"]))]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("head")
    table.add_column("accuracy %", justify="right")
    for label, accuracy in zip(labels, metrics["head_accuracy"], strict=True):
        table.add_row(label, _pct(accuracy))
    disagreement = _pct(metrics["head_disagreement"])
    table.caption = f"Head disagreement: {disagreement} % of cells"
    table.caption_justify = "left"
    return table


def reading_view(title: str, metrics: dict[str, Any], names: list[str] | None) -> RenderableType:
    """One reading: heading, overall figures, per-class figures, heads, confusion."""
    parts: list[RenderableType] = [
        Text(f"## {title}", style="bold"),
        overall_table(metrics),
        per_class_table(metrics),
    ]
    heads = heads_table(metrics, names)
    if heads is not None:
        parts.append(heads)
    parts.append(confusion_table(metrics))
    return Group(*parts)


def print_readings(
    console: Console, readings: list[tuple[str, dict[str, Any]]], names: list[str] | None
) -> None:
    """Every reading, one after the other."""
    for title, metrics in readings:
        console.print(reading_view(title, metrics, names))

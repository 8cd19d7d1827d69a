"""The differential as a bar chart with 95% CI whiskers over the reference ranges, as inline SVG."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

from leukoscope.report.flags import RangeFlag

INK = "#1f2933"
WITHIN = "#2f5d8a"
OUTSIDE = "#c0392b"
RANGE = "#cfe8d5"


def differential_svg(
    names: Sequence[str],
    percents: Sequence[float],
    ci: Sequence[tuple[float, float]],
    ranges: Sequence[tuple[float, float]],
    flags: Sequence[RangeFlag],
) -> str:
    """An `<svg>` element (no prolog or metadata, deterministic ids): bars, CI whiskers, ranges."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    with matplotlib.rc_context({"svg.hashsalt": "leukoscope-report", "font.size": 9}):
        figure = Figure(figsize=(6.4, 3.3), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        x = list(range(len(names)))
        for i, (low, high) in enumerate(ranges):
            axes.add_patch(
                Rectangle((i - 0.42, low), 0.84, max(high - low, 0.4), color=RANGE, zorder=0, lw=0)
            )
        colours = [WITHIN if f in (RangeFlag.WITHIN, RangeFlag.NONE) else OUTSIDE for f in flags]
        errors = [
            [max(p - lo, 0.0) for p, (lo, _) in zip(percents, ci, strict=True)],
            [max(hi - p, 0.0) for p, (_, hi) in zip(percents, ci, strict=True)],
        ]
        axes.bar(x, percents, width=0.5, color=colours, zorder=2)
        axes.errorbar(x, percents, yerr=errors, fmt="none", ecolor=INK, capsize=5, lw=1.2, zorder=3)
        for i, p in enumerate(percents):
            axes.annotate(
                f"{p:.1f}%", (i + 0.27, p), xytext=(2, 2), textcoords="offset points",
                fontsize=8, color=INK,
            )  # fmt: skip
        axes.set_xticks(x, list(names))
        axes.set_ylim(0, 100)
        axes.set_ylabel("% of white cells")
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", color="#e4e7eb", zorder=1)
        axes.set_axisbelow(True)
        axes.legend(
            handles=[
                Patch(color=WITHIN, label="within range"),
                Patch(color=OUTSIDE, label="outside range"),
                Patch(color=RANGE, label="reference range"),
                Line2D([], [], color=INK, lw=1.2, marker="_", markersize=8, label="95% CI"),
            ],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.12),
            ncol=4,
            frameon=False,
            fontsize=8,
        )
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return text[text.index("<svg") :]

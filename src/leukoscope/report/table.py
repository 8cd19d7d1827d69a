"""The differential as a rich table: what `leukoscope run` and `batch` show, live and final."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from leukoscope.report.flags import image_note
from leukoscope.types import SampleSummary


def summary_table(summary: SampleSummary, workers: Mapping[str, object] | None = None) -> Table:
    """Per class: count, %, 95% CI; then cells counted and flagged, fields, throughput, status."""
    elapsed = max(summary.elapsed_s, 1e-9)
    title = f"sample {summary.sample_id} — {summary.status.value}"
    if summary.simulated:
        title = f"SIMULATED {title} (not a patient sample)"
    table = Table(title=title, title_justify="left", min_width=64)
    table.add_column("class")
    table.add_column("count", justify="right")
    table.add_column("%", justify="right")
    table.add_column("95% CI (%)", justify="right")
    for row in summary.classes:
        table.add_row(
            row.cell_class.value,
            str(row.count),
            f"{row.percent:.1f}",
            f"{row.ci_low_percent:.1f} – {row.ci_high_percent:.1f}",
        )
    fields = f"{summary.fields_done}" + (
        f"/{summary.fields_total}" if summary.fields_total is not None else ""
    )
    caption = [
        f"cells counted {summary.cells_counted}, flagged for review {summary.cells_flagged}"
        + (f", unidentified {summary.cells_unidentified}" if summary.cells_unidentified else "")
        + (f", NRBC {summary.nrbc_per_100_wbc:.1f}/100 WBC" if summary.nrbc else ""),
        f"fields {fields} (failed {summary.fields_failed}{image_note(summary)}), "
        f"{summary.fields_done / elapsed:.1f} fields/s, {summary.cells_counted / elapsed:.1f} cells/s",
    ]
    if summary.simulated:
        caption.insert(0, "SIMULATED: counts from the simulator, not from a patient's blood")
    if workers:
        caption.append(f"workers: {len(workers)}")
    table.caption = "\n".join(caption)
    table.caption_justify = "left"
    return table

"""Review rules of the report: a reference-range flag per class and quality flags per sample.

Pure logic over a `SampleSummary` (from `results.counts`, never recounted here) and the thresholds.
The rules are documented in docs/report.md; in short:

- Range flag: ``below`` / ``above`` when the class's percentage lies outside its reference range
  (the limits belong to the range), else ``within``; ``n/a`` when no cell was counted. Whether the
  95% CI still reaches the range is said beside it (`interval_reaches`).
- Quality flags (code, severity, message), in the order shown:
  ``simulated`` (alert: the fields came from the simulator, not a patient; ``simulation_unknown``,
  a warning, when the store did not record it), ``no_cells`` (alert), ``all_flagged`` (alert), ``far_outside`` (alert: a class whose whole 95% CI
  lies at least `far_margin_percent` points outside its range), ``too_few_cells`` (fewer than the
  target), ``many_flagged`` (more than `max_flagged_percent` of the cells flagged),
  ``heads_disagree`` (mean head disagreement above `max_mean_disagreement`), ``blank_fields`` and
  ``saturated_fields`` (fields `pipeline.field_quality` failed), ``failed_fields`` (other failed
  fields), ``incomplete`` and ``running`` (status), all warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from leukoscope.config import ReferenceRange
from leukoscope.types import CellClass, ClassCount, SampleStatus, SampleSummary

FAR_MARGIN_PERCENT = 20.0
"""Percentage points between a class's whole CI and its range that make a composition suspect."""
DISAGREEMENT_FACTOR = 0.5
"""Mean head disagreement is flagged above this share of the per-cell flag threshold."""


SIMULATED_MESSAGE = (
    "SIMULATED SAMPLE: these counts come from the simulator, not from a patient's blood. "
    "Never release them as a result."
)


class RangeFlag(str, Enum):
    """Where a class's percentage lies against its reference range."""

    BELOW = "below"
    WITHIN = "within"
    ABOVE = "above"
    NONE = "n/a"


class Severity(str, Enum):
    """How a quality flag is shown: an alert blocks release, a warning asks for a look."""

    ALERT = "alert"
    WARNING = "warning"


@dataclass(frozen=True)
class QualityFlag:
    """One reason to review the sample before releasing its differential."""

    code: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Thresholds:
    """Limits the quality flags use (from settings and the sample's own target)."""

    target_cells: int = 0
    max_flagged_percent: float = 10.0
    max_mean_disagreement: float = 0.125
    far_margin_percent: float = FAR_MARGIN_PERCENT


def range_flag(row: ClassCount, reference: ReferenceRange, cells_counted: int) -> RangeFlag:
    """Below or above when the percentage itself lies outside the reference range (the limits
    belong to the range), else within; n/a with no cells. Whether the 95% interval still reaches
    the range is `interval_reaches` (shown beside the flag, never instead of it)."""
    if cells_counted == 0:
        return RangeFlag.NONE
    if row.percent < reference.low_percent:
        return RangeFlag.BELOW
    if row.percent > reference.high_percent:
        return RangeFlag.ABOVE
    return RangeFlag.WITHIN


def interval_reaches(row: ClassCount, reference: ReferenceRange) -> bool:
    """The class's 95% interval overlaps its reference range (limits included)."""
    return (
        row.ci_low_percent <= reference.high_percent
        and row.ci_high_percent >= reference.low_percent
    )


def distance_outside(row: ClassCount, reference: ReferenceRange) -> float:
    """Percentage points between the class's whole 95% CI and its range (0 if they overlap)."""
    if row.ci_low_percent > reference.high_percent:
        return row.ci_low_percent - reference.high_percent
    if row.ci_high_percent < reference.low_percent:
        return reference.low_percent - row.ci_high_percent
    return 0.0


EXTRA_RANGES: dict[CellClass, ReferenceRange] = {
    CellClass.IG: ReferenceRange(low_percent=0.0, high_percent=0.5),
    CellClass.BLAST: ReferenceRange(low_percent=0.0, high_percent=0.0),
    CellClass.RL: ReferenceRange(low_percent=0.0, high_percent=5.0),
}
"""Reference ranges of the white-cell classes beyond the five, used when `[report.reference_ranges]`
sets none for them (docs/report.md): a lab sets its own."""


def reference_range(
    ranges: dict[CellClass, ReferenceRange], cell_class: CellClass
) -> ReferenceRange:
    """The configured range of `cell_class`, else its EXTRA_RANGES default (0-0 % when none)."""
    found = ranges.get(cell_class) or EXTRA_RANGES.get(cell_class)
    return found or ReferenceRange(low_percent=0.0, high_percent=0.0)


def _far_outside(
    summary: SampleSummary, ranges: dict[CellClass, ReferenceRange], margin: float
) -> list[QualityFlag]:
    flags = []
    for row in summary.classes:
        reference = reference_range(ranges, row.cell_class)
        gap = distance_outside(row, reference)
        if summary.cells_counted and gap >= margin:
            side = "above" if row.percent > reference.high_percent else "below"
            flags.append(
                QualityFlag(
                    "far_outside",
                    Severity.ALERT,
                    f"{row.cell_class.value} {row.percent:.1f}% (95% CI {row.ci_low_percent:.1f}–"
                    f"{row.ci_high_percent:.1f}%) is far {side} its reference range "
                    f"{reference.low_percent:g}–{reference.high_percent:g}%: check the sample "
                    "and the classifier before release",
                )
            )
    return flags


def image_note(summary: SampleSummary) -> str:
    """How many failed fields were blank or saturated, e.g. ``: 2 blank, 1 saturated`` ("" if none)."""
    parts = [f"{summary.fields_blank} blank"] if summary.fields_blank else []
    parts += [f"{summary.fields_saturated} saturated"] if summary.fields_saturated else []
    return f": {', '.join(parts)}" if parts else ""


def _image_flags(summary: SampleSummary) -> list[QualityFlag]:
    """Blank and saturated fields (pipeline.field_quality): they failed and gave no cells."""
    flags = []
    if summary.fields_blank:
        flags.append(
            QualityFlag(
                "blank_fields",
                Severity.WARNING,
                f"{summary.fields_blank} field(s) of view were blank (a frame held no image: a "
                "light or the camera gave nothing) and contributed no cells: check the lights.",
            )
        )
    if summary.fields_saturated:
        flags.append(
            QualityFlag(
                "saturated_fields",
                Severity.WARNING,
                f"{summary.fields_saturated} field(s) of view were saturated (over-exposed) and "
                "contributed no cells: check exposure and light intensity.",
            )
        )
    return flags


def quality_flags(
    summary: SampleSummary,
    ranges: dict[CellClass, ReferenceRange],
    mean_disagreement: float,
    thresholds: Thresholds,
) -> list[QualityFlag]:
    """Every quality flag that applies to the sample, most serious first."""
    n = summary.cells_counted
    flags: list[QualityFlag] = []
    if summary.simulated:
        flags.append(QualityFlag("simulated", Severity.ALERT, SIMULATED_MESSAGE))
    elif summary.simulated is None:
        flags.append(
            QualityFlag(
                "simulation_unknown",
                Severity.WARNING,
                "Stored before leukoscope recorded whether a sample was simulated: check the "
                "sample's acquisition.json (`simulated`) before release.",
            )
        )
    if n == 0:
        flags.append(
            QualityFlag(
                "no_cells",
                Severity.ALERT,
                "No white cells were counted in this sample: no differential can be reported.",
            )
        )
    elif summary.cells_flagged == n:
        flags.append(
            QualityFlag(
                "all_flagged",
                Severity.ALERT,
                f"All {n} cells were flagged for review: the differential is the classifier's "
                "unconfirmed best guess and every cell needs manual classification.",
            )
        )
    flags += _far_outside(summary, ranges, thresholds.far_margin_percent)
    if thresholds.target_cells and n < thresholds.target_cells:
        flags.append(
            QualityFlag(
                "too_few_cells",
                Severity.WARNING,
                f"{n} cells counted, fewer than the target of {thresholds.target_cells}: "
                "the confidence intervals are wider than planned.",
            )
        )
    flagged_percent = 100.0 * summary.cells_flagged / n if n else 0.0
    if 0 < summary.cells_flagged < n and flagged_percent > thresholds.max_flagged_percent:
        flags.append(
            QualityFlag(
                "many_flagged",
                Severity.WARNING,
                f"{summary.cells_flagged} of {n} cells ({flagged_percent:.1f}%) flagged for "
                f"review, above the limit of {thresholds.max_flagged_percent:g}%.",
            )
        )
    if n and mean_disagreement > thresholds.max_mean_disagreement:
        flags.append(
            QualityFlag(
                "heads_disagree",
                Severity.WARNING,
                f"The classifier's heads disagree: mean disagreement {mean_disagreement:.3f} "
                f"above {thresholds.max_mean_disagreement:.3f}.",
            )
        )
    flags += _image_flags(summary)
    other_failed = summary.fields_failed - summary.fields_blank - summary.fields_saturated
    if other_failed > 0:
        flags.append(
            QualityFlag(
                "failed_fields",
                Severity.WARNING,
                f"{other_failed} field(s) of view failed and contributed no cells.",
            )
        )
    if summary.status == SampleStatus.INCOMPLETE:
        reason = summary.status_reason or "no reason recorded"
        flags.append(QualityFlag("incomplete", Severity.WARNING, f"Sample incomplete: {reason}"))
    elif summary.status == SampleStatus.RUNNING:
        flags.append(
            QualityFlag(
                "running",
                Severity.WARNING,
                "The sample is still being analysed (or its run stopped): figures are provisional.",
            )
        )
    return flags

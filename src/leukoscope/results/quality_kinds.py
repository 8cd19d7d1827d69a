"""What a failed field's stored reason says about its images: the quality kinds of the field checks
(`pipeline.field_quality` measures them; a failure is stored as ``<kind>: <detail>``), and the
blank, saturated and out-of-focus fields among a sample's failures (`counts.summarize` counts them
apart)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class QualityKind(str, Enum):
    """What is wrong with a field (failures) or worth noting about it (notes)."""

    BLANK = "blank"
    DARK = "dark"
    SATURATED_FLUORESCENCE = "saturated_fluorescence"
    SATURATED_NUCLEI = "saturated_nuclei"
    SATURATED_CELLS = "saturated_cells"
    OUT_OF_FOCUS = "out_of_focus"
    SATURATED_BACKGROUND = "saturated_background"  # note only
    FOCUS_LOW = "focus_low"  # note only


BLANK_KINDS = frozenset({QualityKind.BLANK, QualityKind.DARK})
SATURATED_KINDS = frozenset(
    {
        QualityKind.SATURATED_FLUORESCENCE,
        QualityKind.SATURATED_NUCLEI,
        QualityKind.SATURATED_CELLS,
    }
)
NOTE_KINDS = frozenset({QualityKind.SATURATED_BACKGROUND, QualityKind.FOCUS_LOW})


def reason_kind(reason: str) -> QualityKind | None:
    """The quality kind a stored failure reason records (None for other failures)."""
    head, sep, _ = reason.partition(":")
    if not sep:
        return None
    try:
        return QualityKind(head)
    except ValueError:
        return None


@dataclass(frozen=True)
class ImageProblems:
    """Failed fields by what their images showed (field -> failure reason)."""

    blank: dict[int, str]
    saturated: dict[int, str]
    out_of_focus: dict[int, str]


def image_problems(failures: Mapping[int, str]) -> ImageProblems:
    """The blank, saturated and out-of-focus fields among failed fields."""
    kinds = {f: (reason_kind(r), r) for f, r in failures.items()}
    return ImageProblems(
        blank={f: r for f, (k, r) in kinds.items() if k in BLANK_KINDS},
        saturated={f: r for f, (k, r) in kinds.items() if k in SATURATED_KINDS},
        out_of_focus={f: r for f, (k, r) in kinds.items() if k is QualityKind.OUT_OF_FOCUS},
    )

"""A sample's fields whose focus was in doubt, read back from the results store: those analysed
with the note `focus_low` (`fields.quality_notes`) and those that failed `out_of_focus`
(`fields.reason`), for the report and the review page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from leukoscope.results.quality_kinds import QualityKind, reason_kind
from leukoscope.results.store import ResultStore

_MEASURE = re.compile(r"focus measure (\d+(?:\.\d+)?)")
"""How an out-of-focus failure reason states the measure (field_quality.py)."""


@dataclass(frozen=True)
class FocusField:
    """One field whose focus is in doubt: flagged (analysed, cells counted) or failed (none)."""

    fov: int
    kind: QualityKind  # FOCUS_LOW (a note) or OUT_OF_FOCUS (the field failed)
    focus: float | None  # the focus measure (None: not recorded)
    reason: str = ""  # the failure reason ('' for a flagged field)

    @property
    def failed(self) -> bool:
        """The field failed and gave no cells."""
        return self.kind is QualityKind.OUT_OF_FOCUS

    def to_json(self) -> dict[str, Any]:
        """As the report's JSON and the review page list it."""
        return {
            "fov": self.fov,
            "kind": self.kind.value,
            "focus": self.focus,
            "failed": self.failed,
            "reason": self.reason,
        }

    def describe(self) -> str:
        """One line, e.g. ``field 3: focus low (0.121)``."""
        measure = f" ({self.focus:.3f})" if self.focus is not None else ""
        if self.failed:
            return f"field {self.fov}: out of focus, failed{measure}"
        return f"field {self.fov}: focus low{measure}, cells counted"


def _notes(value: object) -> set[str]:
    return {n.strip() for n in str(value or "").split(",") if n.strip()}


def focus_fields(store: ResultStore, run_id: str, sample_id: str) -> tuple[FocusField, ...]:
    """The sample's fields flagged `focus_low` or failed `out_of_focus`, in field order (a
    database written before focus was recorded gives only the failures its reasons name)."""
    columns = {str(r[1]) for r in store.query("PRAGMA table_info(fields)")}
    measured = {"focus", "quality_notes"} <= columns
    extra = ", focus, quality_notes" if measured else ", NULL, NULL"
    rows = store.query(
        f"SELECT fov, status, reason{extra} FROM fields WHERE run_id=? AND sample_id=? ORDER BY fov",
        (run_id, sample_id),
    )
    found = []
    for fov, status, reason, focus, notes in rows:
        measure = float(focus) if focus is not None else None
        if status == "failed" and reason_kind(str(reason or "")) is QualityKind.OUT_OF_FOCUS:
            stated = _MEASURE.search(str(reason))
            if measure is None and stated:
                measure = float(stated.group(1))
            found.append(FocusField(int(fov), QualityKind.OUT_OF_FOCUS, measure, str(reason)))
        elif status == "done" and QualityKind.FOCUS_LOW.value in _notes(notes):
            found.append(FocusField(int(fov), QualityKind.FOCUS_LOW, measure))
    return tuple(found)

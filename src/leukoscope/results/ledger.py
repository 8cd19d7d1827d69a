"""Per-sample bookkeeping: which fields are segmented, classified or failed, and which cells count.

Pure logic, no sockets: the aggregator feeds it what arrives (in any order, duplicates included) and
asks it what is outstanding and whether the sample is complete. The cells that count are defined by
order, not by arrival time: the first `target_cells` cells in (field, cell index) order over the
leading fields that are resolved. So a re-dispatched or duplicated message, or a worker killed
mid-sample, never changes the final counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leukoscope.types import NOT_WHITE, CellResult


def toward_target(result: CellResult) -> bool:
    """The cell is one of the white-cell differential's (not unidentified, not a red cell)."""
    return not result.unidentified and result.cell_class not in NOT_WHITE


@dataclass
class FieldState:
    """What is known about one field of view."""

    cell_count: int | None = None  # None until segmentation reports (0 is a valid count)
    results: dict[int, CellResult] = field(default_factory=dict)
    failed_reason: str = ""
    entered: bool = False  # its frames have entered the pipeline

    @property
    def failed(self) -> bool:
        """The field could not be acquired or read; it contributes no cells."""
        return bool(self.failed_reason)

    @property
    def segmented(self) -> bool:
        """Segmentation has reported this field's cell count."""
        return self.cell_count is not None

    @property
    def resolved(self) -> bool:
        """Nothing more will arrive for this field: failed, or every cell classified."""
        return self.failed or (self.cell_count is not None and len(self.results) >= self.cell_count)


@dataclass
class SampleLedger:
    """Accounting for one sample. `target_cells` 0 means: count every cell of every field."""

    sample_id: str
    target_cells: int = 200
    fields_total: int | None = None  # known once the end of the sample arrives
    fields: dict[int, FieldState] = field(default_factory=dict)
    simulated: bool | None = False  # the fields come from the simulator; None: not recorded

    def _field(self, fov: int) -> FieldState:
        return self.fields.setdefault(fov, FieldState())

    def add_field(self, fov: int) -> bool:
        """Register a field's frames entering the pipeline; False if they had entered already."""
        state = self._field(fov)
        if state.entered:
            return False
        state.entered = True
        return True

    def fail_field(self, fov: int, reason: str) -> None:
        """Record that a field failed (acquisition, storage or a worker gave up on it)."""
        state = self._field(fov)
        if not state.resolved:
            state.failed_reason = reason or "failed"

    def set_cell_count(self, fov: int, count: int) -> bool:
        """Segmentation's report for a field; False for a duplicate report."""
        state = self._field(fov)
        if state.segmented or state.failed:
            return False
        state.cell_count = count
        return True

    def add_results(self, results: list[CellResult]) -> list[CellResult]:
        """Record classifier results; return only the ones not seen before (by cell key)."""
        fresh: list[CellResult] = []
        for result in results:
            state = self._field(result.key.fov)
            if state.failed or result.key.cell_index in state.results:
                continue
            if state.cell_count is not None and result.key.cell_index >= state.cell_count:
                continue
            state.results[result.key.cell_index] = result
            fresh.append(result)
        return fresh

    def end(self, fields_total: int) -> None:
        """The source says the sample has `fields_total` fields (numbered 0..fields_total-1)."""
        self.fields_total = fields_total
        for fov in range(fields_total):
            self._field(fov)

    def _resolved_prefix(self) -> list[int]:
        prefix: list[int] = []
        fov = 0
        while fov in self.fields and self.fields[fov].resolved:
            if self.fields_total is not None and fov >= self.fields_total:
                break
            prefix.append(fov)
            fov += 1
        return prefix

    def counted(self) -> list[CellResult]:
        """The counted cells, in (field, cell index) order, up to the one that brings the white
        cells of the differential to `target_cells`. Cells the target does not count (unidentified
        cells, nucleated red cells) are counted beside it: reported, never in the percentages."""
        cells: list[CellResult] = []
        white = 0
        for fov in self._resolved_prefix():
            state = self.fields[fov]
            for index in sorted(state.results):
                result = state.results[index]
                cells.append(result)
                white += int(toward_target(result))
                if self.target_cells and white >= self.target_cells:
                    return cells
        return cells

    def target_reached(self) -> bool:
        """Enough white cells counted over the resolved leading fields."""
        if not self.target_cells:
            return False
        return sum(toward_target(r) for r in self.counted()) >= self.target_cells

    def complete(self) -> bool:
        """True when the differential cannot change any more."""
        if self.target_reached():
            return True
        if self.fields_total is None:
            return False
        return all(
            fov in self.fields and self.fields[fov].resolved for fov in range(self.fields_total)
        )

    def fields_needed(self) -> set[int]:
        """Fields still outstanding while the differential can change (empty once complete)."""
        if self.complete():
            return set()
        return {fov for fov, state in self.fields.items() if not state.resolved}

    @property
    def fields_done(self) -> int:
        """Fields fully resolved, failed ones included."""
        return sum(1 for state in self.fields.values() if state.resolved)

    @property
    def fields_failed(self) -> int:
        """Fields that failed."""
        return sum(1 for state in self.fields.values() if state.failed)

    @property
    def failure_reasons(self) -> dict[int, str]:
        """Why each failed field failed."""
        return {fov: s.failed_reason for fov, s in sorted(self.fields.items()) if s.failed}

"""Reviewed cells of a results database as labels: what a technologist signed off becomes a reference.

Each released review (`leukoscope review`, `results/review_store.py`) of a sample among the acquisitions
gives one label per reviewed cell, at the centre of the cell's stored nucleus box, with the reviewed
class; `ARTEFACT` becomes `OTHER` (not a white cell) and `SMUDGE` cells are left out (white cells no
class fits). When a sample was released in several runs, the latest release is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from leukoscope.errors import LabelError
from leukoscope.results.review_records import ReviewState
from leukoscope.results.review_schema import ARTEFACT, SMUDGE
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore
from leukoscope.validation.labels import OTHER, Acquisition, Label


def _latest_releases(review: ReviewStore, samples: set[str]) -> dict[str, ReviewState]:
    chosen: dict[str, ReviewState] = {}
    for (_, sample), state in review.states().items():
        if sample in samples and state.released:
            best = chosen.get(sample)
            if best is None or (state.released_s or 0.0) > (best.released_s or 0.0):
                chosen[sample] = state
    return chosen


def reviewed_labels(database: Path, acquisitions: Mapping[str, Acquisition]) -> list[Label]:
    """Labels from the released reviews in `database` (LabelError when there are none)."""
    database = Path(database)
    if not database.is_file():
        raise LabelError(f"{database}: results database not found")
    labels: list[Label] = []
    with ReviewStore(database, read_only=True) as review, ResultStore(database) as results:
        releases = _latest_releases(review, set(acquisitions))
        if not releases:
            raise LabelError(
                f"{database}: no released review of sample {', '.join(sorted(acquisitions))}"
            )
        for sample, state in sorted(releases.items()):
            acquisition = acquisitions[sample]
            boxes = {(r.key.fov, r.key.cell_index): r.bbox for r in results.results(
                state.run_id, sample)}  # fmt: skip
            for cell in review.cells(state.run_id, sample):
                if cell.label == SMUDGE:
                    continue
                if cell.fov not in acquisition.fields or (cell.fov, cell.cell_index) not in boxes:
                    raise LabelError(
                        f"{database}: run {state.run_id} sample {sample!r} field {cell.fov} cell "
                        f"{cell.cell_index} is not in {acquisition.folder} (another acquisition?)"
                    )
                x, y, width, height = boxes[(cell.fov, cell.cell_index)]
                labels.append(
                    Label(
                        sample=sample,
                        fov=cell.fov,
                        x_px=x + (width - 1) / 2,
                        y_px=y + (height - 1) / 2,
                        cell_class=OTHER if cell.label == ARTEFACT else cell.label,
                        annotator=state.reviewer,
                        line=0,
                    )
                )
    return labels

"""Everything a per-sample report shows, gathered once from the results store (HTML, JSON, CSV).

The differential is `ResultStore.summary` (built by `results.counts`): nothing is recounted here;
once a review exists (results/review_store.py) it is the reviewed one, the original kept in `review`.
The gallery holds exactly the cells behind that summary: the ledger's counted cells once the sample
is finished, every received result while it is still running (the rule `counts.summarize` applies).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from leukoscope.classifier.model_info import ModelInfo, read_model_info
from leukoscope.config import ReferenceRange, Settings
from leukoscope.errors import ParameterError
from leukoscope.limits import DEFAULT_CROP_UM
from leukoscope.report.evidence import read_evidence
from leukoscope.report.flags import (
    DISAGREEMENT_FACTOR,
    QualityFlag,
    RangeFlag,
    Thresholds,
    quality_flags,
    range_flag,
    reference_range,
)
from leukoscope.report.pictures import CellPictures, gallery_pictures, model_modalities
from leukoscope.report.review import ReviewInfo, read_review, reviewed_view
from leukoscope.results.field_notes import FocusField, focus_fields
from leukoscope.results.prepared_pictures import read_prepared
from leukoscope.results.release_gates import Evidence
from leukoscope.results.store import ResultStore, RunRecord, SampleRecord
from leukoscope.types import CellClass, CellResult, ClassCount, SampleSummary

RUNS_LISTED = 5
"""Most candidate runs an unknown or ambiguous `--run` lists."""
GALLERY_LIMIT = 500
"""Most cells shown per class in the gallery (flagged first); the table always counts them all."""


@dataclass(frozen=True)
class ClassLine:
    """One row of the differential: the store's count, its reference range and range flag."""

    count: ClassCount
    reference: ReferenceRange
    flag: RangeFlag


@dataclass(frozen=True)
class GalleryCell:
    """A counted cell with its pictures (report/pictures.py; None when not drawn or none)."""

    result: CellResult
    pictures: CellPictures | None = None

    @property
    def confidence(self) -> float:
        """The probability of the class the cell is counted as."""
        return max(self.result.probabilities, default=0.0)


@dataclass(frozen=True)
class ReportData:
    """One sample of one run, ready to render."""

    database: str
    run_id: str
    sample_id: str
    started_s: float
    finished_s: float | None
    target_cells: int
    summary: SampleSummary
    lines: tuple[ClassLine, ...]
    quality: tuple[QualityFlag, ...]
    mean_disagreement: float
    model: ModelInfo
    gallery: dict[
        CellClass, tuple[GalleryCell, ...]
    ]  # shown cells, gallery order, at most the limit
    flagged_by_class: dict[CellClass, int]  # counted cells flagged for review, per class
    gallery_limit: int | None
    generated_s: float
    review: ReviewInfo | None = None  # None: not read; its `original` is the classifier's summary
    crop_um: float = DEFAULT_CROP_UM  # side of a gallery picture in the sample plane
    evidence: Evidence | None = None  # the model's validation for the sample's rig set-up
    focus_fields: tuple[FocusField, ...] = ()  # fields flagged focus_low or failed out_of_focus

    @property
    def flagged_percent(self) -> float:
        """Share of counted cells flagged for review, percent (0 with no cells)."""
        n = self.summary.cells_counted
        return 100.0 * self.summary.cells_flagged / n if n else 0.0


def matching_runs(runs: list[str], run_id: str) -> list[str]:
    """The runs `run_id` names: that id, else every run it is a prefix of."""
    return [r for r in runs if r == run_id] or [r for r in runs if r.startswith(run_id)]


def resolve_run(store: ResultStore, sample_id: str, run_id: str | None = None) -> str:
    """The run to report: `run_id` (or a unique prefix of it), else the latest run holding the
    sample; ParameterError with one clear line when there is none."""
    rows = store.runs()
    runs = [r["run_id"] for r in rows]
    if run_id is not None:
        matches = matching_runs(runs, run_id)
        if len(matches) != 1:
            raise ParameterError(_no_such_run(store, sample_id, run_id, matches, rows))
        if not any(s["sample_id"] == sample_id for s in store.samples(matches[0])):
            raise ParameterError(f"sample {sample_id!r} is not in run {matches[0]} ({store.path})")
        return str(matches[0])
    holding = [s["run_id"] for s in store.samples() if s["sample_id"] == sample_id]
    for candidate in reversed(runs):  # runs are oldest first
        if candidate in holding:
            return str(candidate)
    known = sorted({s["sample_id"] for s in store.samples()})
    shown = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
    raise ParameterError(
        f"no sample {sample_id!r} in {store.path}"
        + (f" (samples: {shown})" if known else " (it holds no samples)")
    )


def _no_such_run(
    store: ResultStore,
    sample_id: str,
    run_id: str,
    matches: list[str],
    rows: list[RunRecord],
) -> str:
    """One line: no run or several match `run_id`; the candidates, latest first, with the time
    each started (an ambiguous prefix: the runs it matches; else the runs holding the sample)."""
    started = {r["run_id"]: float(r["started_s"]) for r in rows}
    if matches:
        head, candidates = f"{len(matches)} runs match {run_id!r} in {store.path}", matches
    else:
        holding = {s["run_id"] for s in store.samples() if s["sample_id"] == sample_id}
        candidates = [r for r in started if r in holding]
        head = f"no run {run_id!r} in {store.path}"
        if not candidates:
            return f"{head}; no run holds sample {sample_id!r}"
    shown = [
        f"{r} ({time.strftime('%Y-%m-%d %H:%M', time.gmtime(started[r]))} UTC)"
        for r in sorted(candidates, key=lambda r: started[r], reverse=True)[:RUNS_LISTED]
    ]
    more = f" and {len(candidates) - RUNS_LISTED} more" if len(candidates) > RUNS_LISTED else ""
    what = "candidates" if matches else f"runs with sample {sample_id!r}"
    return f"{head}; {what}, latest first: {', '.join(shown)}{more}"


def gallery_order(results: list[CellResult]) -> list[CellResult]:
    """Flagged cells first, then by confidence, highest first; ties in (fov, cell) order."""
    return sorted(results, key=lambda r: (not r.flagged, -max(r.probabilities, default=0.0), r.key))


def _row(store: ResultStore, run_id: str, sample_id: str) -> SampleRecord:
    return next(s for s in store.samples(run_id) if s["sample_id"] == sample_id)


def gather_report(
    store: ResultStore,
    sample_id: str,
    run_id: str | None = None,
    settings: Settings | None = None,
    *,
    gallery_limit: int | None = GALLERY_LIMIT,
    with_thumbnails: bool = True,
    on_picture: Callable[[int, int], None] | None = None,
) -> ReportData:
    """Collect the report of `sample_id` in `run_id` (default: its latest run); the gallery keeps
    at most `gallery_limit` cells per class (None: all), with thumbnails if asked."""
    settings = settings or Settings()
    run_id = resolve_run(store, sample_id, run_id)
    run = next(r for r in store.runs() if r["run_id"] == run_id)
    row = _row(store, run_id, sample_id)
    summary = store.summary(run_id, sample_id)
    evidence = read_evidence(Path(store.path), row, str(run["model_version"]))
    review = read_review(store.path, run_id, sample_id, summary, evidence)
    summary, results = reviewed_view(review, store.counted_results(run_id, sample_id))
    ranges = settings.report.reference_ranges
    n = summary.cells_counted
    lines = tuple(
        ClassLine(c, reference, range_flag(c, reference, n))
        for c in summary.classes
        for reference in [reference_range(ranges, c.cell_class)]
    )
    mean_disagreement = sum(r.disagreement for r in results) / len(results) if results else 0.0
    thresholds = Thresholds(
        target_cells=int(row["target_cells"]),
        max_flagged_percent=settings.report.max_flagged_percent,
        max_mean_disagreement=DISAGREEMENT_FACTOR * settings.pipeline.max_disagreement,
    )
    gallery: dict[CellClass, tuple[GalleryCell, ...]] = {}
    flagged_by_class: dict[CellClass, int] = {}
    shown: dict[CellClass, list[CellResult]] = {}
    for line in lines:
        of_class = [r for r in results if r.cell_class == line.count.cell_class]
        flagged_by_class[line.count.cell_class] = sum(r.flagged for r in of_class)
        shown[line.count.cell_class] = gallery_order(of_class)[:gallery_limit]
    model = read_model_info(run["model_path"], run["model_version"])
    pictures = (
        gallery_pictures(
            [r for cells in shown.values() for r in cells],
            row.source,
            lambda key: store.thumbnail(run_id, key),
            model_modalities(model.modalities),
            settings,
            read_prepared(Path(store.path), run_id, sample_id),
            on_picture,
        )
        if with_thumbnails
        else {}
    )
    for cell_class, cells in shown.items():
        gallery[cell_class] = tuple(GalleryCell(r, pictures.get(r.key)) for r in cells)
    return ReportData(
        database=str(Path(store.path)),
        run_id=run_id,
        sample_id=sample_id,
        started_s=float(row["started_s"]),
        finished_s=row["finished_s"],
        target_cells=int(row["target_cells"]),
        summary=summary,
        lines=lines,
        quality=tuple(quality_flags(summary, ranges, mean_disagreement, thresholds)),
        mean_disagreement=mean_disagreement,
        model=model,
        gallery=gallery,
        flagged_by_class=flagged_by_class,
        gallery_limit=gallery_limit,
        generated_s=time.time(),
        review=review,
        crop_um=settings.pipeline.segmentation.crop_um,
        evidence=evidence,
        focus_fields=focus_fields(store, run_id, sample_id),
    )


def open_results(path: Path) -> ResultStore:
    """Open an existing results database (never create one by mistake)."""
    if not Path(path).is_file():
        raise ParameterError(f"results database {path} not found (pass --db)")
    return ResultStore(path, read_only=True)

"""`leukoscope validate`: run the pipeline exactly as `batch` does, then compare it with the labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leukoscope.config import Settings
from leukoscope.errors import PipelineError
from leukoscope.pipeline.aggregator import SummaryCallback
from leukoscope.pipeline.service import analyse, load_predictor
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.pipeline.store import ResultStore
from leukoscope.validation import agreement
from leukoscope.validation.labels import describe_acquisitions, read_labels
from leukoscope.validation.matching import DEFAULT_RADIUS_UM
from leukoscope.validation.outdir import refuse_existing, staged_folder
from leukoscope.validation.report import summary_lines, write_report


@dataclass(frozen=True)
class Validation:
    """A finished validation: its figures and where they were written."""

    out: Path
    data: dict[str, Any]
    files: list[Path]

    def summary(self) -> list[str]:
        """The one-screen terminal summary."""
        return [*summary_lines(self.data), f"report: {self.out / 'validation.md'}"]


def validate(
    settings: Settings,
    acquisitions: Sequence[Path],
    labels_path: Path,
    out: Path,
    *,
    radius_um: float = DEFAULT_RADIUS_UM,
    on_summary: SummaryCallback | None = None,
    before_run: Callable[[int], None] | None = None,
) -> Validation:
    """Analyse `acquisitions` through the pipeline (every cell counted) and compare with the labels.

    The run is stored in `out/results.sqlite`; `out` is built beside its final place and appears
    only when everything is written.
    """
    out = Path(out)
    refuse_existing(out)
    found = describe_acquisitions(acquisitions)
    labels = read_labels(labels_path, found)
    jobs = [saved_acquisition(a.folder) for a in found.values()]
    current = settings.model_copy(deep=True)
    current.pipeline.target_cells = 0  # the reference labels every cell: count every cell
    predictor, model_path = load_predictor(current)
    with staged_folder(out) as staging:
        database = staging / "results.sqlite"
        if before_run is not None:
            before_run(len(jobs))
        outcome = analyse(
            current,
            jobs,
            predictor=predictor,
            model_path=model_path,
            database=database,
            on_summary=on_summary,
        )
        matches, samples = [], []
        with ResultStore(database) as store:
            for sample, acquisition in found.items():
                mine = [lb for lb in labels if lb.sample == sample]
                results = store.results(outcome.run_id, sample)
                match = agreement.match_sample(
                    sample,
                    mine,
                    results,
                    acquisition.pixel_size_um,
                    radius_um,
                    acquisition.frame_shape,
                )
                matches.append(match)
                summary = outcome.summaries.get(sample)
                if summary is None:
                    raise PipelineError(f"sample {sample!r} did not finish; nothing to compare")
                samples.append(agreement.sample_differential(match, summary))
        params = current.pipeline.segmentation.model_dump()
        data = {
            "model": str(model_path),
            "labels": str(Path(labels_path).resolve()),
            "run_id": outcome.run_id,
            "database": str((out / "results.sqlite").resolve()),
            "radius_um": radius_um,
            "segmentation_settings": params,
            "segmentation": agreement.segmentation_figures(matches),
            "classification": agreement.classification_figures(matches),
            "samples": samples,
            "agreement": agreement.agreement_figures(samples),
        }
        files = write_report(data, staging)
    return Validation(out, data, [out / f.name for f in files])

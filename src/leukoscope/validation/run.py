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
from leukoscope.results.store import ResultStore
from leukoscope.results.validations import record_validation
from leukoscope.validation import agreement
from leukoscope.validation.criteria import judge
from leukoscope.validation.labels import describe_acquisitions, read_labels
from leukoscope.validation.matching import DEFAULT_RADIUS_UM
from leukoscope.validation.outdir import refuse_existing, staged_folder
from leukoscope.validation.record import build_record, common_rig, login_name, verdict_lines
from leukoscope.validation.report import summary_lines, write_report


@dataclass(frozen=True)
class Validation:
    """A finished validation: its figures and where they were written."""

    out: Path
    data: dict[str, Any]
    files: list[Path]

    @property
    def verdict(self) -> str:
        """PASS or FAIL (the acceptance criteria of `[validation]`)."""
        return str(self.data["record"]["verdict"])

    def summary(self) -> list[str]:
        """The one-screen terminal summary, the verdict last."""
        return [
            *summary_lines(self.data),
            f"report: {self.out / 'validation.md'}",
            *verdict_lines(self.data["record"]),
        ]


def validate(
    settings: Settings,
    acquisitions: Sequence[Path],
    labels_path: Path,
    out: Path,
    *,
    radius_um: float = DEFAULT_RADIUS_UM,
    on_summary: SummaryCallback | None = None,
    before_run: Callable[[int], None] | None = None,
    database: Path | None = None,
    validated_by: str | None = None,
) -> Validation:
    """Analyse `acquisitions` through the pipeline (every cell counted), compare with the labels
    and judge the figures by `settings.validation`.

    The run is stored in `out/results.sqlite`; the verdict is appended to `database` (default
    `settings.pipeline.results_db`, table `model_validations`). `out` is built beside its final
    place and appears only when everything is written.
    """
    out = Path(out)
    refuse_existing(out)
    database = Path(database or settings.pipeline.results_db)
    who = login_name(validated_by)
    found = describe_acquisitions(acquisitions)
    rig = common_rig(found)
    labels = read_labels(labels_path, found)
    jobs = [saved_acquisition(a.folder) for a in found.values()]
    current = settings.model_copy(deep=True)
    current.pipeline.target_cells = 0  # the reference labels every cell: count every cell
    predictor, model_path = load_predictor(current)
    with staged_folder(out) as staging:
        run_database = staging / "results.sqlite"
        if before_run is not None:
            before_run(len(jobs))
        outcome = analyse(
            current,
            jobs,
            predictor=predictor,
            model_path=model_path,
            database=run_database,
            on_summary=on_summary,
        )
        matches, samples = [], []
        with ResultStore(run_database) as store:
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
        data: dict[str, Any] = {
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
        verdict = judge(data, current.validation)
        record, as_json = build_record(
            verdict,
            current.validation,
            model_path=model_path,
            labels_path=labels_path,
            rig=rig,
            simulated=any(a.simulated for a in found.values()),
            validated_by=who,
            report=out / "validation.json",
        )
        stored = record_validation(database, record)
        data["record"] = {**as_json, "id": stored.id, "database": str(database.resolve())}
        files = write_report(data, staging)
    return Validation(out, data, [out / f.name for f in files])

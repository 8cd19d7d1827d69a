"""Analyse samples end to end with the configured model and store: what `run` and `batch` call."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from leukoscope.classifier.infer import Predictor
from leukoscope.classifier.shipped import resolve_model_path
from leukoscope.config import Settings
from leukoscope.pipeline.aggregator import SummaryCallback
from leukoscope.pipeline.assembly import head_classifier
from leukoscope.pipeline.runner import run_embedded
from leukoscope.pipeline.sources import SampleJob
from leukoscope.results.store import ResultStore
from leukoscope.types import SampleSummary


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: where its results are stored and each sample's final summary."""

    run_id: str
    database: Path
    summaries: dict[str, SampleSummary]


def load_predictor(settings: Settings) -> tuple[Predictor, Path]:
    """The configured (or shipped) model, on the configured backend."""
    path = resolve_model_path(settings.classifier.model_path)
    config = settings.classifier
    return Predictor.load(path, backend=config.backend, threads=config.threads), path


def model_version(predictor: Predictor, model_path: Path) -> str:
    """What a run records as its model: architecture, when the checkpoint was made, and the
    SHA-256 of the file, e.g. `hs_mm_mimo 2026-11-27T16:05:40+00:00 sha256:1a2b...` (64 hex)."""
    from leukoscope.classifier.checkpoint import file_digest

    meta = predictor.meta
    created = str(meta.provenance.get("created_utc", "")) or "undated"
    return f"{meta.arch} {created} sha256:{file_digest(Path(model_path))}"


def analyse(
    settings: Settings,
    jobs: Sequence[SampleJob],
    *,
    predictor: Predictor,
    model_path: Path,
    database: Path | None = None,
    on_summary: SummaryCallback | None = None,
    timeout_s: float | None = None,
) -> RunOutcome:
    """Run the embedded pipeline over `jobs`, recording a run in the results database."""
    database = database or settings.pipeline.results_db
    digest = hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:16]
    version = model_version(predictor, model_path)
    with ResultStore(database) as store:
        run_id = store.start_run(
            model_path=str(model_path), model_version=version, config_digest=digest
        )
        try:
            summaries = run_embedded(
                settings.pipeline,
                jobs,
                classify=head_classifier(predictor),
                modalities=predictor.modalities,
                input_size=predictor.input_size,
                store=store,
                run_id=run_id,
                on_summary=on_summary,
                timeout_s=timeout_s,
            )
        finally:
            store.finish_run(run_id)
    return RunOutcome(run_id, database, summaries)

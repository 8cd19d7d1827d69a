"""One field's work as a Dask task: read, quality check, segment, classify, on the worker.

`analyse_field` is a plain top-level function over a folder, a field index and `FieldWork` (paths
and settings): Dask ships it to a worker near the data, so the field's frames are read there and
only its cells' results and thumbnails travel back. It reuses the pipeline's own code (the saved
field reader, the stages' segmenter and classifier from assembly.py, the unit budget and the
classify worker's `stages.cell_results`), so a field gives the cells the embedded workers give.

The model is loaded once per worker process (a cache keyed by path, SHA-256, backend and threads),
after its file's digest is checked against the one the client computed: a worker that sees another
file fails its tasks with `ModelMismatch`, and the run stops with that line. A field that fails for
its own reason (unreadable, blank, too busy, over budget, a crash in its code) is answered as a
failed field, never raised: only the worker's own trouble is an exception.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leukoscope.acquisition_files import storage
from leukoscope.classifier.checkpoint import file_digest
from leukoscope.classifier.infer import Backend, Predictor
from leukoscope.config import PipelineConfig
from leukoscope.errors import LeukoscopeError, PipelineError, WorkStopped
from leukoscope.pictures.png import PNG_SIGNATURE
from leukoscope.pictures.thumbnail import thumbnail
from leukoscope.pipeline import budget
from leukoscope.pipeline.assembly import configured_segmenter, head_classifier
from leukoscope.pipeline.field_quality import failure_reason, field_quality_of
from leukoscope.pipeline.stages import Segmenter, cell_results
from leukoscope.types import CellCrop, CellKey, CellResult, FrameSet


class ModelMismatch(PipelineError):
    """A worker's model file is not the one the client checked (another file, or none)."""


@dataclass(frozen=True)
class FieldWork:
    """What every field task needs besides its field: the model and the pipeline settings."""

    model_path: str
    model_digest: str  # SHA-256 of the model file, computed by the client
    backend: Backend
    threads: int
    pipeline: PipelineConfig


@dataclass(frozen=True)
class FieldAnswer:
    """What one field task gives back: its cells, or why the field failed (and at which stage).

    A field that failed in classification still carries its segmentation (count, quality), as the
    embedded segment worker reported it before the classify worker gave up."""

    sample_id: str
    fov: int
    worker: str
    stage: str = ""  # "read", "segment" or "classify" when it failed
    reason: str = ""  # "" when it succeeded
    rig: tuple[float, str] | None = None  # (pixel size, settings digest) of the field read
    cell_count: int | None = None  # None: not segmented
    results: tuple[CellResult, ...] = ()
    thumbnails: tuple[bytes, ...] = ()  # one PNG per result (b"": none)
    quality: tuple[float | None, tuple[str, ...]] = (None, ())
    compute_s: float = 0.0  # seconds the task itself ran


_models: dict[tuple[str, str, str, int], Predictor] = {}
_models_lock = threading.Lock()
_segmenters: dict[tuple[str, int], Segmenter] = {}
_never = threading.Event()  # a task is never stopped from inside: Dask cancels it


def worker_name() -> str:
    """How stored rows name this worker process (`dask-HOST-PID`)."""
    return f"dask-{socket.gethostname()}-{os.getpid()}"


def cached_predictor(work: FieldWork) -> Predictor:
    """The model of `work`, loaded once per worker process after its digest is checked."""
    key = (work.model_path, work.model_digest, work.backend, work.threads)
    with _models_lock:
        predictor = _models.get(key)
        if predictor is not None:
            return predictor
        try:
            found = file_digest(Path(work.model_path))
        except OSError as exc:
            raise ModelMismatch(
                f"worker {worker_name()}: cannot read the model {work.model_path}: {exc}"
            ) from None
        if found != work.model_digest:
            raise ModelMismatch(
                f"worker {worker_name()}: the model {work.model_path} has SHA-256 {found[:12]}..., "
                f"the client's has {work.model_digest[:12]}...: install the same model file on "
                "every worker"
            )
        predictor = Predictor.load(
            Path(work.model_path), backend=work.backend, threads=work.threads
        )
        _models[key] = predictor
        return predictor


def _segmenter(config: PipelineConfig, input_size: int) -> Segmenter:
    """The embedded segment worker's segmenter for these settings (made once per worker)."""
    key = (config.model_dump_json(), input_size)
    with _models_lock:
        found = _segmenters.get(key)
        if found is None:
            found = _segmenters[key] = configured_segmenter(config, input_size)
        return found


def _classify(
    predictor: Predictor, config: PipelineConfig, frameset: FrameSet, cells: list[CellCrop]
) -> tuple[CellResult, ...]:
    """The classify worker's step for one field's cells."""
    missing = [m.value for m in predictor.modalities if m not in frameset.modalities]
    if missing:
        raise PipelineError(f"cells of field {frameset.fov} lack modalities {missing}")
    order = [frameset.modalities.index(m) for m in predictor.modalities]
    heads, reasons = head_classifier(predictor)(np.stack([c.crops[order] for c in cells]))
    return cell_results(
        cells,
        heads,
        reasons,
        min_probability=config.min_probability,
        max_disagreement=config.max_disagreement,
        classes=predictor.meta.classes,
    )


def analyse_field(folder: str, sample_id: str, fov: int, work: FieldWork) -> FieldAnswer:
    """Read, check, segment and classify one saved field; its answer (failed fields included).

    Raises only for the worker's own trouble (`ModelMismatch`), never for the field's."""
    started = time.perf_counter()
    me = worker_name()
    predictor = cached_predictor(work)

    def answer(**kwargs: object) -> FieldAnswer:
        spent = time.perf_counter() - started
        return FieldAnswer(sample_id, fov, me, compute_s=spent, **kwargs)  # type: ignore[arg-type]

    try:
        frameset = storage.read_field(Path(folder), fov)
    except LeukoscopeError as exc:
        return answer(stage="read", reason=str(exc))
    rig = (frameset.pixel_size_um, frameset.settings_digest)
    config = work.pipeline
    try:
        with budget.within(config.unit_budget_s, _never):
            cells = _segmenter(config, predictor.input_size)(frameset)
    except WorkStopped as exc:  # not expected: nothing sets the event
        return answer(stage="segment", reason=f"segmentation failed: {exc}", rig=rig)
    except Exception as exc:  # one bad field fails alone, never the worker
        return answer(stage="segment", reason=failure_reason(exc)[:4000], rig=rig)
    quality = field_quality_of(cells)
    pictures = tuple(thumbnail(c.crops) for c in cells)
    segmented = {"rig": rig, "cell_count": len(cells), "quality": quality}
    if not cells:
        return answer(**segmented)
    try:
        results = _classify(predictor, config, frameset, list(cells))
    except Exception as exc:
        reason = f"classification failed: {type(exc).__name__}: {exc}"[:4000]
        return answer(stage="classify", reason=reason, thumbnails=pictures, **segmented)
    return answer(results=results, thumbnails=pictures, **segmented)


def usable_thumbnails(answer: FieldAnswer) -> dict[CellKey, bytes]:
    """The answer's PNG pictures by cell key (none for a cell without a valid one)."""
    if len(answer.thumbnails) != len(answer.results):
        return {}
    return {
        r.key: png
        for r, png in zip(answer.results, answer.thumbnails, strict=True)
        if png.startswith(PNG_SIGNATURE)
    }

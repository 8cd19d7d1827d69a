"""The stages' work, put together from the settings: what the segment stage runs on a field, what the
classify stage runs on a micro-batch, and how a source streams its samples.

The embedded runner (runner.py), the tcp workers and source (distributed.py) and the Dask field
tasks (dask_field.py) all take them from here, so every mode segments and classifies alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from leukoscope.config import PipelineConfig
from leukoscope.pipeline.source_stage import Source
from leukoscope.pipeline.sources import SampleJob
from leukoscope.pipeline.stages import Segmenter
from leukoscope.types import CellClass

if TYPE_CHECKING:  # infer.py imports torch, which a segment worker never needs
    from leukoscope.classifier.infer import Predictor


def configured_segmenter(config: PipelineConfig, input_size: int) -> Segmenter:
    """Segmentation with `[pipeline.segmentation]`, crops resized to the model's `input_size`,
    behind the field-quality check of `[pipeline.quality]`."""
    from leukoscope.pipeline.field_quality import checked
    from leukoscope.pipeline.segmentation import SegmentationParams, segment

    params = SegmentationParams.from_config(config.segmentation)
    return checked(functools.partial(segment, out_px=input_size, params=params), config.quality)


@dataclass(frozen=True)
class ModelHeads:
    """The classify stage's function: head probabilities and each cell's open-set reason, with
    the model's classes (the order of the probabilities)."""

    predictor: Predictor
    classes: tuple[CellClass, ...]

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, list[str]]:
        prediction = self.predictor.predict(crops)
        return prediction.head_probabilities, self.predictor.unidentified(prediction)


def head_classifier(predictor: Predictor) -> ModelHeads:
    """The classify stage's function for `predictor`'s model."""
    return ModelHeads(predictor, tuple(predictor.meta.classes))


def send_jobs(source: Source, jobs: Sequence[SampleJob]) -> None:
    """Stream each sample of `jobs` through `source`, in order, until its stop event is set."""
    for job in jobs:
        if source.stop.is_set():
            return
        path = "" if job.acquisition is None else str(job.acquisition)
        source.send_sample(job.sample_id, job.fields, job.fields_total, path, job.simulated)

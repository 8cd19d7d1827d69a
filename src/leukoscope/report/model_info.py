"""The model facts a report shows: read from the checkpoint by `classifier.model_info`."""

from __future__ import annotations

from leukoscope.classifier.model_info import CV_METRICS, ModelInfo, read_model_info

__all__ = ["CV_METRICS", "ModelInfo", "read_model_info"]

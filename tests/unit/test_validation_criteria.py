"""The acceptance criteria ([validation]) applied to a validation's figures: PASS, and each
criterion failing on its own."""

from __future__ import annotations

from typing import Any

import pytest

from leukoscope.config import Settings, ValidationConfig
from leukoscope.validation.criteria import judge

CLASSES = ("NEU", "LYM", "MO", "EOS", "BAS")


def figures(**change: Any) -> dict[str, Any]:
    """Figures that pass the default criteria; `change` overrides some."""
    bias = {"NEU": -2.0, "LYM": 1.5, "MO": 0.5, "EOS": 0.2, "BAS": None}
    bias.update(change.pop("bias", {}))
    data: dict[str, Any] = {
        "samples": [{"sample": f"S{i}"} for i in range(change.pop("samples", 3))],
        "segmentation": {"recall": 0.80, "whole_labels": 100, "recall_whole": 0.97},
        "classification": {"cells": 600, "accuracy": 0.93},
        "agreement": {
            "coverage": 0.9,
            "per_class": {n: {"bias_pp": bias[n]} for n in CLASSES},
        },
    }
    for key, value in change.items():
        section, name = key.split("__")
        data[section][name] = value
    return data


def test_pass_and_its_figures() -> None:
    verdict = judge(figures(), ValidationConfig())
    assert verdict.verdict == "PASS" and verdict.failed == ()
    assert (verdict.samples, verdict.cells, verdict.accuracy) == (3, 600, 0.93)
    assert verdict.segmentation_recall == 0.97  # over cells certainly whole, by default
    assert (verdict.largest_bias_pp, verdict.largest_bias_class) == (2.0, "NEU")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"samples": 1}, "samples: 1, fewer than the minimum 2"),
        ({"segmentation__recall_whole": 0.9}, "segmentation recall (whole cells): 90.0 %"),
        ({"classification__accuracy": 0.85}, "accuracy: 85.0 %, below the minimum 90.0 %"),
        ({"classification__accuracy": None}, "accuracy: no matched white cell"),
        ({"bias": {"NEU": 5.5}}, "bias NEU: +5.5 pp, beyond the limit +-5 pp"),
        ({"bias": {"MO": -3.1}}, "bias MO: -3.1 pp, beyond the limit +-3 pp"),
        ({"bias": {"BAS": 1.2}}, "bias BAS: +1.2 pp, beyond the limit +-1 pp"),
        ({"agreement__coverage": 0.7}, "reference inside the 95 % interval: 70.0 %"),
        ({"agreement__coverage": None}, "reference inside the 95 % interval: no interval"),
    ],
)
def test_each_criterion_fails_alone(change: dict[str, Any], reason: str) -> None:
    verdict = judge(figures(**change), ValidationConfig(min_samples=2))
    assert verdict.verdict == "FAIL"
    assert len(verdict.failed) == 1 and verdict.failed[0].startswith(reason)


def test_recall_over_every_label_when_asked() -> None:
    criteria = ValidationConfig(recall_whole_cells_only=False)
    verdict = judge(figures(), criteria)
    assert (
        verdict.segmentation_recall == 0.80 and "segmentation recall: 80.0 %" in verdict.failed[0]
    )


def test_criteria_from_a_partial_config_table() -> None:
    settings = Settings.model_validate({"validation": {"max_bias_pp": {"NEU": 1.0}}})
    assert settings.validation.max_bias_pp["LYM"] == 5.0  # type: ignore[index]
    assert judge(figures(), settings.validation).failed == (
        "bias NEU: -2.0 pp, beyond the limit +-1 pp",
    )
    with pytest.raises(ValueError, match="less than or equal to 100"):
        ValidationConfig.model_validate({"max_bias_pp": {"MO": 101}})
    with pytest.raises(ValueError, match="extra"):
        ValidationConfig.model_validate({"min_acuracy": 0.9})

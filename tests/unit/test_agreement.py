"""Method-comparison figures on hand-made cases whose answers are worked out here."""

from __future__ import annotations

import pytest

from leukoscope.results.counts import class_counts
from leukoscope.types import CELL_CLASSES, CellClass, CellKey, CellResult, SampleSummary
from leukoscope.validation import agreement
from leukoscope.validation.labels import Label


def cell(fov: int, index: int, cls: CellClass, x: int, y: int) -> CellResult:
    probabilities = tuple(1.0 if c == cls else 0.0 for c in CELL_CLASSES)
    return CellResult(CellKey("S", fov, index), cls, probabilities, bbox=(x - 5, y - 5, 11, 11))


def label(fov: int, cls: str, x: float, y: float, line: int) -> Label:
    return Label("S", fov, x, y, cls, "", line)


def test_matching_confusion_and_segmentation() -> None:
    labels = [
        label(0, "NEU", 100, 100, 2),
        label(0, "EOS", 200, 100, 3),
        label(0, "OTHER", 300, 100, 4),  # a detection that is not a white cell
        label(1, "LYM", 50, 50, 5),  # missed: nothing near it
        label(1, "LYM", 150, 50, 6),
    ]
    results = [
        cell(0, 0, CellClass.NEU, 102, 101),
        cell(0, 1, CellClass.NEU, 199, 98),  # an EOS called NEU
        cell(0, 2, CellClass.MO, 300, 103),  # matches OTHER: a false detection
        cell(1, 0, CellClass.LYM, 151, 52),
        cell(2, 0, CellClass.LYM, 10, 10),  # a field without labels: not scored
    ]
    match = agreement.match_sample("S", labels, results, 0.25, 6.0, (400, 400))
    assert sorted(match.pairs) == [(0, 0), (1, 1), (2, 2), (4, 3)]
    seg = agreement.segmentation_figures([match])
    assert (seg["found"], seg["white_cell_labels"]) == (3, 4)
    assert (seg["true_detections"], seg["detections"]) == (3, 4)
    cls = agreement.classification_figures([match])
    assert cls["cells"] == 3 and cls["accuracy"] == pytest.approx(2 / 3)
    neu, eos = cls["per_class"]["NEU"], cls["per_class"]["EOS"]
    assert (neu["precision"], neu["recall"]) == (0.5, 1.0)
    assert (eos["precision"], eos["recall"]) == (None, 0.0)
    # F1 per class in the reference: NEU 2/3, LYM 1, EOS 0 -> macro 5/9
    assert cls["macro_f1"] == pytest.approx(5 / 9)


def summary(counts: dict[CellClass, int]) -> SampleSummary:
    return SampleSummary(
        sample_id="S",
        classes=class_counts({c: counts.get(c, 0) for c in CELL_CLASSES}),
        cells_counted=sum(counts.values()),
        cells_flagged=0,
        fields_done=1,
    )


def test_differential_bias_and_limits_of_agreement() -> None:
    samples = []
    # the pipeline's NEU share minus the reference's: +10, -10, 0 points over three samples
    for pipeline_neu, reference_neu in ((6, 5), (4, 5), (5, 5)):
        labels = [label(0, "NEU", 10.0 * i, 10, i) for i in range(reference_neu)]
        labels += [label(0, "LYM", 10.0 * i, 50, 20 + i) for i in range(10 - reference_neu)]
        match = agreement.SampleMatch("S", labels, [])
        counts = {CellClass.NEU: pipeline_neu, CellClass.LYM: 10 - pipeline_neu}
        samples.append(agreement.sample_differential(match, summary(counts)))
    first = samples[0]["classes"]["NEU"]
    assert first["reference_percent"] == 50.0 and first["difference_pp"] == pytest.approx(10.0)
    assert first["reference_inside_pipeline_ci"] is True  # 50 % lies in the 6/10 interval
    figures = agreement.agreement_figures(samples)
    neu = figures["per_class"]["NEU"]
    assert neu["bias_pp"] == pytest.approx(0.0)
    assert neu["sd_pp"] == pytest.approx(10.0)
    assert neu["loa_pp"] == pytest.approx([-19.6, 19.6])
    assert figures["intervals"] == 15 and figures["coverage"] == 1.0

"""Composition parsing, validation and exact apportionment."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leukoscope.errors import ParameterError
from leukoscope.instrument.simulator.composition import (
    DEFAULT_COMPOSITION,
    PAPER_COUNTS,
    apportion,
    parse_composition,
    validate_composition,
)
from leukoscope.types import CELL_CLASSES, CellClass


def test_default_6697_cells_give_the_papers_exact_counts() -> None:
    assert apportion(6697, DEFAULT_COMPOSITION) == PAPER_COUNTS
    assert [PAPER_COUNTS[c] for c in CELL_CLASSES] == [4167, 2027, 82, 378, 43]


def test_default_rounds_to_the_papers_percentages() -> None:
    rounded = [round(DEFAULT_COMPOSITION[c], 1) for c in CELL_CLASSES]
    assert rounded == [62.2, 30.3, 1.2, 5.6, 0.6]


def test_rounded_figures_that_sum_to_99_9_are_accepted_and_rescaled() -> None:
    comp = parse_composition("NEU=62.2,LYM=30.3,MO=1.2,EOS=5.6,BAS=0.6")
    assert sum(comp.values()) == pytest.approx(100.0)


def test_omitted_classes_count_zero_and_empty_gives_default() -> None:
    comp = parse_composition("neu=50, LYM=50")
    assert comp[CellClass.MO] == 0.0 and comp[CellClass.NEU] == 50.0
    assert parse_composition(None) == DEFAULT_COMPOSITION
    assert parse_composition("  ") == DEFAULT_COMPOSITION


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NEU=60,LYM=30", "sum to 100"),
        ("NEU=110,LYM=-10", ">= 0"),
        ("NEU=50,XYZ=50", "unknown cell class 'XYZ'"),
        ("NEU=50,NEU=50", "twice"),
        ("NEU=abc,LYM=100", "not a number"),
        ("NEU:100", "not CLASS=PERCENT"),
    ],
)
def test_bad_compositions_are_rejected_clearly(text: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_composition(text)


def test_negative_cell_count_is_rejected() -> None:
    with pytest.raises(ParameterError, match=">= 0"):
        apportion(-1, DEFAULT_COMPOSITION)


def test_nan_share_is_rejected() -> None:
    with pytest.raises(ParameterError):
        validate_composition({CellClass.NEU: float("nan"), CellClass.LYM: 100.0})


@settings(deadline=None, max_examples=100)
@given(
    total=st.integers(0, 50_000),
    weights=st.lists(st.integers(0, 1000), min_size=5, max_size=5).filter(lambda w: sum(w) > 0),
)
def test_apportion_sums_exactly_and_stays_within_one_of_the_quota(
    total: int, weights: list[int]
) -> None:
    comp = {c: 100.0 * w / sum(weights) for c, w in zip(CELL_CLASSES, weights, strict=True)}
    counts = apportion(total, comp)
    assert sum(counts.values()) == total
    for c in CELL_CLASSES:
        assert abs(counts[c] - total * comp[c] / 100.0) < 1.0

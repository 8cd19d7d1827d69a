"""Counting rules: disagreement, flags, Clopper-Pearson CIs, stop rule and summaries."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from leukoscope.errors import PipelineError
from leukoscope.results import counts
from leukoscope.results.ledger import SampleLedger
from leukoscope.types import CELL_CLASSES, CellClass, CellKey, CellResult, SampleStatus

NEU, LYM, MO, EOS, BAS = CELL_CLASSES


def result(fov: int, index: int, cls: CellClass = NEU, flagged: bool = False) -> CellResult:
    probabilities = tuple(1.0 if c == cls else 0.0 for c in CELL_CLASSES)
    return CellResult(CellKey("s", fov, index), cls, probabilities, flagged=flagged)


def one_hot(cls: CellClass) -> list[float]:
    return [1.0 if c == cls else 0.0 for c in CELL_CLASSES]


def test_disagreement_is_mean_total_variation_from_the_mean() -> None:
    assert counts.disagreement([one_hot(NEU)] * 3) == 0.0
    assert counts.disagreement([one_hot(NEU)]) == 0.0  # one head cannot disagree
    assert counts.disagreement(np.zeros((0, 5))) == 0.0
    assert counts.disagreement([one_hot(NEU), one_hot(LYM), one_hot(MO)]) == pytest.approx(2 / 3)
    assert counts.disagreement([one_hot(NEU), one_hot(LYM)]) == pytest.approx(0.5)
    mixed = [[0.6, 0.4, 0, 0, 0], [0.4, 0.6, 0, 0, 0]]
    assert counts.disagreement(mixed) == pytest.approx(0.1)


def test_result_from_heads_keeps_the_best_guess_and_flags_with_a_reason() -> None:
    key = CellKey("s", 0, 0)
    sure = counts.result_from_heads(
        key, [one_hot(EOS)] * 3, min_probability=0.6, max_disagreement=0.25, bbox=(1, 2, 3, 4)
    )
    assert (sure.cell_class, sure.flagged, sure.flag_reason, sure.bbox) == (
        EOS,
        False,
        "",
        (1, 2, 3, 4),
    )
    assert sure.probabilities == tuple(one_hot(EOS)) and len(sure.head_probabilities) == 3

    split = counts.result_from_heads(
        key, [one_hot(MO), one_hot(MO), one_hot(BAS)], min_probability=0.6, max_disagreement=0.25
    )
    assert split.cell_class == MO and split.flagged and split.label == "UNSURE"
    assert "low probability 0.67" not in split.flag_reason  # 2/3 >= 0.6
    assert "head disagreement 0.44 > 0.25" in split.flag_reason

    unsure = counts.result_from_heads(
        key, [[0.3, 0.25, 0.15, 0.15, 0.15]], min_probability=0.6, max_disagreement=0.25
    )
    assert unsure.cell_class == NEU and unsure.flag_reason == "low probability 0.30 < 0.60"
    with pytest.raises(PipelineError, match="heads x 5"):
        counts.result_from_heads(key, [[1.0, 0.0]], min_probability=0.6, max_disagreement=0.25)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_clopper_pearson_matches_scipy_binomtest(kn: tuple[int, int]) -> None:
    k, n = kn
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = counts.clopper_pearson(k, n)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_clopper_pearson_edges() -> None:
    assert counts.clopper_pearson(0, 0) == (0.0, 1.0)
    assert counts.clopper_pearson(0, 200)[0] == 0.0
    assert counts.clopper_pearson(200, 200)[1] == 1.0
    assert counts.clopper_pearson(0, 1)[1] == pytest.approx(0.975)
    with pytest.raises(PipelineError):
        counts.clopper_pearson(3, 2)


def test_class_counts_percentages_and_zero_cells() -> None:
    rows = counts.class_counts({NEU: 120, LYM: 60, MO: 12, EOS: 6, BAS: 2})
    assert [r.cell_class for r in rows] == list(CELL_CLASSES)
    assert [r.percent for r in rows] == [60.0, 30.0, 6.0, 3.0, 1.0]
    assert all(r.ci_low_percent < r.percent < r.ci_high_percent for r in rows)
    empty = counts.class_counts({})
    assert all(
        (r.count, r.percent, r.ci_low_percent, r.ci_high_percent) == (0, 0, 0, 100) for r in empty
    )


def test_tally_counts_each_key_once_and_flagged_cells_in_their_class() -> None:
    by_class, flagged = counts.tally(
        [result(0, 0, NEU), result(0, 0, NEU), result(0, 1, LYM, flagged=True)]
    )
    assert by_class == {NEU: 1, LYM: 1, MO: 0, EOS: 0, BAS: 0} and flagged == 1


def test_zero_cells_give_a_valid_summary_that_is_never_complete() -> None:
    ledger = SampleLedger("s", target_cells=200)
    ledger.set_cell_count(0, 0)
    ledger.end(1)
    summary = counts.summarize(ledger)
    assert summary.status == SampleStatus.INCOMPLETE and summary.cells_counted == 0
    assert summary.fields_done == 1 and summary.fields_total == 1
    assert all(c.percent == 0 and c.ci_high_percent == 100 for c in summary.classes)
    assert summary.status_reason == "no white cells in 1 field(s)"
    empty = SampleLedger("s", target_cells=200)
    empty.end(0)
    assert counts.summarize(empty).status_reason == "no fields of view"


def test_running_summary_is_provisional_over_everything_received() -> None:
    ledger = SampleLedger("s", target_cells=5)
    ledger.add_results([result(1, 0, LYM), result(1, 1, NEU)])  # field 0 not in yet
    summary = counts.summarize(ledger, elapsed_s=1.5, timings={"segment_s": 0.2})
    assert summary.status == SampleStatus.RUNNING and summary.cells_counted == 2
    assert summary.elapsed_s == 1.5 and summary.timings == {"segment_s": 0.2}
    aborted = counts.summarize(ledger, aborted="stopped by the user")
    assert aborted.status == SampleStatus.INCOMPLETE
    assert aborted.status_reason == "stopped by the user" and aborted.cells_counted == 0


def _stream(fields: list[list[CellClass]], seed: int) -> list[tuple[str, object]]:
    events: list[tuple[str, object]] = [("end", len(fields))]
    for fov, classes in enumerate(fields):
        events.append(("count", (fov, len(classes))))
        events += [("result", result(fov, i, c)) for i, c in enumerate(classes)]
    rng = random.Random(seed)
    events += rng.sample(events, k=len(events) // 3)  # duplicates
    rng.shuffle(events)
    return events


def _feed(events: list[tuple[str, object]], target: int) -> SampleLedger:
    ledger = SampleLedger("s", target_cells=target)
    for kind, value in events:
        if kind == "end":
            ledger.end(value)  # type: ignore[arg-type]
        elif kind == "count":
            ledger.set_cell_count(*value)  # type: ignore[misc]
        else:
            ledger.add_results([value])  # type: ignore[list-item]
    return ledger


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(CELL_CLASSES), max_size=6), min_size=1, max_size=8),
    st.integers(0, 12),
    st.integers(0, 2**16),
)
def test_final_counts_do_not_depend_on_arrival_order_or_duplicates(
    fields: list[list[CellClass]], target: int, seed: int
) -> None:
    a = counts.summarize(_feed(_stream(fields, seed), target))
    b = counts.summarize(_feed(_stream(fields, seed + 1), target))
    assert a.status == b.status
    assert a.status == (SampleStatus.COMPLETE if a.cells_counted else SampleStatus.INCOMPLETE)
    assert a == b
    everything = [c for f in fields for c in f]
    expected = everything[:target] if target else everything
    assert a.cells_counted == len(expected)
    assert [c.count for c in a.classes] == [expected.count(c) for c in CELL_CLASSES]


def test_target_reached_stops_at_exactly_the_target() -> None:
    ledger = SampleLedger("s", target_cells=3)
    ledger.set_cell_count(0, 2)
    ledger.set_cell_count(1, 2)
    ledger.add_results([result(0, 0), result(0, 1), result(1, 0, LYM), result(1, 1, MO)])
    summary = counts.summarize(ledger)
    assert summary.status == SampleStatus.COMPLETE
    assert summary.status_reason == "target of 3 cells reached"
    assert [c.count for c in summary.classes] == [2, 1, 0, 0, 0]


def test_failed_field_before_the_stop_point_makes_the_sample_incomplete() -> None:
    ledger = SampleLedger("s", target_cells=2)
    ledger.set_cell_count(0, 1)
    ledger.fail_field(1, "fov_0001.ome.tif: truncated")
    ledger.set_cell_count(2, 1)
    ledger.fail_field(4, "late failure")
    ledger.add_results([result(0, 0), result(2, 0)])
    summary = counts.summarize(ledger)
    assert summary.status == SampleStatus.INCOMPLETE and summary.cells_counted == 2
    assert summary.status_reason.startswith("1 field(s) failed (field 1: fov_0001.ome.tif")
    assert summary.fields_failed == 2 and summary.fields_done == 2


def test_all_fields_done_with_a_failed_field_is_incomplete() -> None:
    ledger = SampleLedger("s", target_cells=0)
    ledger.set_cell_count(0, 1)
    ledger.fail_field(1, "corrupt")
    ledger.add_results([result(0, 0, BAS)])
    ledger.end(2)
    summary = counts.summarize(ledger)
    assert summary.status == SampleStatus.INCOMPLETE
    assert "field 1: corrupt" in summary.status_reason
    assert "all 2 fields analysed, 1 cells" in summary.status_reason


def test_a_flag_reason_never_reads_as_its_own_limit() -> None:
    assert counts.flag_reason([0.5996, 0.4004], 0.0, 0.6, 0.3) == "low probability 0.599 < 0.60"
    assert counts.flag_reason([0.9], 0.3004, 0.6, 0.3) == "head disagreement 0.301 > 0.30"
    assert counts.flag_reason([0.3], 0.0, 0.6, 0.3) == "low probability 0.30 < 0.60"

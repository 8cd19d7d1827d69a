"""Report review rules: reference-range flags and quality flags over a summary."""

from __future__ import annotations

from leukoscope.config import ReportConfig
from leukoscope.report.flags import (
    RangeFlag,
    Severity,
    Thresholds,
    distance_outside,
    interval_reaches,
    quality_flags,
    range_flag,
)
from leukoscope.results.counts import class_counts
from leukoscope.types import CELL_CLASSES, CellClass, ClassCount, SampleStatus, SampleSummary

NEU, LYM, MO, EOS, BAS = CELL_CLASSES
RANGES = ReportConfig().reference_ranges


def summary(
    counts: dict[CellClass, int],
    flagged: int = 0,
    *,
    failed: int = 0,
    status: SampleStatus = SampleStatus.COMPLETE,
    reason: str = "",
) -> SampleSummary:
    return SampleSummary(
        sample_id="s",
        classes=class_counts(counts),
        cells_counted=sum(counts.values()),
        cells_flagged=flagged,
        fields_done=3,
        fields_total=3,
        fields_failed=failed,
        status=status,
        status_reason=reason,
    )


NORMAL = {NEU: 120, LYM: 60, MO: 12, EOS: 6, BAS: 2}  # 60/30/6/3/1 %


def codes(
    s: SampleSummary,
    disagreement: float = 0.0,
    target_cells: int = 200,
    max_flagged_percent: float = 10.0,
) -> list[str]:
    thresholds = Thresholds(target_cells, max_flagged_percent)
    return [f.code for f in quality_flags(s, RANGES, disagreement, thresholds)]


def mo_row(count: int, total: int) -> ClassCount:
    return {r.cell_class: r for r in class_counts({MO: count, NEU: total - count})}[MO]


def test_range_flag_is_on_the_value_with_the_interval_beside_it() -> None:
    # 0 of 15 monocytes: 0 % is below 2-10 %, though the interval 0-21.8 % spans the range
    assert mo_row(0, 15).percent < RANGES[MO].low_percent
    assert range_flag(mo_row(0, 15), RANGES[MO], 15) == RangeFlag.BELOW
    assert interval_reaches(mo_row(0, 15), RANGES[MO])
    # 1 of 200 (0.5 %): below; its interval 0.01-2.75 % still reaches the range
    assert range_flag(mo_row(1, 200), RANGES[MO], 200) == RangeFlag.BELOW
    assert interval_reaches(mo_row(1, 200), RANGES[MO])
    # 0 of 200: below, and the interval 0-1.83 % ends below 2 % too
    assert range_flag(mo_row(0, 200), RANGES[MO], 200) == RangeFlag.BELOW
    assert not interval_reaches(mo_row(0, 200), RANGES[MO])
    # 25 of 200 (12.5 %) above 2-10 %, its interval 8.3-17.9 % overlapping it
    assert range_flag(mo_row(25, 200), RANGES[MO], 200) == RangeFlag.ABOVE
    assert interval_reaches(mo_row(25, 200), RANGES[MO])
    # MO 15.3 % against 2-10 %: above, whatever its interval does
    row = ClassCount(cell_class=MO, count=23, percent=15.3, ci_low_percent=9.9,
                     ci_high_percent=22.1)  # fmt: skip
    assert range_flag(row, RANGES[MO], 150) == RangeFlag.ABOVE
    # 10 of 200 (5 %) inside 2-10 %: within
    assert range_flag(mo_row(10, 200), RANGES[MO], 200) == RangeFlag.WITHIN
    assert range_flag(mo_row(0, 0), RANGES[MO], 0) == RangeFlag.NONE


def test_range_flag_limits_belong_to_the_range() -> None:
    at_high = ClassCount(
        cell_class=MO, count=25, percent=10.0, ci_low_percent=6.6, ci_high_percent=14.4
    )
    assert range_flag(at_high, RANGES[MO], 250) == RangeFlag.WITHIN
    assert range_flag(at_high.model_copy(update={"percent": 10.01}), RANGES[MO], 250) == (
        RangeFlag.ABOVE
    )
    at_low = at_high.model_copy(update={"percent": 2.0})
    assert range_flag(at_low, RANGES[MO], 250) == RangeFlag.WITHIN
    assert range_flag(at_low.model_copy(update={"percent": 1.99}), RANGES[MO], 250) == (
        RangeFlag.BELOW
    )
    # a class at 0 % with a range starting at 0 % is never below it
    zero_bas = {r.cell_class: r for r in class_counts({NEU: 500})}[BAS]
    assert range_flag(zero_bas, RANGES[BAS], 500) == RangeFlag.WITHIN


def test_range_flag_is_not_applicable_without_cells() -> None:
    for row in class_counts({}):
        assert range_flag(row, RANGES[row.cell_class], 0) == RangeFlag.NONE


def test_normal_sample_at_target_has_no_quality_flags() -> None:
    assert codes(summary(NORMAL, flagged=4)) == []


def test_zero_cells_is_one_alert_not_a_list_of_range_problems() -> None:
    flags = quality_flags(summary({}), RANGES, 0.0, Thresholds(target_cells=200))
    assert [f.code for f in flags] == ["no_cells", "too_few_cells"]
    assert flags[0].severity == Severity.ALERT
    assert "No white cells" in flags[0].message


def test_only_flagged_cells_is_an_alert_and_not_also_many_flagged() -> None:
    found = codes(summary(NORMAL, flagged=200))
    assert found == ["all_flagged"]


def test_many_flagged_above_the_configured_share() -> None:
    assert "many_flagged" in codes(summary(NORMAL, flagged=21))  # 10.5 % > 10 %
    assert "many_flagged" not in codes(summary(NORMAL, flagged=20))  # 10 % is allowed
    assert "many_flagged" not in codes(summary(NORMAL, flagged=21), max_flagged_percent=20.0)


def test_too_few_cells_only_against_a_target() -> None:
    small = {NEU: 30, LYM: 15, MO: 3, EOS: 2}
    assert "too_few_cells" in codes(summary(small))
    assert "too_few_cells" not in codes(summary(small), target_cells=0)  # 0 = all fields


def test_heads_disagreeing_on_average() -> None:
    assert "heads_disagree" in codes(summary(NORMAL), disagreement=0.2)
    assert "heads_disagree" not in codes(summary(NORMAL), disagreement=0.1)


def test_failed_fields_and_incomplete_status() -> None:
    found = codes(summary(NORMAL, failed=2, status=SampleStatus.INCOMPLETE, reason="2 failed"))
    assert found == ["failed_fields", "incomplete"]
    assert codes(summary(NORMAL, status=SampleStatus.RUNNING)) == ["running"]


def test_composition_far_outside_needs_the_whole_ci_far_away() -> None:
    one_class = summary({BAS: 200}, flagged=0)
    far = [
        f for f in quality_flags(one_class, RANGES, 0.0, Thresholds(200)) if f.code == "far_outside"
    ]
    assert {f.message.split()[0] for f in far} == {"NEU", "BAS"}  # LYM: 0 % is 20 - 1.8 < 20 away
    assert all(f.severity == Severity.ALERT for f in far)
    # 30 % monocytes of 10 cells: CI reaches down into the range, so not "far"
    few = summary({NEU: 6, MO: 3, LYM: 1})
    assert "far_outside" not in codes(few, target_cells=0)


def test_distance_outside_is_measured_from_the_ci() -> None:
    rows = {r.cell_class: r for r in class_counts({MO: 50, NEU: 50})}
    mo = rows[MO]
    assert distance_outside(mo, RANGES[MO]) == mo.ci_low_percent - 10.0
    assert distance_outside(rows[NEU], RANGES[NEU]) == 0.0

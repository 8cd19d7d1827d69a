"""Blank, dark and saturated fields: measured once where a field is segmented, failed with their
kind and reason."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from leukoscope.config import Settings
from leukoscope.errors import FieldQualityError, PipelineError
from leukoscope.pipeline import field_quality
from leukoscope.pipeline.field_quality import (
    FrameStats,
    check_field,
    checked,
    failure_reason,
    frame_stats,
    full_scale,
)
from leukoscope.report.flags import Thresholds, image_note, quality_flags
from leukoscope.results import counts
from leukoscope.results.ledger import SampleLedger
from leukoscope.results.quality_kinds import QualityKind, image_problems, reason_kind
from leukoscope.types import (
    MODALITIES,
    CellClass,
    CellKey,
    CellResult,
    FrameSet,
    Modality,
    SampleSummary,
)

FULL_12 = 4095


def field(frames: list[np.ndarray], fov: int = 0, bit_depth: int = 12) -> FrameSet:
    n = len(frames)
    return FrameSet(
        sample_id="s",
        fov=fov,
        modalities=MODALITIES[:n],
        frames=tuple(frames),
        timestamps_s=(0.0,) * n,
        exposures_us=(1000.0,) * n,
        lit=MODALITIES[:n],
        shifts_px=((0.0, 0.0),) * n,
        bit_depth=bit_depth,
    )


def normal_frames(seed: int = 0, shape: tuple[int, int] = (96, 128)) -> list[np.ndarray]:
    """Bright-field around 55 % of full scale and a dim fluorescence frame with two bright spots."""
    rng = np.random.default_rng(seed)
    bright = [rng.normal(0.55 * FULL_12, 120, shape).clip(0, FULL_12) for _ in range(3)]
    fluorescence = rng.normal(40, 6, shape)
    fluorescence[20:30, 20:30] = 900
    fluorescence[60:70, 90:100] = 1200
    return [f.astype(np.uint16) for f in [*bright, fluorescence.clip(0, FULL_12)]]


def test_full_scale_is_the_significant_bits_or_the_type() -> None:
    assert full_scale(np.dtype(np.uint16), 12) == 4095
    assert full_scale(np.dtype(np.uint16), 0) == 65535
    assert full_scale(np.dtype(np.uint8), 8) == 255
    with pytest.raises(PipelineError, match="does not fit"):
        full_scale(np.dtype(np.uint8), 12)
    with pytest.raises(PipelineError, match="integer"):
        full_scale(np.dtype(np.float32), 0)


def test_a_normal_field_passes_and_its_numbers_are_shares_of_full_scale() -> None:
    stats = check_field(field(normal_frames()))
    assert [s.modality for s in stats] == list(MODALITIES)
    assert all(s.saturated == 0.0 for s in stats)
    assert 0.4 < stats[0].low < stats[0].high < 0.7
    assert stats[3].high > 0.2 and stats[3].low < 0.02  # the bright spots, the dark plasma


def test_an_all_black_field_is_blank_and_names_every_frame() -> None:
    black = [np.zeros((96, 128), np.uint16) for _ in MODALITIES]
    with pytest.raises(FieldQualityError) as caught:
        check_field(field(black))
    assert str(caught.value) == (
        "blank: the color1 frame holds no image (0.1-99.9th percentile 0-0 of 4095)"
    )
    assert caught.value.kind == "blank"
    found = field_quality.problem(frame_stats(black[0], Modality.COLOR1, 12))
    assert found is not None and found.kind is QualityKind.BLANK
    assert found.reason.endswith("0.1-99.9th percentile 0-0 of 4095)")


def test_a_dark_bright_field_frame_is_blank_but_a_dark_fluorescence_frame_is_not() -> None:
    frames = normal_frames()
    rng = np.random.default_rng(3)
    frames[1] = rng.normal(60, 8, frames[1].shape).clip(0).astype(np.uint16)  # lamp off: noise
    with pytest.raises(FieldQualityError, match=r"^dark: the color2 frame is dark"):
        check_field(field(frames))
    frames = normal_frames()
    frames[3] = rng.normal(40, 6, frames[3].shape).clip(0).astype(np.uint16)  # no white cells
    assert len(check_field(field(frames))) == 4


def test_a_saturated_fluorescence_frame_fails_above_the_limit_only() -> None:
    frames = normal_frames()
    frames[3][:24, :] = FULL_12  # 3072 of 12,288 pixels: 25 %
    with pytest.raises(FieldQualityError) as caught:
        check_field(field(frames))
    assert str(caught.value) == (
        "saturated_fluorescence: 25.0% of the fluorescence pixels at full scale (4095), "
        "more than 20%"
    )
    frames = normal_frames()
    frames[3][:19, :] = FULL_12  # 19.8 %: left to the nuclei's own check
    check_field(field(frames))
    white = [np.full((96, 128), FULL_12, np.uint16) for _ in MODALITIES]
    with pytest.raises(
        FieldQualityError, match=r"^blank: the color1 frame .*; also saturated_fluorescence$"
    ):
        check_field(field(white))


def test_a_bright_field_background_at_full_scale_is_only_a_note() -> None:
    frames = normal_frames()
    frames[0][:40, :] = FULL_12  # a third of color1 white
    stats = check_field(field(frames))
    quality = field_quality.assess(field(frames), [], stats)
    assert quality.notes == (QualityKind.SATURATED_BACKGROUND,)


def test_values_above_the_declared_bit_depth_count_as_saturated() -> None:
    frames = normal_frames()
    frames[3][:, :30] = 60000  # 16-bit values in a 12-bit field
    with pytest.raises(FieldQualityError, match="fluorescence pixels at full scale"):
        check_field(field(frames))


def test_float_frames_are_not_judged() -> None:
    frames = [f.astype(np.float32) for f in normal_frames()]
    frames[0][:] = 0.0
    assert check_field(field(frames)) == ()


def test_checked_segmenter_refuses_before_segmenting_and_the_reason_is_its_own() -> None:
    calls: list[int] = []

    def segmenter(frameset: FrameSet) -> list:  # type: ignore[type-arg]
        calls.append(frameset.fov)
        return []

    guarded = checked(segmenter)
    cells = guarded(field(normal_frames(), fov=1))
    assert cells == [] and calls == [1]
    focus, notes = field_quality.field_quality_of(cells)
    assert focus is not None and focus > 0.3 and notes == ()  # no nuclei: the whole frame, sharp
    with pytest.raises(FieldQualityError) as caught:
        guarded(field([np.zeros((96, 128), np.uint16) for _ in MODALITIES], fov=2))
    assert calls == [1]
    assert failure_reason(caught.value).startswith("blank:")
    assert failure_reason(ValueError("bad")) == "segmentation failed: ValueError: bad"


def test_frame_stats_are_bounded() -> None:
    with pytest.raises(PipelineError, match="saturated must lie in"):
        FrameStats(Modality.COLOR1, 4095.0, 0.0, 0.5, 1.5)
    with pytest.raises(PipelineError, match="low must lie in"):
        FrameStats(Modality.COLOR1, 4095.0, float("nan"), 0.5, 0.0)
    with pytest.raises(PipelineError, match="full scale"):
        FrameStats(Modality.COLOR1, float("inf"), 0.0, 0.5, 0.0)
    with pytest.raises(PipelineError, match="H x W"):
        frame_stats(np.zeros((0, 4), np.uint16), Modality.COLOR1)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.uint16, st.tuples(st.integers(1, 40), st.integers(1, 40))),
    st.sampled_from([0, 8, 10, 12, 14, 16]),
)
def test_any_frame_gives_bounded_numbers_or_a_clear_error(image: np.ndarray, bits: int) -> None:
    try:
        stats = frame_stats(image, Modality.FLUORESCENCE, bits)
    except PipelineError:
        return
    assert 0 <= stats.low <= stats.high <= 1 and 0 <= stats.saturated <= 1
    found = field_quality.problem(stats)
    assert found is None or found.reason.startswith(found.kind.value + ": ")


def test_only_the_checks_own_reasons_count_as_blank_or_saturated() -> None:
    problems = image_problems(
        {
            0: "blank: the color1 frame holds no image (...)",
            1: "saturated_nuclei: 30.0% of the nucleus pixels ...",
            2: "segmentation failed: ValueError: blank: forged",
            3: "fov_0003.ome.tif: truncated",
            4: "out_of_focus: focus measure 0.080, below 0.11",
            5: "dark: the color2 frame is dark",
        }
    )
    assert list(problems.blank) == [0, 5] and list(problems.saturated) == [1]
    assert list(problems.out_of_focus) == [4]
    assert reason_kind("over_budget: ran past") is None


def _cell(fov: int) -> CellResult:
    return CellResult(CellKey("s", fov, 0), CellClass.NEU, (1.0, 0.0, 0.0, 0.0, 0.0))


def test_summary_counts_blank_and_saturated_fields_and_is_never_complete() -> None:
    ledger = SampleLedger("s", target_cells=0)
    ledger.fail_field(0, "blank: the fluorescence frame holds no image (0-0 of 4095)")
    ledger.set_cell_count(1, 1)
    ledger.add_results([_cell(1)])
    ledger.fail_field(2, "saturated_cells: 50.0% of the nucleus pixels at full scale")
    ledger.end(3)
    summary = counts.summarize(ledger)
    assert (summary.fields_failed, summary.fields_blank, summary.fields_saturated) == (2, 1, 1)
    assert summary.status.value == "incomplete" and summary.cells_counted == 1
    assert summary.status_reason.startswith("2 field(s) failed (field 0: blank: the fluo")
    assert image_note(summary) == ": 1 blank, 1 saturated"
    ranges = Settings().report.reference_ranges
    codes = [f.code for f in quality_flags(summary, ranges, 0.0, Thresholds())]
    assert "blank_fields" in codes and "saturated_fields" in codes
    assert "failed_fields" not in codes  # every failure is one of the two


def test_all_blank_sample_is_incomplete_with_no_cells_and_says_why() -> None:
    ledger = SampleLedger("s", target_cells=200)
    for fov in range(3):
        ledger.fail_field(fov, "blank: the color1 frame holds no image (0-0 of 4095)")
    ledger.end(3)
    summary = counts.summarize(ledger)
    assert summary.status.value == "incomplete" and summary.cells_counted == 0
    assert summary.status_reason.startswith(
        "no white cells in 3 field(s); 3 field(s) failed (field 0: blank:"
    )
    ranges = Settings().report.reference_ranges
    flags = quality_flags(summary, ranges, 0.0, Thresholds(target_cells=200))
    assert [f.code for f in flags][:1] == ["no_cells"] and flags[0].severity.value == "alert"
    assert "blank_fields" in [f.code for f in flags]


def test_a_summary_claiming_more_blank_fields_than_failed_is_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        SampleSummary(
            sample_id="s", classes=[], cells_counted=0, cells_flagged=0, fields_done=0,
            fields_failed=1, fields_blank=1, fields_saturated=1,
        )  # fmt: skip


def test_the_live_line_says_how_many_failed_fields_were_blank() -> None:
    from leukoscope.cli.live import below_target, progress_text

    summary = SampleSummary(
        sample_id="s", classes=[], cells_counted=0, cells_flagged=0, fields_done=1,
        fields_failed=2, fields_blank=2, status="incomplete", status_reason="no white cells",
    )  # fmt: skip
    assert "fields 3 (2 failed: 2 blank)" in progress_text(summary, 200)
    assert "1 field(s) analysed, 2 failed: 2 blank" in str(below_target(summary, 200))

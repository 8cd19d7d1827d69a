"""Where a run stands: ETA, the progress line, the below-target message, the next commands."""

from __future__ import annotations

from pathlib import Path

from leukoscope.cli.live import (
    Invocation,
    below_target,
    duration,
    eta_s,
    next_commands,
    progress_text,
)
from leukoscope.types import SampleStatus, SampleSummary


def summary(
    counted: int,
    *,
    done: int = 5,
    total: int | None = None,
    failed: int = 0,
    elapsed: float = 10.0,
    status: SampleStatus = SampleStatus.RUNNING,
    reason: str = "",
) -> SampleSummary:
    return SampleSummary(
        sample_id="S1",
        classes=[],
        cells_counted=counted,
        cells_flagged=0,
        fields_done=done,
        fields_total=total,
        fields_failed=failed,
        status=status,
        status_reason=reason,
        elapsed_s=elapsed,
    )


def test_eta_follows_the_pace_toward_the_target() -> None:
    assert eta_s(summary(50), 200) == 30.0  # 50 cells in 10 s: 150 more take 30 s
    assert eta_s(summary(250), 200) == 0.0
    assert eta_s(summary(0), 200) is None  # no pace yet
    assert eta_s(summary(50, status=SampleStatus.COMPLETE), 200) is None


def test_eta_follows_the_fields_when_every_field_counts() -> None:
    assert eta_s(summary(40, done=4, total=20), 0) == 40.0  # 4 fields in 10 s: 16 more
    assert eta_s(summary(40, done=4, total=None), 0) is None


def test_progress_text_and_duration() -> None:
    assert progress_text(summary(193, done=12, failed=1), 200) == (
        "cells 193/200 · fields 13 (1 failed) · ETA 0 s"
    )
    assert progress_text(summary(12, done=3, total=7), 0) == (
        "cells 12 (all fields) · fields 3/7 · ETA 13 s"
    )
    done = summary(200, status=SampleStatus.COMPLETE)
    assert progress_text(done, 200).endswith("complete")
    assert duration(None) == "—" and duration(65) == "1 min 05 s" and duration(7260) == "2 h 01 min"


def test_below_target_names_the_shortfall() -> None:
    short = summary(70, done=7, status=SampleStatus.COMPLETE)
    assert below_target(short, 100) == (
        "sample S1 ended below its target: 70 of 100 cells in 7 field(s) analysed"
    )
    assert below_target(summary(100, status=SampleStatus.COMPLETE), 100) is None
    assert below_target(summary(70, status=SampleStatus.COMPLETE), 0) is None  # all fields
    broken = summary(70, failed=2, status=SampleStatus.INCOMPLETE, reason="2 field(s) failed")
    assert below_target(broken, 0) == (
        "sample S1 is incomplete (5 field(s) analysed, 2 failed): 2 field(s) failed"
    )


def test_next_commands_carry_the_config_and_database_they_need() -> None:
    plain = next_commands(["demo"], {"demo": Path("acquisitions/demo")}, Invocation())
    assert plain == [
        "leukoscope report demo",
        "leukoscope review",
        "leukoscope batch acquisitions/demo",
    ]
    how = Invocation(Path("my lab.toml"), Path("r.sqlite"))
    both = next_commands(["a", "b"], {"a": Path("x/a"), "b": Path("x/b")}, how)
    assert both == [
        "leukoscope -c 'my lab.toml' report a --db r.sqlite",
        "leukoscope -c 'my lab.toml' report b --db r.sqlite",
        "leukoscope -c 'my lab.toml' review --db r.sqlite",
        "leukoscope -c 'my lab.toml' batch x/a x/b --db r.sqlite",
    ]
    # after a batch, the next step is the review, not the same batch again
    after_batch = next_commands(["a"], {"a": Path("x/a")}, Invocation(), after="batch")
    assert after_batch == ["leukoscope report a", "leukoscope review"]

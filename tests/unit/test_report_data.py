"""Report data gathered from a results store: numbers equal the store's, edge cases, formats."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from leukoscope.config import Settings
from leukoscope.errors import ParameterError
from leukoscope.pictures.png import encode_png
from leukoscope.report.data import gather_report, open_results, resolve_run
from leukoscope.report.export import CSV_COLUMNS, SCHEMA, render_csv, render_json
from leukoscope.report.html import render_html
from leukoscope.report.render import default_output, render_report
from leukoscope.results.store import ResultStore
from leukoscope.types import CELL_CLASSES, CellClass, CellKey, CellResult, SampleSummary

NEU, LYM, MO, EOS, BAS = CELL_CLASSES


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    with ResultStore(tmp_path / "results.sqlite") as db:
        yield db


def cell(
    sample: str, fov: int, index: int, cls: CellClass, p: float = 0.9, flagged: bool = False
) -> CellResult:
    rest = (1.0 - p) / 4
    probabilities = tuple(p if c == cls else rest for c in CELL_CLASSES)
    return CellResult(
        CellKey(sample, fov, index),
        cls,
        probabilities,
        head_probabilities=(probabilities, probabilities),
        disagreement=0.3 if flagged else 0.01,
        flagged=flagged,
        flag_reason="head disagreement 0.30 > 0.25" if flagged else "",
    )


def record(
    store: ResultStore,
    sample: str,
    fields: list[list[CellResult]],
    *,
    target: int = 0,
    run_id: str | None = None,
) -> tuple[str, SampleSummary]:
    """Store a finished sample as the aggregator would; its summary as the store rebuilds it."""
    run_id = run_id or store.start_run(model_path="", model_version="v-test")
    store.start_sample(run_id, sample, target_cells=target, fields_total=len(fields))
    rng = np.random.default_rng(0)
    for fov, results in enumerate(fields):
        store.add_field(run_id, sample, fov, len(results))
        thumbs = {r.key: encode_png(rng.integers(0, 255, (8, 32), np.uint8)) for r in results}
        store.add_results(run_id, results, thumbs)
    summary = store.summary(run_id, sample)
    store.finish_sample(run_id, summary)
    return run_id, summary


def mixed(sample: str) -> list[list[CellResult]]:
    classes = [NEU] * 9 + [LYM] * 5 + [MO, EOS]
    cells = [
        cell(sample, i // 6, i % 6, c, p=0.5 + 0.02 * i, flagged=i in (3, 10))
        for i, c in enumerate(classes)
    ]
    return [[c for c in cells if c.key.fov == f] for f in range(3)]


# `mixed`: 16 cells, NEU 9, LYM 5, MO 1, EOS 1, BAS 0 of 16 -> 56.25 / 31.25 / 6.25 / 6.25 / 0 %;
# exact binomial 95 % intervals (percent; each checked against the binomial tails in `exact_ci`);
# default reference ranges of docs/report.md; the range flag is the percentage's (EOS 6.25 > 6)
MIXED = [
    ("NEU", 9, 56.25, 29.88, 80.25, 40.0, 75.0, "within"),
    ("LYM", 5, 31.25, 11.02, 58.66, 20.0, 45.0, "within"),
    ("MO", 1, 6.25, 0.16, 30.23, 2.0, 10.0, "within"),
    ("EOS", 1, 6.25, 0.16, 30.23, 1.0, 6.0, "above"),
    ("BAS", 0, 0.0, 0.0, 20.59, 0.0, 2.0, "within"),
]


def exact_ci(count: int, total: int, low_percent: float, high_percent: float) -> None:
    """The interval is Clopper-Pearson's: at its ends the binomial tails are 2.5 % each."""

    def at_least(k: int, p: float) -> float:
        return sum(math.comb(total, i) * p**i * (1 - p) ** (total - i) for i in range(k, total + 1))

    if count > 0:
        assert at_least(count, low_percent / 100) == pytest.approx(0.025, abs=1e-9)
    else:
        assert low_percent == 0.0
    if count < total:
        assert 1 - at_least(count + 1, high_percent / 100) == pytest.approx(0.025, abs=1e-9)
    else:
        assert high_percent == 100.0


def test_numbers_are_the_fixtures_counted_by_hand(store: ResultStore) -> None:
    run_id, summary = record(store, "s1", mixed("s1"))
    data = gather_report(store, "s1")
    assert data.run_id == run_id
    assert data.summary == summary  # the report never counts: it shows the store's summary
    assert (summary.cells_counted, summary.cells_flagged) == (16, 2)  # cells 3 (NEU), 10 (LYM)
    shown = [c.result for cells in data.gallery.values() for c in cells]
    assert Counter(r.cell_class.value for r in shown) == {"NEU": 9, "LYM": 5, "MO": 1, "EOS": 1}
    assert sum(r.flagged for r in shown) == 2
    assert data.flagged_by_class == {NEU: 1, LYM: 1, MO: 0, EOS: 0, BAS: 0}
    document = json.loads(render_json(data))
    assert document["schema"] == SCHEMA
    differential = document["differential"]
    assert [d["cell_class"] for d in differential] == [m[0] for m in MIXED]
    for d, (name, count, percent, low, high, ref_low, ref_high, flag) in zip(
        differential, MIXED, strict=True
    ):
        assert (d["count"], d["percent"]) == (count, percent), name
        assert (d["ci_low_percent"], d["ci_high_percent"]) == pytest.approx((low, high), abs=0.01)
        exact_ci(count, 16, d["ci_low_percent"], d["ci_high_percent"])
        assert (d["ref_low_percent"], d["ref_high_percent"]) == (ref_low, ref_high), name
        assert d["range_flag"] == flag, name
    rows = list(csv.DictReader(io.StringIO(render_csv(data))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [float(r["percent"]) for r in rows] == [m[2] for m in MIXED]
    assert [float(r["ci_high_percent"]) for r in rows] == [
        d["ci_high_percent"] for d in differential
    ]  # full precision in both formats
    assert {r["quality_flags"] for r in rows} == {"many_flagged"}
    page = render_html(data)
    assert 'id="review">check flags</div>' in page  # a warning only: 2 of 16 cells flagged
    assert page.count('<figure class="cell') == 16
    assert page.count("data:image/png") == 32  # per cell: bright-field composite, fluorescence


def test_gallery_holds_only_counted_cells_flagged_first_then_by_confidence(
    store: ResultStore,
) -> None:
    _, summary = record(store, "s1", mixed("s1"), target=10)
    assert summary.cells_counted == 10
    data = gather_report(store, "s1")
    neu = [c.result for c in data.gallery[NEU]]
    assert sum(len(v) for v in data.gallery.values()) == 10
    assert neu[0].flagged and not any(r.flagged for r in neu[1:])
    confidences = [max(r.probabilities) for r in neu[1:]]
    assert confidences == sorted(confidences, reverse=True)
    for shown in data.gallery[NEU]:  # no saved acquisition here: the stored 8 px tiles, said so
        pictures = shown.pictures
        assert pictures is not None and pictures.crop == "stored" and pictures.side_px == 8
        assert pictures.composite is not None and pictures.composite.startswith(b"\x89PNG")
        assert pictures.fluorescence is not None and pictures.fluorescence.startswith(b"\x89PNG")
    assert gather_report(store, "s1", with_thumbnails=False).gallery[NEU][0].pictures is None
    limited = gather_report(store, "s1", gallery_limit=2)
    assert len(limited.gallery[NEU]) == 2 and limited.lines == data.lines


def test_zero_cells_renders_a_clear_message(store: ResultStore) -> None:
    record(store, "empty", [[], []], target=200)
    data = gather_report(store, "empty")
    assert data.summary.cells_counted == 0
    assert [f.code for f in data.quality] == ["no_cells", "too_few_cells", "incomplete"]
    page = render_html(data)
    assert 'id="no-cells-message"' in page and "No white cells were counted" in page
    assert "<svg" not in page  # no chart of nothing
    document = json.loads(render_json(data))
    assert document["sample"]["cells_counted"] == 0
    assert {d["range_flag"] for d in document["differential"]} == {"n/a"}


def test_only_flagged_cells_render_with_a_clear_message(store: ResultStore) -> None:
    cells = [cell("f", 0, i, BAS, p=0.3, flagged=True) for i in range(4)]
    record(store, "f", [cells])
    data = gather_report(store, "f")
    assert data.quality[0].code == "all_flagged"
    page = render_html(data)
    assert "All 4 cells were flagged for review" in page
    assert page.count('class="cell flagged"') == 4
    assert 'id="review">review required</div>' in page
    assert "<svg" in page


def test_html_is_self_contained_and_escapes_the_sample_id(store: ResultStore) -> None:
    sample = '<script>alert("x")</script>&'
    record(store, sample, [[cell(sample, 0, 0, NEU)]])
    page = render_html(gather_report(store, sample))
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert not re.search(r"(src|href)\s*=\s*[\"'](?!data:|#)", page)  # nothing to fetch
    assert not re.search(r"url\((?!#)", page) and "@import" not in page
    assert "Content-Security-Policy" in page
    assert page.count("data:image/png;base64,") == 2
    assert "stored 8 px crop: the saved acquisition was not found" in page


def test_latest_run_holding_the_sample_is_the_default(store: ResultStore) -> None:
    first, _ = record(store, "a", [[cell("a", 0, 0, NEU)]])
    second, _ = record(store, "a", [[cell("a", 0, 0, LYM)]])
    record(store, "b", [[cell("b", 0, 0, MO)]])  # a later run without "a"
    assert resolve_run(store, "a") == second
    assert resolve_run(store, "a", first[:6]) == first
    assert gather_report(store, "a", first).lines[0].count.count == 1  # NEU in the first run


def test_unknown_sample_or_run_is_one_clear_line(store: ResultStore, tmp_path: Path) -> None:
    run_id, _ = record(store, "a", [[cell("a", 0, 0, NEU)]])
    with pytest.raises(ParameterError, match=r"no sample 'zz' in .*\(samples: a\)"):
        resolve_run(store, "zz")
    with pytest.raises(ParameterError, match="no run 'nope'"):
        resolve_run(store, "a", "nope")
    other = store.start_run()
    with pytest.raises(ParameterError, match=f"sample 'a' is not in run {other}"):
        resolve_run(store, "a", other)
    with pytest.raises(ParameterError, match="not found"):
        open_results(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
    assert run_id


def test_reference_ranges_come_from_the_settings(store: ResultStore) -> None:
    record(store, "a", [[cell("a", 0, i, NEU) for i in range(3)]])
    lab = Settings.model_validate(
        {"report": {"reference_ranges": {"NEU": {"low_percent": 0, "high_percent": 100}}}}
    )
    data = gather_report(store, "a", settings=lab)
    assert data.lines[0].reference.high_percent == 100.0
    assert data.lines[0].flag.value == "within"
    assert data.lines[1].reference.high_percent == 45.0  # defaults kept for the others


def test_formats_and_default_output_name(store: ResultStore) -> None:
    run_id, _ = record(store, "a/b c", [[cell("a/b c", 0, 0, NEU)]])
    data = gather_report(store, "a/b c", with_thumbnails=False)
    assert render_report(data, "CSV").startswith("schema_version,")
    with pytest.raises(ParameterError, match="--format"):
        render_report(data, "pdf")
    assert default_output("a/b c", run_id, "html") == Path(f"report-a_b_c-{run_id[:8]}.html")
    assert default_output("../..", run_id, "json").name == f"report-sample-{run_id[:8]}.json"


def test_an_ambiguous_or_unknown_run_lists_the_candidates(store: ResultStore) -> None:
    day = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
    for run_id, hours in (("ab11", 1), ("ab22", 2), ("cd33", 3)):
        store.start_run(run_id, started_s=day + 3600 * hours)
        record(store, "a", [[cell("a", 0, 0, NEU)]], run_id=run_id)
    store.start_run("ef44", started_s=day)
    record(store, "b", [[cell("b", 0, 0, NEU)]], run_id="ef44")
    with pytest.raises(ParameterError) as ambiguous:
        resolve_run(store, "a", "ab")
    message = str(ambiguous.value)
    assert "\n" not in message
    assert message.startswith("2 runs match 'ab' in ")
    assert message.endswith(
        "candidates, latest first: ab22 (2026-09-21 16:13 UTC), ab11 (2026-09-21 15:13 UTC)"
    )
    with pytest.raises(ParameterError) as unknown:
        resolve_run(store, "a", "zz")
    message = str(unknown.value)
    assert message.startswith("no run 'zz' in ")
    assert "runs with sample 'a', latest first: cd33 " in message
    assert "ef44" not in message  # a run without the sample is no candidate
    with pytest.raises(ParameterError, match="no run holds sample 'c'"):
        resolve_run(store, "c", "zz")

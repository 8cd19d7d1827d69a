"""A smudge cell leaves the 5-part differential and is counted beside it (docs/review.md, "What
counts"; docs/report.md): the percentages are over the cells still counted, the smudges are a number
of their own in the report and in the release, never an artefact, and they do not make the sample
incomplete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leukoscope.report.data import gather_report
from leukoscope.report.export import render_json
from leukoscope.report.html import render_html
from leukoscope.results.review_store import ReviewStore
from leukoscope.results.store import ResultStore

from .release_helpers import give_evidence
from .review_helpers import finished_sample

SAMPLE = "S-1"


@pytest.fixture
def smudged(tmp_path: Path) -> tuple[Path, str]:
    """12 cells, target 10: the counted cells 0-9 cycle NEU LYM MO EOS BAS (2 of each; cells 0, 3,
    6 and 9 flagged). Cell 0 (NEU, field 0) and cell 6 (LYM, field 1, index 0) become smudges."""
    database = tmp_path / "results.sqlite"
    run, _ = finished_sample(database, SAMPLE, cells=12, target=10)
    give_evidence(database, run, SAMPLE)
    with ResultStore(database) as results, ReviewStore(database) as reviews:
        reviews.open_review(results, run, SAMPLE)
        for fov, index in ((0, 0), (1, 0)):
            reviews.reclassify(run, SAMPLE, fov, index, "SMUDGE", reviewer="Ann Lee", version=0)
    return database, run


def test_smudges_leave_the_percentages_and_are_reported_beside_them(
    smudged: tuple[Path, str],
) -> None:
    database, run = smudged
    with ResultStore(database, read_only=True) as results:
        document = json.loads(render_json(gather_report(results, SAMPLE, run)))
        page = render_html(gather_report(results, SAMPLE, run, with_thumbnails=False))
    # 10 counted - 2 smudges = 8: NEU 1, LYM 1, MO 2, EOS 2, BAS 2 -> 12.5 / 12.5 / 25 / 25 / 25 %
    assert document["sample"]["cells_counted"] == 8
    assert {d["cell_class"]: (d["count"], d["percent"]) for d in document["differential"]} == {
        "NEU": (1, 12.5), "LYM": (1, 12.5), "MO": (2, 25.0), "EOS": (2, 25.0), "BAS": (2, 25.0),
    }  # fmt: skip
    assert document["sample"]["cells_flagged"] == 2  # flagged 0, 3, 6, 9; 0 and 6 left
    review = document["review"]
    assert (review["state"], review["smudges"], review["artefacts"]) == ("in review", 2, 0)
    assert review["original_cells_counted"] == 10
    assert {
        d["cell_class"]: d["percent"] for d in review["original_differential"]
    } == dict.fromkeys(("NEU", "LYM", "MO", "EOS", "BAS"), 20.0)  # 2 of 10 each, before the review
    assert len(document["cells"]) == 8  # the gallery shows no smudge cell
    assert "2 smudge(s) left the differential" in page


def test_a_release_keeps_the_smudges_apart_and_the_sample_final(
    smudged: tuple[Path, str],
) -> None:
    database, run = smudged
    with ReviewStore(database) as reviews:
        state = reviews.release(run, SAMPLE, reviewer="Ann Lee", version=2)
        assert state.released and state.release_kind == "final"  # the smudges do not count short
        (release,) = reviews.releases(run, SAMPLE)
    differential = release.differential
    assert differential["counts"] == {"NEU": 1, "LYM": 1, "MO": 2, "EOS": 2, "BAS": 2}
    assert (differential["counted"], differential["smudges"], differential["artefacts"]) == (
        8,
        2,
        0,
    )
    assert differential["flagged"] == 2

"""The open-set score: fitted threshold, stored with the model, unidentified cells in no class."""

from __future__ import annotations

import numpy as np

from leukoscope.classifier.checkpoint import ModelMeta
from leukoscope.classifier.open_set import fit_open_set
from leukoscope.results.counts import result_from_heads, tally_open
from leukoscope.types import MODALITIES, CellClass, CellKey


def _clusters(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 5, n)
    centres = np.eye(5, 16) * 6.0
    return centres[labels] + rng.normal(0, 1, (n, 16)), labels


def test_threshold_flags_the_target_share_and_catches_far_cells() -> None:
    rng = np.random.default_rng(0)
    x, y = _clusters(rng, 2000)
    fit = fit_open_set(x, y, classes=5, target_flag_rate=0.05, dims=16)
    assert abs(fit.flag_rate - 0.05) < 0.01
    test, _ = _clusters(rng, 2000)
    assert 0.03 < np.mean(fit.scores(test) > fit.threshold) < 0.07
    far = rng.normal(0, 1, (200, 16)) + 20.0
    assert np.mean(fit.scores(far) > fit.threshold) == 1.0
    reasons = fit.reasons(fit.scores(far[:2]))
    assert all(r.startswith("unidentified: open-set score") for r in reasons)


def test_meta_round_trips_and_old_meta_has_none() -> None:
    rng = np.random.default_rng(1)
    x, y = _clusters(rng, 200)
    fit = fit_open_set(x, y, classes=5, dims=8)
    meta = ModelMeta.default("hs_mm_mimo", MODALITIES, 1, open_set=fit)
    again = ModelMeta.model_validate_json(meta.model_dump_json())
    assert again.open_set is not None and again.open_set.threshold == fit.threshold
    assert ModelMeta.default("hs_mm_mimo", MODALITIES, 1).open_set is None


def test_unidentified_cells_are_flagged_and_in_no_class() -> None:
    heads = [[0.9, 0.05, 0.03, 0.01, 0.01]] * 3
    normal = result_from_heads(CellKey("s", 0, 0), heads, min_probability=0.5, max_disagreement=0.5)
    odd = result_from_heads(
        CellKey("s", 0, 1),
        heads,
        min_probability=0.5,
        max_disagreement=0.5,
        unidentified="unidentified: open-set score 300 > 160",
    )
    assert odd.flagged and odd.unidentified and not normal.unidentified
    counts, flagged, unidentified = tally_open([normal, odd])
    assert counts[CellClass.NEU] == 1 and flagged == 1 and unidentified == 1

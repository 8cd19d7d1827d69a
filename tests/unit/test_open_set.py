"""The open-set score: fitted threshold, stored with the model, unidentified cells in no class."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from leukoscope.classifier.checkpoint import ModelMeta
from leukoscope.classifier.open_set import OpenSet, fit_open_set
from leukoscope.classifier.open_set_image import CellIntensities
from leukoscope.errors import ParameterError
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


def _cells(rng: np.random.Generator, labels: np.ndarray, radius: float = 4.0) -> np.ndarray:
    """Normalised crops (B, 2, 1, 16, 16): a bright disc whose brightness follows the class."""
    yy, xx = np.mgrid[:16, :16] - 7.5
    disc = (np.hypot(yy, xx) < radius).astype(np.float64)
    level = 1.0 + 0.3 * np.asarray(labels, dtype=np.float64)
    cells = level[:, None, None, None, None] * disc + rng.normal(
        0, 0.1, (len(labels), 2, 1, 16, 16)
    )
    return cells.astype(np.float32)


def test_the_intensity_score_flags_cells_the_features_miss() -> None:
    rng = np.random.default_rng(2)
    x, y = _clusters(rng, 1000)
    cells = _cells(rng, y)
    intensities = CellIntensities(radii=[0.2, 0.4], quantiles=[0.1, 0.3, 0.5, 0.7, 0.9])
    fit = fit_open_set(
        x, y, classes=5, dims=16, intensities=intensities, measures=intensities.measures(cells)
    )
    assert fit.score == "mahalanobis+intensity" and fit.needs_cells
    assert abs(fit.flag_rate - 0.05) < 0.01
    test_x, test_y = _clusters(rng, 1000)
    assert 0.02 < np.mean(fit.scores(test_x, _cells(rng, test_y)) > fit.threshold) < 0.08
    # ordinary features, but a small dense nucleus: only the intensities tell
    odd_x, _ = _clusters(rng, 200)
    odd_cells = _cells(rng, np.full(200, 8), radius=2.0)
    assert np.mean(fit.scores(odd_x, odd_cells) > fit.threshold) > 0.95
    assert np.mean(fit.feature_distances(odd_x) > np.quantile(fit.feature_distances(x), 0.95)) < 0.1
    with pytest.raises(ParameterError, match="crops"):
        fit.scores(odd_x)


def test_the_intensity_score_round_trips_and_bad_ones_are_refused() -> None:
    rng = np.random.default_rng(3)
    x, y = _clusters(rng, 300)
    cells = _cells(rng, y)
    intensities = CellIntensities()
    fit = fit_open_set(
        x, y, classes=5, dims=8, intensities=intensities, measures=intensities.measures(cells)
    )
    meta = ModelMeta.default("hs_mm_mimo", MODALITIES, 1, open_set=fit)
    again = ModelMeta.model_validate_json(meta.model_dump_json()).open_set
    assert again is not None and again == fit
    np.testing.assert_allclose(again.scores(x[:20], cells[:20]), fit.scores(x[:20], cells[:20]))
    record = fit.model_dump()
    with pytest.raises(ValidationError):
        OpenSet.model_validate({**record, "intensity_parts": record["intensity_parts"][:1]})
    with pytest.raises(ValidationError):
        OpenSet.model_validate({**record, "score": "mahalanobis"})
    with pytest.raises(ValidationError):
        CellIntensities(radii=[0.1] * 5)
    with pytest.raises(ValidationError):
        CellIntensities(quantiles=[0.9, 0.1])
    with pytest.raises(ValidationError):
        OpenSet.model_validate({**record, "projection": [row[:3] for row in record["projection"]]})

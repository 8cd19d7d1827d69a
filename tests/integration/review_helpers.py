"""A finished sample written straight into a real results database, for the review tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leukoscope.pipeline.store import ResultStore, png_thumbnail
from leukoscope.types import CELL_CLASSES, CellKey, CellResult

TILE = 24


def cell_thumbnail(seed: int) -> bytes:
    """Four 24 px tiles side by side (color1, color2, color3, fluorescence): a dark disc on a
    bright background in the bright-field tiles, a bright disc on black in the fluorescence."""
    yy, xx = np.mgrid[:TILE, :TILE]
    disc = (yy - TILE / 2) ** 2 + (xx - TILE / 2) ** 2 < (4 + seed % 5) ** 2
    tiles = [np.where(disc, 60 + 10 * i, 200 - 5 * i) for i in range(3)]
    tiles.append(np.where(disc, 180, 10))
    return png_thumbnail(np.concatenate(tiles, axis=1).astype(np.uint8))


def finished_sample(
    database: Path, sample_id: str = "S-1", cells: int = 12, target: int = 10
) -> tuple[str, list[CellResult]]:
    """A complete sample of `cells` cells over two fields (target `target`): classes cycle
    NEU, LYM, MO, EOS, BAS; every third cell is flagged. Returns the run id and the results."""
    per_field = (cells + 1) // 2
    results = []
    for i in range(cells):
        cls = i % len(CELL_CLASSES)
        probs = [0.1] * len(CELL_CLASSES)
        probs[cls] = 0.6 if i % 3 == 0 else 0.9 - 0.01 * i
        results.append(
            CellResult(
                key=CellKey(sample_id, i // per_field, i % per_field),
                cell_class=CELL_CLASSES[cls],
                probabilities=tuple(probs),
                head_probabilities=(tuple(probs),),
                flagged=i % 3 == 0,
                flag_reason="low probability 0.60 < 0.65" if i % 3 == 0 else "",
                bbox=(10 * i, 5, 20, 20),
            )
        )
    with ResultStore(database) as store:
        run_id = store.start_run(model_version="review-test")
        store.start_sample(run_id, sample_id, target_cells=target, fields_total=2)
        store.add_field(run_id, sample_id, 0, per_field)
        store.add_field(run_id, sample_id, 1, cells - per_field)
        store.add_results(run_id, results, {r.key: cell_thumbnail(i) for i, r in enumerate(results)})
        store.finish_sample(run_id, store.summary(run_id, sample_id))
    return run_id, results

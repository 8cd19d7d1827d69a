"""Review pictures prepared ahead (results/prepared_pictures.py): every counted cell's native crop stored
once in the results database, served as the page's pictures (the same as the re-cut ones), also
when the saved acquisition is gone; pending samples found and prepared in the background."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from leukoscope.classifier.infer import Predictor
from leukoscope.config import PipelineConfig
from leukoscope.pipeline.runner import run_embedded
from leukoscope.pipeline.sources import saved_acquisition
from leukoscope.results.prepared_pictures import PreparedPictures, pending, prepare_sample
from leukoscope.results.store import ResultStore

from .pipeline_helpers import small_acquisition, untrained_checkpoint
from .review_helpers import LiveApp

SAMPLE = "prep-1"


def _analysed(root: Path) -> tuple[Path, str, Path]:
    model = untrained_checkpoint(root / "model.pt")
    predictor = Predictor.load(model, backend="torch", threads=1)
    folder = small_acquisition(root / "acq", SAMPLE, 3, seed=4)
    database = root / "results.sqlite"
    with ResultStore(database) as store:
        run_id = store.start_run(model_path=str(model))
        run_embedded(
            PipelineConfig(target_cells=0), [saved_acquisition(folder)],
            classify=lambda crops: predictor.predict(crops).head_probabilities,
            modalities=predictor.modalities, input_size=predictor.input_size,
            store=store, run_id=run_id, timeout_s=60,
        )  # fmt: skip
        store.finish_run(run_id)
    return database, run_id, folder


def _picture(live: LiveApp, run: str, fov: int, index: int) -> tuple[str, np.ndarray]:
    answer = live.get(f"/img/{run}/{SAMPLE}/{fov}/{index}/composite.png")
    assert answer.status_code == 200
    image = cv2.imdecode(np.frombuffer(answer.body, np.uint8), cv2.IMREAD_COLOR)
    return answer.headers["x-leukoscope-crop"], image.astype(int)


def test_prepared_pictures_are_served_and_outlive_the_acquisition(tmp_path: Path) -> None:
    database, run, folder = _analysed(tmp_path)
    with ResultStore(database, read_only=True) as results:
        counted = results.counted_results(run, SAMPLE)
    assert counted
    cells = [(r.key.fov, r.key.cell_index) for r in counted]
    with LiveApp(database, user="Ann Lee") as live:  # re-cut from the fields
        recut = {c: _picture(live, run, *c) for c in cells}
    assert pending(database, 24.0) == [(run, SAMPLE)]
    assert prepare_sample(database, run, SAMPLE, 24.0) == len(counted)
    assert prepare_sample(database, run, SAMPLE, 24.0) == 0  # once
    assert pending(database, 24.0) == []
    shutil.rmtree(folder)  # the acquisition is gone: the prepared pictures remain
    with LiveApp(database, user="Ann Lee") as live:
        for cell, (crop, image) in recut.items():
            kind, served = _picture(live, run, *cell)
            assert crop == kind == "native" and served.shape == image.shape == (96, 96, 3)
            assert np.abs(served - image).max() <= 3  # 8-bit strips: rounding only


def test_pending_samples_are_prepared_in_the_background(tmp_path: Path) -> None:
    database, run, _ = _analysed(tmp_path)
    pictures = PreparedPictures(database, 24.0)
    try:
        pictures.start()
        deadline = time.monotonic() + 60
        while pending(database, 24.0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pending(database, 24.0) == []
        with ResultStore(database, read_only=True) as results:
            key = results.counted_results(run, SAMPLE)[0].key
        tiles = pictures.tiles(run, SAMPLE, key.fov, key.cell_index)
        assert tiles is not None and len(tiles) == 4
        assert all(t.shape == (96, 96) for t in tiles.values())
    finally:
        pictures.close()

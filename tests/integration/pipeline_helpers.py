"""Helpers for pipeline tests: a small simulated acquisition and an untrained model."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from leukoscope.classifier.checkpoint import ModelMeta, save_checkpoint
from leukoscope.classifier.models import build_model
from leukoscope.instrument.simulator.acquisition import GROUND_TRUTH_FILE, generate_acquisition
from leukoscope.types import MODALITIES, ClassCount, SampleStatus

SMALL_FRAME = (512, 512)


def small_acquisition(out: Path, sample_id: str, fields: int, seed: int = 1) -> Path:
    """A few small simulated fields (about 4 white cells each) saved to `out`."""
    generate_acquisition(
        out, sample_id, fields, seed=seed, cells_per_field=4.0, frame_shape=SMALL_FRAME
    )
    return out


def true_cells(folder: Path) -> list[dict[str, object]]:
    """The simulator's ground-truth white cells of a saved acquisition."""
    cells: list[dict[str, object]] = json.loads((folder / GROUND_TRUTH_FILE).read_text())["cells"]
    return cells


def untrained_checkpoint(path: Path, input_size: int = 32, seed: int = 0) -> Path:
    """An hs_mm_mimo checkpoint with random weights (mono, four modalities)."""
    torch.manual_seed(seed)
    model = build_model("hs_mm_mimo", MODALITIES, in_chans=1, width=0.5)
    meta = ModelMeta.default(
        "hs_mm_mimo", MODALITIES, 1, input_size=input_size, options={"width": 0.5}
    )
    save_checkpoint(path, model, meta)
    return path


def free_base_port(count: int = 5) -> int:
    """A base port with `count` consecutive free loopback ports (for one pipeline's endpoints)."""
    import random
    import socket

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range found")


def embedded_classes(model: Path, acquisition: Path, database: Path) -> list[ClassCount]:
    """Per-class counts of an uninterrupted embedded run over every field (the reference)."""
    from leukoscope.classifier.infer import Predictor
    from leukoscope.config import PipelineConfig
    from leukoscope.pipeline.runner import run_embedded
    from leukoscope.pipeline.sources import saved_acquisition
    from leukoscope.pipeline.store import ResultStore

    predictor = Predictor.load(model, backend="torch", threads=1)
    job = saved_acquisition(acquisition)
    with ResultStore(database) as store:
        summaries = run_embedded(
            PipelineConfig(target_cells=0),
            [job],
            classify=lambda crops: predictor.predict(crops).head_probabilities,
            modalities=predictor.modalities,
            input_size=predictor.input_size,
            store=store,
            run_id=store.start_run(),
            timeout_s=120,
        )
    summary = summaries[job.sample_id]
    assert summary.status == SampleStatus.COMPLETE and summary.cells_counted > 10
    return summary.classes

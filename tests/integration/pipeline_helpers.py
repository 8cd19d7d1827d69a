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


_RESERVED: list[object] = []  # lock files held for as long as this process lives
PORT_FLOOR = 20000  # far above the production ports (5550-5554, live 5554)
PORT_SLOT = 8  # ranges start on multiples of 8: ranges of up to 8 ports never overlap


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (never handed to a port-0 bind below it)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port(count: int = 5) -> int:
    """A base port of `count` consecutive loopback ports, reserved for this test process.

    Not probed and released to chance: the range lies below the kernel's ephemeral range (no port-0
    bind and no outgoing connection is ever given one of its ports), far from the production ports,
    and it is locked (an exclusive `flock` on a file per range in the temporary folder) for as long as
    this process lives, so a second suite on the same machine never picks it and this one never
    hands it out twice. Each port is bound once to check that no other program holds it.
    """
    import fcntl
    import random
    import socket
    import tempfile

    if not 1 <= count <= PORT_SLOT:
        raise ValueError(f"at most {PORT_SLOT} consecutive ports, asked for {count}")
    locks = Path(tempfile.gettempdir()) / "leukoscope-test-ports"
    locks.mkdir(exist_ok=True)
    bases = list(range(PORT_FLOOR, _ephemeral_low() - PORT_SLOT, PORT_SLOT))
    random.shuffle(bases)
    for base in bases:
        handle = (locks / f"{base}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            handle.close()  # held by another program: leave the range
            continue
        _RESERVED.append(handle)
        return base
    raise RuntimeError("no free port range below the ephemeral range")


def embedded_classes(model: Path, acquisition: Path, database: Path) -> list[ClassCount]:
    """Per-class counts of an uninterrupted embedded run over every field (the reference)."""
    from leukoscope.classifier.infer import Predictor
    from leukoscope.config import PipelineConfig
    from leukoscope.pipeline.runner import run_embedded
    from leukoscope.pipeline.sources import saved_acquisition
    from leukoscope.results.store import ResultStore

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

"""`evaluate` holds a bounded number of cells at a time: a checkpoint at the largest input size
(1024 px) runs under a 1.5 GiB address-space limit; a device it cannot use is one line."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from leukoscope.classifier.evaluate import cells_per_step
from leukoscope.types import CELL_CLASSES, MODALITIES

from ..cli_helpers import clean_environ, run_cli
from ..integration.pipeline_helpers import untrained_checkpoint

LIMIT = int(1.5 * 2**30)


def tiny_dataset(root: Path, per_class: int = 1) -> Path:
    for c, cell_class in enumerate(CELL_CLASSES):
        for modality in MODALITIES:
            folder = root / modality.value / cell_class.value
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                image = np.full((24, 24), 40 + 10 * c, np.uint8)
                cv2.imwrite(str(folder / f"c{c}_{i}.png"), image)
    return root


def test_steps_follow_the_memory_budget() -> None:
    assert cells_per_step(4, 1, 1024) == 1
    assert cells_per_step(4, 1, 64) == 256
    assert 1 < cells_per_step(4, 3, 224) < 256


@pytest.mark.timeout(180)
def test_evaluate_at_1024_px_runs_under_a_memory_limit(tmp_path: Path) -> None:
    data = tiny_dataset(tmp_path / "data", per_class=2)  # 10 cells: about 3 GB all at once
    model = untrained_checkpoint(tmp_path / "model.pt", input_size=1024)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    environ = clean_environ()
    environ["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "leukoscope", "evaluate", str(model), str(data), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=170,
        env=environ,
        preexec_fn=limit,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "accuracy" in done.stdout


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cuda:99"])
def test_an_unusable_device_is_one_line_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    device: str,
) -> None:
    missing = tmp_path / "nothing.pt"  # never opened: the device is checked first
    assert run_cli(monkeypatch, "evaluate", missing, tmp_path, "--device", device) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "--device" in err or "CUDA" in err

"""CPU time of the wire codec per message: encode and decode of a frame set, a field's cell batch
and a batch of classified cells, median of repeated runs (process CPU time, so other load on the
machine matters less). With `--against REV` the codec of git revision REV (a revision whose
codec is the single module `pipeline/wire.py`) is timed in the same run, and the ratio printed.

    .venv/bin/python benchmarks/wire_codec.py --against ca24d00~1
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from leukoscope.pipeline import wire
from leukoscope.types import CELL_CLASSES, MODALITIES, CellCrop, CellKey, CellResult, FrameSet

ROOT = Path(__file__).resolve().parents[1]


def old_codec(revision: str, folder: Path) -> ModuleType:
    """`pipeline/wire.py` of git revision `revision`, imported as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/leukoscope/pipeline/wire.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = folder / "wire_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("wire_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["wire_then"] = module
    spec.loader.exec_module(module)
    return module


def messages(codec: Any) -> dict[str, Any]:
    """One message of each kind with arrays, as the pipeline sends them (2048 px, 40 and 64 cells)."""
    k = len(CELL_CLASSES)
    frames = tuple(np.zeros((2048, 2048), np.uint16) for _ in MODALITIES)
    frameset = FrameSet(
        "S1", 3, MODALITIES, frames, (0.0,) * 4, (100.0,) * 4, MODALITIES, ((0.0, 0.0),) * 4
    )
    cells = tuple(
        CellCrop(CellKey("S1", 3, i), (1, 2, 3, 4), np.zeros((4, 64, 64), np.uint8), 3.0, 2.0)
        for i in range(40)
    )
    results = tuple(
        CellResult(
            CellKey("S1", 3, i),
            CELL_CLASSES[i % k],
            (1.0 / k,) * k,
            ((1.0 / k,) * k,) * 3,
            bbox=(1, 2, 3, 4),
        )
        for i in range(64)
    )
    return {
        "frameset (4 x 2048^2)": codec.FrameSetMessage(frameset),
        "cells (40 crops)": codec.CellBatch("S1", 3, 40, cells),
        "result (64 cells)": codec.ResultBatch(results=results),
    }


def cpu_us(action: Callable[[], object], repeats: int) -> float:
    """Median process CPU time of `action`, microseconds."""
    times = []
    for _ in range(repeats):
        began = time.process_time()
        action()
        times.append(time.process_time() - began)
    return statistics.median(times) * 1e6


def timings(codec: Any, repeats: int) -> dict[str, tuple[float, float]]:
    out = {}
    for name, message in messages(codec).items():
        frames = [bytes(f) for f in codec.encode(message)]
        encode = cpu_us(lambda m=message: codec.encode(m), repeats)
        decode = cpu_us(lambda f=frames: codec.decode(f), repeats)
        out[name] = (encode, decode)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--against", default="", help="git revision of the codec to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        then = timings(old_codec(args.against, Path(temp)), args.repeats) if args.against else {}
        now = timings(wire, args.repeats)
    print(
        "| message | encode µs | decode µs |"
        + (" then: encode / decode µs | ratio now/then |" if then else "")
    )
    print("| --- | --- | --- |" + (" --- | --- |" if then else ""))
    for name, (encode, decode) in now.items():
        row = f"| {name} | {encode:.0f} | {decode:.0f} |"
        if then:
            a, b = then[name]
            row += f" {a:.0f} / {b:.0f} | {(encode + decode) / (a + b):.2f} |"
        print(row)


if __name__ == "__main__":
    main()

"""A simulated acquisition's ground truth as the labels file `validate` and `dataset build` read:
one row per whole white cell (cells cut by the frame border are left out, as the pipeline drops
them), at its true centre in the field's registered (color1) pixels, with its true class."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from leukoscope.errors import StorageError
from leukoscope.instrument.simulator.acquisition import GROUND_TRUTH_FILE

HEADER = ("sample", "fov", "x_px", "y_px", "class", "annotator")
ANNOTATOR = "simulator ground truth"


def truth_rows(folder: Path) -> list[tuple[str, int, float, float, str, str]]:
    """The labels of one simulated acquisition folder; StorageError when it has no ground truth."""
    path = Path(folder) / GROUND_TRUTH_FILE
    try:
        truth: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StorageError(
            f"{folder}: no {GROUND_TRUTH_FILE}: not a simulated acquisition"
        ) from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"{path}: unreadable ground truth ({exc})") from None
    sample = str(truth.get("sample_id", Path(folder).name))
    rows = []
    for cell in truth.get("cells", []):
        if cell.get("cut_by_border"):
            continue
        y, x = cell["centre_yx"]
        rows.append((sample, int(cell["field"]), round(float(x), 2), round(float(y), 2),
                     str(cell["class"]), ANNOTATOR))  # fmt: skip
    return rows


def labels_csv(folders: list[Path]) -> str:
    """The labels file of every folder, in folder, field and cell order."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    for folder in folders:
        writer.writerows(truth_rows(folder))
    return text.getvalue()

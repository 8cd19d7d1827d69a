"""The validation record: a verdict bound to the model file and the rig set-up it was earned on.

`validate` writes it into `validation.json` (key `record`) and appends it to the lab's results
database (`results/validations.py`, table `model_validations`).
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from leukoscope.classifier.checkpoint import file_digest
from leukoscope.config import ValidationConfig
from leukoscope.errors import ParameterError
from leukoscope.results.validations import ValidationRecord
from leukoscope.rig_identity import rig_digest
from leukoscope.validation.criteria import Verdict
from leukoscope.validation.labels import Acquisition


def common_rig(acquisitions: Mapping[str, Acquisition]) -> str:
    """The one rig digest every acquisition shares; ParameterError naming the first that differs
    or whose set-up is unknown."""
    digests: dict[str, str] = {}
    for sample, acquisition in acquisitions.items():
        try:
            digests[sample] = rig_digest(acquisition.pixel_size_um, acquisition.settings_digest)
        except ParameterError:
            raise ParameterError(
                f"{acquisition.folder}: the rig set-up is unknown (acquisition.json records no "
                "settings_digest); a validation must name the rig it was run on"
            ) from None
    first = next(iter(digests))
    for sample, digest in digests.items():
        if digest != digests[first]:
            raise ParameterError(
                f"the acquisitions come from different rig set-ups ({first}: {digests[first]}, "
                f"{sample}: {digest}); validate each rig set-up separately"
            )
    return digests[first]


def login_name(given: str | None) -> str:
    """`given` (the --by option), else the OS login, else "unknown"."""
    if given is not None:
        name = given.strip()
        if not name:
            raise ParameterError("--by: give a name")
        return name
    try:
        return getpass.getuser() or "unknown"
    except (OSError, KeyError, ImportError):
        return "unknown"


def build_record(
    verdict: Verdict,
    criteria: ValidationConfig,
    *,
    model_path: Path,
    labels_path: Path,
    rig: str,
    simulated: bool,
    validated_by: str,
    report: Path,
) -> tuple[ValidationRecord, dict[str, Any]]:
    """The database row (id 0: not yet stored) and its JSON form for validation.json."""
    created = time.time()
    record = ValidationRecord(
        id=0,
        model_sha256=file_digest(model_path),
        rig_digest=rig,
        verdict=verdict.verdict,
        simulated=simulated,
        created_s=created,
        validated_by=validated_by,
        samples=verdict.samples,
        cells=verdict.cells,
        accuracy=verdict.accuracy or 0.0,
        segmentation_recall=verdict.segmentation_recall or 0.0,
        largest_bias_pp=verdict.largest_bias_pp or 0.0,
        largest_bias_class=verdict.largest_bias_class,
        model_path=str(Path(model_path).resolve()),
        failed=verdict.failed,
        report=str(Path(report).resolve()),
    )
    as_json = {
        "verdict": record.verdict,
        "failed": list(record.failed),
        "simulated": simulated,
        "releasable": record.passing,
        "model_path": record.model_path,
        "model_sha256": record.model_sha256,
        "rig_digest": rig,
        "labels_sha256": file_digest(labels_path),
        "created_s": created,
        "created_utc": datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="seconds"),
        "validated_by": validated_by,
        "criteria": criteria.model_dump(mode="json"),
        "figures": verdict.figures(),
    }
    return record, as_json


def verdict_lines(record: Mapping[str, Any]) -> list[str]:
    """The verdict for the terminal: PASS/FAIL, what failed, whether it can ever release."""
    head = f"verdict: {record['verdict']}"
    if record["simulated"]:
        head += " (simulated acquisitions: this record can never make a model releasable)"
    elif record["verdict"] == "FAIL":
        head += f" ({len(record['failed'])} criteria failed)"
    lines = [head, *(f"  failed: {reason}" for reason in record["failed"])]
    where = record.get("database")
    if where:
        lines.append(f"recorded as validation {record.get('id', '?')} in {where}")
    return lines

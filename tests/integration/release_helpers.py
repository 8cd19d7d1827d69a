"""Evidence for releasing a stored sample in tests: the run's model digest, the sample's rig set-up
and a passing validation record of that model on that rig, written the way `validate` and the
pipeline write them (real SQLite, the same tables)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

from leukoscope.results.store import ResultStore
from leukoscope.results.validations import (
    ValidationRecord,
    model_sha256_of,
    record_validation,
)
from leukoscope.rig_identity import rig_digest

PIXEL_SIZE_UM = 0.25
SETTINGS_DIGEST = "0123456789abcdef"


def give_evidence(
    database: Path,
    run_id: str,
    sample_id: str,
    *,
    verdict: str = "PASS",
    simulated_validation: bool = False,
    validate: bool = True,
) -> str:
    """Make the run's model digest and the sample's rig known (as a real run records them) and,
    with `validate`, record a validation of that model on that rig; the model's SHA-256."""
    with ResultStore(database) as store:
        run = next(r for r in store.runs() if r.run_id == run_id)
        sha = model_sha256_of(run.model_version)
        sample = next(s for s in store.samples(run_id) if s.sample_id == sample_id)
        if sample.settings_digest is None:
            store.note_rig(run_id, sample_id, PIXEL_SIZE_UM, SETTINGS_DIGEST)
    if not sha:
        sha = hashlib.sha256(run_id.encode()).hexdigest()
        with sqlite3.connect(database) as db:
            db.execute(
                "UPDATE runs SET model_version = model_version || ' sha256:' || ? WHERE run_id=?",
                (sha, run_id),
            )
        db.close()
    if validate:
        with ResultStore(database, read_only=True) as store:
            sample = next(s for s in store.samples(run_id) if s.sample_id == sample_id)
        record_validation(
            database,
            ValidationRecord(
                id=0, model_sha256=sha,
                rig_digest=rig_digest(sample.pixel_size_um, sample.settings_digest or ""),
                verdict=verdict, simulated=simulated_validation, created_s=time.time(),
                validated_by="Quality Manager", samples=20, cells=4000, accuracy=0.97,
                segmentation_recall=0.99, largest_bias_pp=1.5, largest_bias_class="LYM",
                model_path="model.pt", failed=() if verdict == "PASS" else ("accuracy",),
                report="validation.json",
            ),
        )  # fmt: skip
    return sha

"""What a sample's result rests on: the model (by SHA-256) and its passing validation for the rig
set-up that took the sample's fields, or the plain statement that there is none.

The rig set-up is read from the results store (`samples.pixel_size_um`, `samples.settings_digest`),
else from the `acquisition.json` of the sample's saved acquisition (`samples.source`).
"""

from __future__ import annotations

import time
from pathlib import Path

from leukoscope.acquisition_files.acquisition_meta import read_acquisition_meta
from leukoscope.errors import LeukoscopeError
from leukoscope.results.release_gates import Evidence
from leukoscope.results.store import SampleRecord
from leukoscope.results.validations import model_sha256_of, passing_validation
from leukoscope.rig_identity import rig_digest

NOT_VALIDATED = (
    "no passing validation on real acquisitions: this model's results must not be released"
)


def statement(evidence: Evidence) -> str:
    """One line for the report: the passing validation's date, samples, accuracy and largest bias,
    or that there is none."""
    v = evidence.validation
    if v is None or not v.passing:
        return NOT_VALIDATED
    when = time.strftime("%Y-%m-%d", time.gmtime(v.created_s))
    return (
        f"validated on this rig set-up ({v.rig_digest}) {when} by {v.validated_by}: PASS, "
        f"{v.samples} samples, accuracy {100 * v.accuracy:.1f} %, largest bias "
        f"{v.largest_bias_class} {v.largest_bias_pp:.1f} pp"
    )


def sample_rig(row: SampleRecord) -> str:
    """The rig digest of a stored sample ("" when unknown or mixed)."""
    pixel, settings = row.pixel_size_um, row.settings_digest
    if settings is None and row.source:  # not recorded in the store: its acquisition.json
        try:
            meta = read_acquisition_meta(Path(row.source))
        except (LeukoscopeError, OSError, ValueError):
            return ""
        pixel, settings = meta.pixel_size_um, meta.settings_digest
    try:
        return rig_digest(pixel, settings or "")
    except LeukoscopeError:
        return ""


def read_evidence(database: Path, row: SampleRecord, model_version: str) -> Evidence:
    """The evidence behind a stored sample of a run whose `model_version` is given."""
    sha = model_sha256_of(model_version)
    rig = sample_rig(row)
    try:
        found = passing_validation(database, sha, rig) if sha and rig else None
    except LeukoscopeError:
        found = None
    return Evidence(sha, rig, found)

"""What a release must satisfy, checked by the review store inside the release transaction (the
server decides, never the page):

- a simulated sample (or one whose origin was not recorded) is never released;
- a real sample is released only when its run's model has a passing validation (PASS, on real
  acquisitions) for the rig set-up that took the sample's fields (`results/validations.py`);
- a sample with no counted cells is never released (a percentage of no cells is not a result);
- a *final* release needs a complete sample (its target of cells reached, no failed field; cells
  a reviewer sets aside as artefacts or smudges do not make it incomplete); otherwise the
  reviewer may release it as *partial*, with a reason that travels with the result.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from leukoscope.errors import LeukoscopeError, ParameterError
from leukoscope.results.review_records import check_reason
from leukoscope.results.review_schema import ARTEFACT, SMUDGE, UNIDENTIFIED_LABEL, WHITE_CLASSES
from leukoscope.results.validations import (
    ValidationRecord,
    model_sha256_of,
    passing_validation,
)
from leukoscope.rig_identity import rig_digest
from leukoscope.types import CELL_CLASSES, SampleStatus

FINAL, PARTIAL = "final", "partial"
RELEASE_KINDS = (FINAL, PARTIAL)


class ReleaseRefused(LeukoscopeError, PermissionError):
    """A release the lab's rules do not allow (the message says which rule and what to do)."""


@dataclass(frozen=True)
class Evidence:
    """What a sample's results rest on: its run's model, the rig set-up and the validation."""

    model_sha256: str
    rig_digest: str  # "" when the sample's rig set-up is unknown or mixed
    validation: ValidationRecord | None

    @property
    def releasable(self) -> bool:
        """A passing validation of this model on this rig set-up exists."""
        return not self.why_not

    @property
    def why_not(self) -> str:
        """Why the model's results of this sample may not be released ("" when they may)."""
        if not self.model_sha256:
            return "its run recorded no model file digest"
        short = self.model_sha256[:12]
        if not self.rig_digest:
            return "the rig set-up of its fields is unknown or mixed"
        if self.validation is None:
            return (
                f"model {short} has no passing validation for this rig set-up "
                f"({self.rig_digest}): run `leukoscope validate` on the lab's labelled "
                "acquisitions, then `leukoscope model promote`"
            )
        return ""


def sample_evidence(db: sqlite3.Connection, run_id: str, sample_id: str) -> Evidence:
    """The evidence behind one stored sample (read from the results database)."""
    run = db.execute("SELECT model_version FROM runs WHERE run_id=?", (run_id,)).fetchone()
    sha = model_sha256_of(str(run[0])) if run else ""
    columns = {r[1] for r in db.execute("PRAGMA table_info(samples)")}
    rig = ""
    if "settings_digest" in columns:
        row = db.execute(
            "SELECT pixel_size_um, settings_digest FROM samples WHERE run_id=? AND sample_id=?",
            (run_id, sample_id),
        ).fetchone()
        if row is not None:
            try:
                rig = rig_digest(row[0], str(row[1] or ""))
            except ParameterError:
                rig = ""
    validation = passing_validation(db, sha, rig) if sha and rig else None
    return Evidence(sha, rig, validation)


@dataclass(frozen=True)
class SampleFacts:
    """The stored facts of a sample that decide how it may be released."""

    simulated: bool | None
    status: str
    status_reason: str
    fields_failed: int
    target_cells: int
    analysed: int  # cells the pipeline counted toward the target
    counted: int  # cells in the reviewed differential

    def incomplete(self) -> str:
        """Why this sample cannot be released as final ("" when it can)."""
        if self.status != SampleStatus.COMPLETE.value:
            why = f": {self.status_reason}" if self.status_reason else ""
            return f"it is {self.status}{why}"
        if self.fields_failed:
            return f"{self.fields_failed} field(s) failed"
        if self.analysed < self.target_cells:
            return f"{self.analysed} cells were counted, below its target of {self.target_cells}"
        return ""


def release_kind(
    facts: SampleFacts, evidence: Evidence, sample_id: str, *, partial: bool, reason: str
) -> tuple[str, str]:
    """(kind, reason) of an allowed release; ReleaseRefused naming the rule otherwise."""
    if facts.simulated is not False:
        origin = "simulated" if facts.simulated else "of unrecorded origin (simulated or not)"
        raise ReleaseRefused(f"sample {sample_id!r} is {origin}: it is never released")
    if evidence.why_not:
        raise ReleaseRefused(f"sample {sample_id!r} cannot be released: {evidence.why_not}")
    if facts.counted == 0:
        raise ReleaseRefused(
            f"sample {sample_id!r} has no counted cells: there is no differential to release"
        )
    incomplete = facts.incomplete()
    if not partial:
        if incomplete:
            raise ReleaseRefused(
                f"sample {sample_id!r} cannot be released as final: {incomplete}; release it "
                "as partial, with a reason, if its differential is to be reported"
            )
        return FINAL, ""
    try:
        return PARTIAL, check_reason(reason)
    except ParameterError:
        raise ReleaseRefused(
            "a partial release needs a reason (3-500 printable characters) that goes out with "
            "the result"
        ) from None


def release_facts(
    db: sqlite3.Connection, run_id: str, sample_id: str
) -> tuple[SampleFacts, dict[str, object]]:
    """The stored sample's facts and its reviewed differential, read in the transaction."""
    row = db.execute(
        "SELECT * FROM samples WHERE run_id=? AND sample_id=?", (run_id, sample_id)
    ).fetchone()
    if row is None:
        raise LookupError(f"no sample {sample_id!r} in run {run_id}")
    labels = db.execute(
        "SELECT label, flagged FROM review_cells WHERE run_id=? AND sample_id=?",
        (run_id, sample_id),
    ).fetchall()
    counts = {c.value: 0 for c in CELL_CLASSES}  # the five always, a further class when counted
    for label, _ in labels:
        if label in WHITE_CLASSES:
            counts[label] = counts.get(label, 0) + 1
    counted = sum(counts.values())
    simulated = row["simulated"] if "simulated" in row.keys() else None  # noqa: SIM118
    facts = SampleFacts(
        simulated=None if simulated is None else bool(simulated),
        status=str(row["status"]),
        status_reason=str(row["reason"]),
        fields_failed=int(row["fields_failed"]),
        target_cells=int(row["target_cells"]),
        analysed=int(row["cells_counted"]),
        counted=counted,
    )
    differential: dict[str, object] = {
        "counts": counts,
        "counted": counted,
        "artefacts": sum(label == ARTEFACT for label, _ in labels),
        "smudges": sum(label == SMUDGE for label, _ in labels),
        "unidentified": sum(label == UNIDENTIFIED_LABEL for label, _ in labels),
        "flagged": sum(int(f) for label, f in labels if label in counts),
    }
    return facts, differential

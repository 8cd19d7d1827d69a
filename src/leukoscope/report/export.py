"""The report for laboratory information systems: JSON document and CSV rows (docs/report.md).

Numbers are the store's, unrounded (round them for display). Times are ISO 8601 UTC. The schema is
versioned: a consumer checks `schema` and `schema_version` (JSON) or the header row (CSV).
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Any

from leukoscope.classifier.model_info import CV_METRICS
from leukoscope.report.data import ReportData
from leukoscope.report.evidence import NOT_VALIDATED, statement
from leukoscope.report.review import NOT_REVIEWED
from leukoscope.spreadsheet import SafeWriter

SCHEMA = "leukoscope-report"
SCHEMA_VERSION = 3
"""2 added `simulated` (JSON `sample.simulated`, CSV last column); 3 added the review (JSON
`review`, CSV `review_state` .. `original_percent`): the differential is the reviewed one once a
review exists, the classifier's original beside it."""
CSV_COLUMNS = (
    "schema_version",
    "sample_id",
    "run_id",
    "acquired_utc",
    "status",
    "cells_counted",
    "cells_flagged",
    "target_cells",
    "cell_class",
    "count",
    "percent",
    "ci_low_percent",
    "ci_high_percent",
    "ref_low_percent",
    "ref_high_percent",
    "range_flag",
    "quality_flags",
    "simulated",
    "review_state",
    "reviewer",
    "released_utc",
    "original_count",
    "original_percent",
    "model_sha256",
    "model_validated",
)


def iso(seconds: float | None) -> str | None:
    """ISO 8601 UTC time of a Unix timestamp (None stays None)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")


def report_document(data: ReportData) -> dict[str, Any]:
    """The report as a JSON-ready dict (schema in docs/report.md)."""
    s, m = data.summary, data.model
    cells = [
        {
            "fov": cell.result.key.fov,
            "cell_index": cell.result.key.cell_index,
            "cell_class": cell.result.cell_class.value,
            "label": cell.result.label,
            "probability": cell.confidence,
            "disagreement": cell.result.disagreement,
            "flagged": cell.result.flagged,
            "flag_reason": cell.result.flag_reason,
        }
        for line in data.lines
        for cell in data.gallery.get(line.count.cell_class, ())
    ]
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_utc": iso(data.generated_s),
        "sample": {
            "sample_id": data.sample_id,
            "simulated": s.simulated,
            "run_id": data.run_id,
            "acquired_utc": iso(data.started_s),
            "finished_utc": iso(data.finished_s),
            "status": s.status.value,
            "status_reason": s.status_reason,
            "target_cells": data.target_cells,
            "cells_counted": s.cells_counted,
            "cells_flagged": s.cells_flagged,
            "cells_unidentified": s.cells_unidentified,
            "nrbc": s.nrbc,
            "nrbc_per_100_wbc": s.nrbc_per_100_wbc,
            "flagged_percent": data.flagged_percent,
            "fields_done": s.fields_done,
            "fields_total": s.fields_total,
            "fields_failed": s.fields_failed,
            "fields_blank": s.fields_blank,
            "fields_saturated": s.fields_saturated,
            "focus_fields": [f.to_json() for f in data.focus_fields],
            "mean_disagreement": data.mean_disagreement,
        },
        "model": {
            "path": m.path,
            "version": m.version,
            "arch": m.arch,
            "modalities": list(m.modalities),
            "created_utc": m.created,
            "cv_folds": m.cv_folds,
            "cv_metrics": {
                key: {"mean": m.cv[key][0], "std": m.cv[key][1]}
                for key, _ in CV_METRICS
                if key in m.cv
            },
            "note": m.note,
            "sha256": data.evidence.model_sha256 if data.evidence else "",
            "cv_label": m.cv_label,
            "trained_on": {
                "simulated": m.trained.simulated,
                "cells": m.trained.cells,
                "dataset_digest": m.trained.digest,
            },
        },
        "validation": validation_document(data),
        "differential": [
            {
                "cell_class": line.count.cell_class.value,
                "count": line.count.count,
                "percent": line.count.percent,
                "ci_low_percent": line.count.ci_low_percent,
                "ci_high_percent": line.count.ci_high_percent,
                "ref_low_percent": line.reference.low_percent,
                "ref_high_percent": line.reference.high_percent,
                "range_flag": line.flag.value,
            }
            for line in data.lines
        ],
        "quality_flags": [
            {"code": f.code, "severity": f.severity.value, "message": f.message}
            for f in data.quality
        ],
        "cells": cells,
        "review": review_document(data),
    }


def validation_document(data: ReportData) -> dict[str, Any]:
    """The model's passing validation for the sample's rig set-up (null when there is none)."""
    evidence = data.evidence
    v = evidence.validation if evidence else None
    return {
        "rig_digest": evidence.rig_digest if evidence else "",
        "releasable": bool(evidence and evidence.releasable),
        "statement": statement(evidence) if evidence else NOT_VALIDATED,
        "record": None
        if v is None
        else {
            "id": v.id,
            "verdict": v.verdict,
            "created_utc": iso(v.created_s),
            "validated_by": v.validated_by,
            "samples": v.samples,
            "cells": v.cells,
            "accuracy": v.accuracy,
            "segmentation_recall": v.segmentation_recall,
            "largest_bias_pp": v.largest_bias_pp,
            "largest_bias_class": v.largest_bias_class,
            "report": v.report,
        },
    }


def _release_block(data: ReportData) -> dict[str, Any] | None:
    """The release in force: kind, why partial, which release (2 and more: corrections), who
    verified it and the review record chain head it was released on (None unless released)."""
    record = data.review.current_release if data.review else None
    if record is None:
        return None
    return {
        "kind": record.kind,
        "reason": record.reason,
        "release_no": record.release_no,
        "correction": record.correction,
        "verified_by": record.verified_by,
        "chain_head": record.chain_head,
    }


def review_document(data: ReportData) -> dict[str, Any]:
    """The review block: state, reviewer, release time and the original differential."""
    review = data.review
    original = review.original if review else data.summary
    return {
        "state": review.state if review else NOT_REVIEWED,
        "reviewer": review.reviewer if review else "",
        "released_utc": iso(review.released_s) if review else None,
        "reclassifications": review.changes if review else 0,
        "artefacts": review.artefacts if review else 0,
        "smudges": review.smudges if review else 0,
        "release": _release_block(data),
        "original_cells_counted": original.cells_counted,
        "original_differential": [
            {
                "cell_class": c.cell_class.value,
                "count": c.count,
                "percent": c.percent,
                "ci_low_percent": c.ci_low_percent,
                "ci_high_percent": c.ci_high_percent,
            }
            for c in original.classes
        ],
    }


def render_json(data: ReportData) -> str:
    """The JSON document, indented."""
    return json.dumps(report_document(data), indent=1, ensure_ascii=False) + "\n"


def _simulated_cell(simulated: bool | None) -> str:
    return "unknown" if simulated is None else str(simulated).lower()


def render_csv(data: ReportData) -> str:
    """One row per class (columns `CSV_COLUMNS`), sample fields repeated on each row."""
    s = data.summary
    codes = ";".join(dict.fromkeys(f.code for f in data.quality))
    buffer = io.StringIO()
    writer = SafeWriter(buffer)  # formula-like text neutralised
    writer.writerow(CSV_COLUMNS)
    review = review_document(data)
    originals = {d["cell_class"]: d for d in review["original_differential"]}
    evidence = {
        "sha256": data.evidence.model_sha256 if data.evidence else "",
        "releasable": bool(data.evidence and data.evidence.releasable),
    }
    for line in data.lines:
        c, ref = line.count, line.reference
        writer.writerow(
            [SCHEMA_VERSION, data.sample_id, data.run_id, iso(data.started_s), s.status.value,
             s.cells_counted, s.cells_flagged, data.target_cells, c.cell_class.value, c.count,
             repr(c.percent), repr(c.ci_low_percent), repr(c.ci_high_percent),
             repr(ref.low_percent), repr(ref.high_percent), line.flag.value, codes,
             _simulated_cell(s.simulated), review["state"], review["reviewer"],
             review["released_utc"] or "", originals[c.cell_class.value]["count"],
             repr(originals[c.cell_class.value]["percent"]), evidence["sha256"],
             str(evidence["releasable"]).lower()]
        )  # fmt: skip
    return buffer.getvalue()

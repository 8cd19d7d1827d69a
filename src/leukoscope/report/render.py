"""Render a sample's report in the asked format and pick the default output file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from leukoscope.errors import ParameterError
from leukoscope.report.data import ReportData

if TYPE_CHECKING:
    from leukoscope.report.lis import Order

FORMATS = ("html", "json", "csv", "hl7", "fhir")
SUFFIXES = {"hl7": "hl7", "fhir": "fhir.json"}


def check_format(fmt: str) -> str:
    """The format, lower-cased; ParameterError unless one of FORMATS."""
    chosen = fmt.lower()
    if chosen not in FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return chosen


def render_report(data: ReportData, fmt: str, *, order: Order | None = None) -> str:
    """The report as text in `fmt` (html, json, csv; hl7 or fhir for a released sample, naming
    the patient and order when the laboratory's `order` is given)."""
    chosen = check_format(fmt)
    if chosen in ("hl7", "fhir"):
        from leukoscope.report.lis import render_fhir, render_hl7

        return render_hl7(data, order=order) if chosen == "hl7" else render_fhir(data, order=order)
    if chosen == "html":
        from leukoscope.report.html import render_html

        return render_html(data)
    from leukoscope.report.export import render_csv, render_json

    return render_json(data) if chosen == "json" else render_csv(data)


def default_output(sample_id: str, run_id: str, fmt: str) -> Path:
    """`report-<sample>-<run8>.<fmt>` in the working directory, the sample id made file-safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id).strip("._") or "sample"
    chosen = check_format(fmt)
    return Path(f"report-{safe[:80]}-{run_id[:8]}.{SUFFIXES.get(chosen, chosen)}")

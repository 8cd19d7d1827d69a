"""The report's review part: who reviewed and released the result, what changed, and the badge
that asks for a review while nobody has released it."""

from __future__ import annotations

from leukoscope.report.data import ReportData
from leukoscope.report.flags import Severity
from leukoscope.report.html_text import esc, utc
from leukoscope.report.review import NOT_REVIEWED, RELEASED


def review_section(data: ReportData) -> str:
    """Whether a qualified person reviewed and released the result, and what changed."""
    review = data.review
    if review is None or review.state == NOT_REVIEWED:
        return (
            '<section id="review-section"><h2>Review</h2><p class="status status-running" '
            'id="not-reviewed">NOT YET REVIEWED: the classifier\'s differential, not confirmed '
            "by qualified staff.</p></section>"
        )
    changed = (
        f"{review.changes} cell(s) reclassified; {review.artefacts} artefact(s) and "
        f"{review.smudges} smudge(s) left the differential. The counts are the reviewed ones; "
        "the classifier's original counts are in the Original column."
    )
    record = review.current_release
    if review.state == RELEASED and record is not None:
        kind = "Released" if record.kind == "final" else "Released as PARTIAL"
        kind += f" (correction {record.release_no})" if record.correction else ""
        why = f": {record.reason}" if record.reason else ""
        verified = f", verified by {record.verified_by}" if record.verified_by else ""
        head = (
            f'<p class="status status-complete" id="released">{esc(kind)} by '
            f"{esc(review.reviewer)}{esc(verified)} on {esc(utc(review.released_s))}"
            f'{esc(why)}</p><p class="muted mono">review record chain head sha256:'
            f"{esc(record.chain_head)}</p>"
        )
    elif review.state == RELEASED:
        head = (
            f'<p class="status status-complete" id="released">Released by '
            f"{esc(review.reviewer)} on {esc(utc(review.released_s))}</p>"
        )
    else:
        head = (
            '<p class="status status-running" id="in-review">IN REVIEW: changed but not yet '
            "signed off</p>"
        )
    return f'<section id="review-section"><h2>Review</h2>{head}<p>{esc(changed)}</p></section>'


def review_badge(data: ReportData) -> str:
    """'Review required' when an alert is raised, 'check flags' for warnings only, else nothing."""
    if data.review is not None and data.review.state == RELEASED:
        return ""  # released: a person checked the flags; the review section says by whom
    severities = {f.severity for f in data.quality}
    if Severity.ALERT in severities:
        return '<div class="status status-incomplete" id="review">review required</div>'
    if severities:
        return '<div class="status status-running" id="review">check flags</div>'
    return ""

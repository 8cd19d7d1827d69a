"""The per-sample report as one self-contained HTML page: no scripts, no network, images inline.

A Content-Security-Policy forbids every resource but inline styles and `data:` images, so a page
that tried to load anything would show it as a console error (the Chromium test checks for none).
Every piece of text from the store or the user (sample ids above all) goes through `esc`.
"""

from __future__ import annotations

import base64

from leukoscope import __version__
from leukoscope.classifier.model_info import CV_METRICS, ModelInfo
from leukoscope.report.chart import differential_svg
from leukoscope.report.data import ClassLine, GalleryCell, ReportData
from leukoscope.report.evidence import NOT_VALIDATED, statement
from leukoscope.report.flags import RangeFlag, image_note, interval_reaches
from leukoscope.report.html_review import review_badge, review_section
from leukoscope.report.html_text import esc, utc
from leukoscope.report.style import CSS
from leukoscope.results.counts import CONFIDENCE
from leukoscope.types import CellClass

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CLASS_NAMES = {
    CellClass.NEU: "Neutrophils",
    CellClass.LYM: "Lymphocytes",
    CellClass.MO: "Monocytes",
    CellClass.EOS: "Eosinophils",
    CellClass.BAS: "Basophils",
    CellClass.IG: "Immature granulocytes",
    CellClass.NRBC: "Nucleated red cells",
    CellClass.BLAST: "Blasts",
    CellClass.RL: "Reactive lymphocytes",
}
RANGE_SOURCE = (
    "typical adult reference intervals (Bain, Blood Cells: A Practical Guide, 5th ed.), "
    "configurable per laboratory ([report.reference_ranges])"
)
_FLAG_TEXT = {
    RangeFlag.BELOW: "▼ below",
    RangeFlag.ABOVE: "▲ above",
    RangeFlag.WITHIN: "within",
    RangeFlag.NONE: "—",
}


def _item(label: str, value: str, element_id: str = "") -> str:
    ident = f' id="{element_id}"' if element_id else ""
    return f"<div><dt>{esc(label)}</dt><dd{ident}>{value}</dd></div>"


def _model_text(model: ModelInfo, sha256: str) -> tuple[str, str, str]:
    name = esc(model.arch or model.name) + (
        f' · <span class="mono">sha256 {esc(sha256[:12])}</span>' if sha256 else ""
    )
    trained = f"trained {model.created}" if model.created else "not recorded"
    version = esc(model.version or trained)
    if model.cv:
        folds = f" ({model.cv_folds}-fold CV)" if model.cv_folds else " (CV)"
        metrics = ", ".join(
            f"{label} {100 * model.cv[key][0]:.1f} ± {100 * model.cv[key][1]:.1f}%"
            for key, label in CV_METRICS
            if key in model.cv
        )
        return name, version, esc(metrics + folds)
    return name, version, f'<span class="muted">{esc(model.note or "not available")}</span>'


def _validation_text(data: ReportData) -> str:
    """The model's passing validation for this rig set-up, or the plain statement of none."""
    evidence = data.evidence
    text = esc(statement(evidence) if evidence else NOT_VALIDATED)
    return text if evidence is not None and evidence.releasable else f"<strong>{text}</strong>"


def meta_section(data: ReportData) -> str:
    """Sample, run, times, counts, fields and model."""
    s = data.summary
    target = f" of {data.target_cells} targeted" if data.target_cells else " (all fields)"
    fields = f"{s.fields_done}" + (f" of {s.fields_total}" if s.fields_total is not None else "")
    sha256 = data.evidence.model_sha256 if data.evidence else ""
    model, version, metrics = _model_text(data.model, sha256)
    cv_title = (
        "Cross-validated performance" if data.model.trained.real else "Simulator cross-validation"
    )
    items = [
        _item("Sample", f'<span class="mono">{esc(data.sample_id)}</span>', "sample-id"),
        _item("Run", f'<span class="mono">{esc(data.run_id)}</span>', "run-id"),
        _item("Acquired", esc(utc(data.started_s))),
        _item("Report generated", esc(utc(data.generated_s))),
        _item("Cells counted", esc(f"{s.cells_counted}{target}"), "cells-counted"),
        _item(
            "Flagged for review",
            esc(f"{s.cells_flagged} ({data.flagged_percent:.1f}%)"),
            "cells-flagged",
        ),
        _item(
            "Unidentified (in no class, for review)",
            esc(str(s.cells_unidentified)),
            "cells-unidentified",
        ),
        *(
            [_item("NRBC per 100 WBC", esc(f"{s.nrbc_per_100_wbc:.1f} ({s.nrbc})"), "nrbc")]
            if s.nrbc
            else []
        ),
        _item("Fields of view", esc(f"{fields} analysed, {s.fields_failed} failed{image_note(s)}")),
        _item("Focus", _focus_text(data), "focus-fields"),
        _item("Mean head disagreement", esc(f"{data.mean_disagreement:.3f}")),
        _item("Model", model, "model"),
        _item("Model version", version, "model-version"),
        _item(cv_title, metrics, "model-metrics"),
        _item("Trained on", esc(data.model.trained.describe()), "model-trained"),
        _item("Validation", _validation_text(data), "model-validation"),
        _item("Status", esc(s.status_reason or s.status.value)),
    ]
    return f'<section id="summary"><h2>Sample</h2><dl class="meta">{"".join(items)}</dl></section>'


def _focus_text(data: ReportData) -> str:
    """The fields whose focus was low (cells counted) or which failed out of focus, one a line."""
    if not data.focus_fields:
        return "no field flagged"
    return "<br>".join(
        f'<span class="{"focus-failed" if f.failed else "focus-low"}" data-fov="{f.fov}">{esc(f.describe())}'
        "</span>"
        for f in data.focus_fields
    )


def quality_section(data: ReportData) -> str:
    """The quality flags, most serious first, or a line saying there are none."""
    if not data.quality:
        body = '<p class="ok" id="no-quality-flags">No quality flags.</p>'
    else:
        items = "".join(
            f'<li class="{f.severity.value}" data-code="{esc(f.code)}">'
            f"<b>{esc(f.severity.value)}</b>{esc(f.message)}</li>"
            for f in data.quality
        )
        body = f'<ul class="flags" id="quality-flags">{items}</ul>'
    return f'<section id="quality"><h2>Review flags</h2>{body}</section>'


def _table_row(line: ClassLine, counted: int, original: int | None = None) -> str:
    c, ref = line.count, line.reference
    has = counted > 0
    ci = f"{c.ci_low_percent:.1f} – {c.ci_high_percent:.1f}"
    cells = [
        f"<td><b>{esc(c.cell_class.value)}</b> "
        f'<span class="muted">{esc(CLASS_NAMES[c.cell_class])}</span></td>',
        f'<td class="count">{c.count}</td>',
        f'<td class="percent">{f"{c.percent:.1f}" if has else "—"}</td>',
        f'<td class="ci">{ci if has else "—"}</td>',
        f'<td class="range">{ref.low_percent:g} – {ref.high_percent:g}</td>',
        f'<td class="flag-{line.flag.name.lower()}">{esc(_flag_text(line))}</td>',
    ]
    if original is not None:
        cells.append(f'<td class="original">{original}</td>')
    return f'<tr data-class="{esc(c.cell_class.value)}">{"".join(cells)}</tr>'


def differential_section(data: ReportData) -> str:
    """Per class: count, %, 95% CI, reference range, flag; and the chart (or why there is none)."""
    n = data.summary.cells_counted
    review = data.review if data.review is not None and data.review.reviewed else None
    originals = {c.cell_class: c.count for c in review.original.classes} if review else {}
    rows = "".join(_table_row(line, n, originals.get(line.count.cell_class)) for line in data.lines)
    level = round(100 * CONFIDENCE)
    extra = "<th>Original</th>" if review else ""
    total = f"<td>{review.original.cells_counted}</td>" if review else ""
    table = (
        '<table class="differential" id="differential"><thead><tr><th>Class</th><th>Count</th>'
        f"<th>%</th><th>{level}% CI (%)</th><th>Reference (%)</th><th>Flag</th>{extra}</tr>"
        f'</thead><tbody>{rows}</tbody><tfoot><tr><td>Total</td><td>{n}</td><td colspan="4">'
        f"</td>{total}</tr></tfoot></table>"
    )
    if n == 0:
        chart = (
            '<p class="empty" id="no-cells-message">No white cells were counted in this sample: '
            "no differential can be reported.</p>"
        )
    else:
        svg = differential_svg(
            [line.count.cell_class.value for line in data.lines],
            [line.count.percent for line in data.lines],
            [(line.count.ci_low_percent, line.count.ci_high_percent) for line in data.lines],
            [(line.reference.low_percent, line.reference.high_percent) for line in data.lines],
            [line.flag for line in data.lines],
        )
        chart = f'<figure class="chart" id="chart" style="margin:0">{svg}</figure>'
    return (
        '<section id="differential-section"><h2>Differential</h2>'
        f'<div class="diff"><div>{table}</div><div>{chart}</div></div></section>'
    )


def _png(data: bytes, alt: str, side: int, kind: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<img class="{kind}" alt="{esc(alt)}" width="{side}" height="{side}" '
        f'src="data:image/png;base64,{encoded}">'
    )


def _cell_card(cell: GalleryCell) -> str:
    """One cell: its composite and fluorescence at their own size (no scaling), its caption."""
    r = cell.result
    key = f"field {r.key.fov}, cell {r.key.cell_index}"
    pictures = cell.pictures
    if pictures is None:
        images = '<div class="noimage">no image stored</div>'
        note = ""
    else:
        side = pictures.side_px
        images = "".join(
            _png(data, f"{key}: {what}", side, kind)
            for data, what, kind in (
                (pictures.composite, "bright-field composite", "composite"),
                (pictures.fluorescence, "fluorescence", "fluorescence"),
            )
            if data is not None
        )
        note = (
            f'<div class="crop-note">stored {side} px crop: the saved acquisition was not '
            "found</div>"
            if pictures.crop != "native"
            else ""
        )
    badge = '<span class="badge">REVIEW</span>' if r.flagged else ""
    reason = f'<div class="reason">{esc(r.flag_reason)}</div>' if r.flagged else ""
    caption = f"{esc(key)} · p {cell.confidence:.2f} · Δ {r.disagreement:.2f}"
    classes = "cell flagged" if r.flagged else "cell"
    return (
        f'<figure class="{classes}" id="cell-{r.key.fov}-{r.key.cell_index}" '
        f'data-class="{esc(r.cell_class.value)}" data-flagged="{int(r.flagged)}">'
        f'<div class="pics">{images}</div>{note}'
        f"<figcaption>{badge}{caption}</figcaption>{reason}</figure>"
    )


def jump_links(data: ReportData) -> str:
    """A link to each class's gallery, with its count and how many of its cells are flagged."""
    links = []
    for line in data.lines:
        c = line.count.cell_class
        if not line.count.count:
            continue
        flagged = data.flagged_by_class.get(c, 0)
        extra = f' <span class="flagged-count">{flagged} flagged</span>' if flagged else ""
        links.append(
            f'<a href="#gallery-{esc(c.value)}" data-class="{esc(c.value)}">'
            f"{esc(c.value)} {line.count.count}{extra}</a>"
        )
    if not links:
        return ""
    return f'<nav class="jump" id="gallery-jump" aria-label="cell classes">{"".join(links)}</nav>'


def gallery_section(data: ReportData) -> str:
    """A gallery per class, reached by jump links: flagged cells first, then by confidence."""
    parts = [
        '<section id="gallery-section"><h2>Cell gallery</h2>'
        f'<p class="muted">Every counted cell, per class: flagged cells (orange, REVIEW) first, '
        "then by the classifier's probability, highest first. p = probability of the class, "
        f"Δ = head disagreement. Each cell at the native {data.crop_um:g} µm crop, unscaled: the "
        "bright-field lights as one colour composite, and the fluorescence auto-contrasted "
        "(as on the review page).</p>",
        jump_links(data),
    ]
    if data.summary.cells_counted == 0:
        parts.append('<p class="empty" id="no-cells-gallery">No cells to show.</p>')
    for line in data.lines:
        c = line.count.cell_class
        cells = data.gallery.get(c, ())
        if not line.count.count:
            continue
        shown = (
            f", showing {len(cells)} of {line.count.count}" if len(cells) < line.count.count else ""
        )
        parts.append(
            f'<h3 id="gallery-{esc(c.value)}">{esc(c.value)} · {esc(CLASS_NAMES[c])} '
            f'<span class="muted">{line.count.count} cells, {data.flagged_by_class.get(c, 0)} '
            f"flagged{shown}</span></h3>"
            '<div class="legend-pictures">bright-field composite · fluorescence</div>'
            f'<div class="gallery" data-class="{esc(c.value)}">'
            f"{''.join(_cell_card(cell) for cell in cells)}</div>"
        )
    parts.append("</section>")
    return "".join(parts)


def _flag_text(line: ClassLine) -> str:
    """The flag on the value; for a value outside its range, whether its interval still reaches
    the range (the count cannot tell it apart from the range then)."""
    text = _FLAG_TEXT[line.flag]
    if line.flag in (RangeFlag.BELOW, RangeFlag.ABOVE) and interval_reaches(
        line.count, line.reference
    ):
        text += " (95% interval reaches the range)"
    return text


def footer(data: ReportData) -> str:
    """Methods, reference-range source and provenance."""
    level = round(100 * CONFIDENCE)
    return (
        "<footer><p>Percentages are of the white cells counted; flagged cells count toward the "
        f"class the classifier chose. {level}% confidence intervals are Clopper-Pearson exact "
        f"binomial intervals. Reference ranges: {esc(RANGE_SOURCE)}. Flags compare the percentage "
        "with the range; a value outside it whose 95% interval still reaches the range says so. Flagged cells and every review flag must be checked by qualified staff "
        f"before the result is released.</p><p>leukoscope {esc(__version__)} · results "
        f'<span class="mono">{esc(data.database)}</span> · model file '
        f'<span class="mono">{esc(data.model.path or "unknown")}</span></p></footer>'
    )


def simulated_prefix(data: ReportData) -> str:
    """'SIMULATED — ' before the title of a simulated sample's report, else nothing."""
    return "SIMULATED — " if data.summary.simulated else ""


def simulated_banner(data: ReportData) -> str:
    """A banner no reader can miss on a simulated sample's report."""
    if not data.summary.simulated:
        return ""
    return (
        '<div class="status status-incomplete" id="simulated">SIMULATED — not a patient sample'
        "</div>"
    )


def render_html(data: ReportData) -> str:
    """The whole page."""
    status = data.summary.status.value
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{simulated_prefix(data)}Differential report — {esc(data.sample_id)}</title>"
        f"<style>{CSS}</style></head>"
        '<body><header class="masthead"><div class="brand">leukoscope</div>'
        "<h1>White-cell differential report</h1>"
        f'<div class="sample">{esc(data.sample_id)}</div>'
        f'<div class="status status-{esc(status)}" id="status">{esc(status)}</div>'
        f"{review_badge(data)}{simulated_banner(data)}</header>"
        f"<main>{meta_section(data)}{review_section(data)}{quality_section(data)}"
        f"{differential_section(data)}"
        f"{gallery_section(data)}</main>{footer(data)}</body></html>\n"
    )

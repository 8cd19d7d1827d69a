"""Write a validation: `validation.json`, `validation.md` and matplotlib plots; a terminal summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leukoscope.atomic import atomic_write_figure, atomic_write_text


def matched_names(data: dict[str, Any]) -> list[str]:
    """The classes of the classification figures: the five, then the further classes the labels
    or the matched cells hold."""
    return list(data["classification"]["per_class"])


def differential_names(data: dict[str, Any]) -> list[str]:
    """The classes of the differential figures (white cells only)."""
    return list(data["agreement"]["per_class"])


_NO_AGREEMENT = {"bias_pp": None, "loa_pp": None}


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f} %"


def _pp(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def summary_lines(data: dict[str, Any]) -> list[str]:
    """One screen: segmentation, classification, per-class agreement, where the files are."""
    seg, cls, agr = data["segmentation"], data["classification"], data["agreement"]
    lines = [
        f"validation of {data['model']} on {len(data['samples'])} sample(s), "
        f"{seg['white_cell_labels']} labelled white cells (match radius {data['radius_um']:g} um)",
        f"segmentation: recall {_pct(seg['recall'])} ({seg['found']}/{seg['white_cell_labels']}; "
        f"{_pct(seg['recall_whole'])} = {seg['whole_found']}/{seg['whole_labels']} of those "
        f">= {seg['whole_margin_um']:g} um from the frame edge), precision "
        f"{_pct(seg['precision'])} ({seg['true_detections']}/{seg['detections']})",
        f"classification of {cls['cells']} matched cells: accuracy {_pct(cls['accuracy'])}, "
        f"macro-F1 {_pct(cls['macro_f1'])}",
        f"reference inside the pipeline's 95% interval: {agr['reference_inside_pipeline_ci']}"
        f"/{agr['intervals']} ({_pct(agr['coverage'], 0)})",
        "class  recall  precision  bias pp  limits of agreement pp",
    ]
    for name in matched_names(data):
        pc, ac = cls["per_class"][name], agr["per_class"].get(name, _NO_AGREEMENT)
        loa = ac["loa_pp"]
        limits = "-" if loa is None else f"{loa[0]:+.1f} .. {loa[1]:+.1f}"
        lines.append(
            f"{name:<5}  {_pct(pc['recall'], 0):>6}  {_pct(pc['precision'], 0):>9}  "
            f"{_pp(ac['bias_pp']):>7}  {limits}"
        )
    return lines


def _verdict_note(record: dict[str, Any]) -> str:
    if record["simulated"]:
        return " on simulated acquisitions: this record can never make the model releasable."
    if record["releasable"]:
        return "; the model may be promoted (`leukoscope model promote`) for this rig set-up."
    return "."


def verdict_markdown(record: dict[str, Any]) -> list[str]:
    """The verdict section: PASS/FAIL, failed criteria, what it is bound to, the criteria."""
    fig, crit = record["figures"], record["criteria"]
    bias = "-" if fig["largest_bias_pp"] is None else f"{fig['largest_bias_pp']:.1f} pp"
    out = [
        "## Verdict",
        "",
        f"**{record['verdict']}**{_verdict_note(record)}",
        "",
        *(f"- failed: {reason}" for reason in record["failed"]),
        "" if record["failed"] else "All acceptance criteria hold.",
        "",
        "| figure | value | criterion |",
        "|---|---|---|",
        f"| samples | {fig['samples']} | at least {crit['min_samples']} |",
        f"| segmentation recall{' (whole cells)' if crit['recall_whole_cells_only'] else ''} | "
        f"{_pct(fig['segmentation_recall'])} | at least {_pct(crit['min_segmentation_recall'])} |",
        f"| accuracy ({fig['cells']} matched cells) | {_pct(fig['accuracy'])} | at least "
        f"{_pct(crit['min_accuracy'])} |",
        f"| largest absolute bias | {bias} ({fig['largest_bias_class'] or '-'}) | per class at "
        "most " + ", ".join(f"{k} {v:g}" for k, v in crit["max_bias_pp"].items()) + " pp |",
        f"| reference inside the 95 % interval | {_pct(fig['coverage'])} | at least "
        f"{_pct(crit['min_coverage'])} |",
        "",
        f"Model SHA-256 `{record['model_sha256']}`; rig set-up `{record['rig_digest']}`; labels "
        f"SHA-256 `{record['labels_sha256']}`; {record['created_utc']} by "
        f"{record['validated_by']}; record {record.get('id', '-')} of `model_validations` in "
        f"`{record.get('database', '-')}`.",
        "",
    ]
    return out


def markdown(data: dict[str, Any]) -> str:
    """The whole validation as Markdown."""
    seg, cls, agr = data["segmentation"], data["classification"], data["agreement"]
    matched, shares = matched_names(data), differential_names(data)
    out = [
        "# Validation against a labelled reference",
        "",
        f"Model `{data['model']}`; labels `{data['labels']}`; run `{data['run_id']}` in "
        f"`{data['database']}`; match radius {data['radius_um']:g} um; every cell of every field "
        "counted (target_cells = 0). Method comparison after CLSI H20-A2: the reference is the "
        "labelled count of the same fields.",
        "",
        *(verdict_markdown(data["record"]) if "record" in data else []),
        "## Segmentation",
        "",
        f"- recall {_pct(seg['recall'], 2)} ({seg['found']} of {seg['white_cell_labels']} labelled "
        "white cells found)",
        f"- recall over cells certainly whole (label at least {seg['whole_margin_um']:g} um from "
        f"every frame edge; cells cut by the border are dropped by design): "
        f"{_pct(seg['recall_whole'], 2)} ({seg['whole_found']} of {seg['whole_labels']})",
        f"- precision {_pct(seg['precision'], 2)} ({seg['true_detections']} of "
        f"{seg['detections']} detections in labelled fields are a labelled white cell)",
        "",
        "## Classification of the matched cells",
        "",
        f"{cls['cells']} cells; accuracy {_pct(cls['accuracy'])}, macro-F1 "
        f"{_pct(cls['macro_f1'])} (over the classes in the reference).",
        "",
        "| reference \\ pipeline | " + " | ".join(matched) + " | recall |",
        "|---|" + "---|" * (len(matched) + 1),
    ]
    for k, name in enumerate(matched):
        row = " | ".join(str(v) for v in cls["confusion"][k])
        out.append(f"| {name} | {row} | {_pct(cls['per_class'][name]['recall'])} |")
    precision = " | ".join(_pct(cls["per_class"][n]["precision"]) for n in matched)
    out += [f"| precision | {precision} | |", "", "## Differential per sample", ""]
    out += [
        "Pipeline share (95 % Clopper-Pearson interval) / reference share; `*` marks a reference "
        "share outside the pipeline's interval.",
        "",
        "| sample | cells (pipeline / reference) | " + " | ".join(shares) + " |",
        "|---|---|" + "---|" * len(shares),
    ]
    for s in data["samples"]:
        cells = []
        for name in shares:
            c = s["classes"].get(name)
            if c is None:
                cells.append("-")
                continue
            low, high = c["pipeline_ci_percent"]
            ref = "-" if c["reference_percent"] is None else f"{c['reference_percent']:.1f}"
            mark = "*" if c["reference_inside_pipeline_ci"] is False else ""
            cells.append(f"{c['pipeline_percent']:.1f} ({low:.1f}-{high:.1f}) / {ref}{mark}")
        out.append(
            f"| {s['sample']} | {s['pipeline_cells']} / {s['reference_cells']} | "
            + " | ".join(cells)
            + " |"
        )
    out += [
        "",
        f"Reference inside the pipeline's 95 % interval: {agr['reference_inside_pipeline_ci']} "
        f"of {agr['intervals']} ({_pct(agr['coverage'])}); pipeline inside the reference's "
        f"interval: {agr['pipeline_inside_reference_ci']} ({_pct(agr['coverage_reference_ci'])}).",
        "",
        "## Bias and limits of agreement (percentage points, pipeline - reference)",
        "",
        "| class | samples | bias | SD | 95 % limits of agreement |",
        "|---|---|---|---|---|",
    ]
    for name in shares:
        a = agr["per_class"][name]
        sd = "-" if a["sd_pp"] is None else f"{a['sd_pp']:.1f}"
        loa = "-" if a["loa_pp"] is None else f"{a['loa_pp'][0]:+.1f} to {a['loa_pp'][1]:+.1f}"
        out.append(f"| {name} | {a['samples']} | {_pp(a['bias_pp'])} | {sd} | {loa} |")
    seg_settings = ", ".join(f"{k} = {v:g}" for k, v in data["segmentation_settings"].items())
    out += ["", f"Segmentation settings: {seg_settings}.", ""]
    return "\n".join(out)


def plots(data: dict[str, Any], folder: Path) -> list[Path]:
    """Confusion matrix, pipeline vs reference shares, Bland-Altman per class (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    confusion = np.array(data["classification"]["confusion"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=9)
    matched, shares = matched_names(data), differential_names(data)
    ax.set_xticks(range(len(matched)), matched)
    ax.set_yticks(range(len(matched)), matched)
    ax.set_xlabel("pipeline")
    ax.set_ylabel("reference")
    ax.set_title("matched cells")
    fig.tight_layout()
    written.append(folder / "confusion.png")
    atomic_write_figure(fig, written[-1], dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(2, len(shares), figsize=(3 * len(shares), 6), squeeze=False)
    for k, name in enumerate(shares):
        rows = [
            s["classes"][name]
            for s in data["samples"]
            if name in s["classes"] and s["classes"][name]["reference_percent"] is not None
        ]
        ref = np.array([c["reference_percent"] for c in rows], dtype=float)
        pipe = np.array([c["pipeline_percent"] for c in rows], dtype=float)
        top = axes[0, k]
        if rows:
            err = np.array([[p - c["pipeline_ci_percent"][0], c["pipeline_ci_percent"][1] - p]
                            for p, c in zip(pipe, rows, strict=True)]).T  # fmt: skip
            top.errorbar(ref, pipe, yerr=err, fmt="o", ms=3, capsize=2)
        top.plot([0, 100], [0, 100], color="grey", lw=0.8)
        top.set_title(name)
        top.set_xlabel("reference %")
        top.set_ylabel("pipeline % (95% CI)")
        bottom = axes[1, k]
        bottom.scatter((ref + pipe) / 2, pipe - ref, s=10)
        a = data["agreement"]["per_class"][name]
        if a["bias_pp"] is not None:
            bottom.axhline(a["bias_pp"], color="C1")
        if a["loa_pp"] is not None:
            for limit in a["loa_pp"]:
                bottom.axhline(limit, color="C1", ls="--")
        bottom.set_xlabel("mean %")
        bottom.set_ylabel("pipeline - reference, pp")
    fig.tight_layout()
    written.append(folder / "agreement.png")
    atomic_write_figure(fig, written[-1], dpi=80)
    plt.close(fig)
    return written


def write_report(data: dict[str, Any], folder: Path) -> list[Path]:
    """validation.json, validation.md and the plots in `folder`."""
    json_path = folder / "validation.json"
    atomic_write_text(json_path, json.dumps(data, indent=1))
    md_path = folder / "validation.md"
    atomic_write_text(md_path, markdown(data))
    return [json_path, md_path, *plots(data, folder)]

"""The one counting implementation: per-cell results -> flags, tallies, percentages, 95% CIs.

Used by the classify worker (`result_from_heads`: disagreement and flags), the aggregator and the live
table (`summarize` over a `SampleLedger`), and the store and report (the ledger rebuilt from stored
rows). Rules:

- Disagreement between heads: the mean total-variation distance between each head's softmax and the
  heads' mean, ``mean_h 0.5 * sum_k |p_hk - pbar_k|``, in [0, 1 - 1/H]; 0 for one head or none.
- A cell is flagged when its top probability is below `min_probability` or its disagreement is above
  `max_disagreement`; the reason says which. A flagged cell keeps its best guess (argmax of the mean
  probabilities) and still counts toward that class; `cells_flagged` says how many to review. (A
  differential that dropped flagged cells would be biased against the classes the model finds hard.)
- A cell the model's open-set score sets apart (reason `unidentified: ...`, `classifier/open_set.py`)
  is flagged too but is not counted in any class: like an analyser's unclassified cells it is left out
  of the percentages and reported as `cells_unidentified` (the differential's denominator is the cells
  identified as white cells). Its best guess is kept for the reviewer.
- Classes beyond the five (a model's `classes`): IG, BLAST and RL count in the white-cell differential
  beside the five; NRBC are not white cells and are reported per 100 white cells (`nrbc_per_100_wbc`).
- Confidence intervals: Clopper-Pearson exact binomial 95% intervals, computed from beta quantiles
  (scipy.stats.beta.ppf; identical to scipy.stats.binomtest(k, n).proportion_ci(method="exact")).
  With zero cells the interval is [0, 100] % and every percentage is 0.
- Stop rule (`stop_decision`, over `ledger.SampleLedger`, which decides which cells count: the first
  `target_cells` in (fov, cell_index) order over the leading resolved fields, so arrival order, retries
  and killed workers never change the answer): the differential is final when the target is reached,
  or when all `fields_total` fields are resolved, or when the sample is aborted. Status is `complete`,
  or `incomplete` when a failed field lies among the fields the count used (or the run was aborted),
  with the reason. While running, the summary is provisional over every distinct result received.
- Blank and saturated fields (`field_quality`: a segment worker fails them with a reason of their
  own) are counted apart in `fields_blank` / `fields_saturated`, besides `fields_failed`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from leukoscope.errors import PipelineError
from leukoscope.results.ledger import SampleLedger
from leukoscope.results.quality_kinds import image_problems
from leukoscope.types import (
    CELL_CLASSES,
    EXTRA_CLASSES,
    NOT_WHITE,
    CellClass,
    CellKey,
    CellResult,
    ClassCount,
    SampleStatus,
    SampleSummary,
)

CONFIDENCE = 0.95


def disagreement(head_probabilities: np.ndarray | Sequence[Sequence[float]]) -> float:
    """Mean total-variation distance between each head's distribution and the heads' mean."""
    heads = np.asarray(head_probabilities, dtype=np.float64)
    if heads.ndim != 2 or heads.shape[0] < 2:
        return 0.0
    mean = heads.mean(axis=0)
    return float(0.5 * np.abs(heads - mean).sum(axis=1).mean())


def _beside(value: float, limit: float, direction: int) -> str:
    """`value` with two decimals; where that reads as the limit itself, three, rounded away from
    the limit (down for direction -1, up for +1), so that 0.5996 against 0.60 reads 0.599."""
    shown = f"{value:.2f}"
    if shown != f"{limit:.2f}":
        return shown
    scaled = value * 1000.0
    rounded = math.floor(scaled) if direction < 0 else math.ceil(scaled)
    return f"{rounded / 1000.0:.3f}"


def flag_reason(
    probabilities: Sequence[float], spread: float, min_probability: float, max_disagreement: float
) -> str:
    """Why a cell needs review ("" when it does not)."""
    reasons = []
    top = max(probabilities) if len(probabilities) else 0.0
    if top < min_probability:
        reasons.append(
            f"low probability {_beside(top, min_probability, -1)} < {min_probability:.2f}"
        )
    if spread > max_disagreement:
        shown = _beside(spread, max_disagreement, 1)
        reasons.append(f"head disagreement {shown} > {max_disagreement:.2f}")
    return "; ".join(reasons)


def result_from_heads(
    key: CellKey,
    head_probabilities: np.ndarray | Sequence[Sequence[float]],
    *,
    min_probability: float,
    max_disagreement: float,
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0),
    unidentified: str = "",
    classes: Sequence[CellClass] = CELL_CLASSES,
) -> CellResult:
    """A CellResult from per-head softmax outputs (heads x classes): mean, best guess, flags;
    `unidentified` (the open-set reason, or "") comes first in the flag reason."""
    heads = np.asarray(head_probabilities, dtype=np.float64)
    if heads.ndim != 2 or heads.shape[0] < 1 or heads.shape[1] != len(classes):
        raise PipelineError(
            f"head probabilities must be heads x {len(classes)}, got {list(heads.shape)}"
        )
    mean = heads.mean(axis=0)
    spread = disagreement(heads)
    probabilities = tuple(float(p) for p in mean)
    reason = flag_reason(probabilities, spread, min_probability, max_disagreement)
    reason = "; ".join(r for r in (unidentified, reason) if r)
    return CellResult(
        key=key,
        cell_class=classes[int(np.argmax(mean))],
        probabilities=probabilities,
        head_probabilities=tuple(tuple(float(p) for p in row) for row in heads),
        disagreement=spread,
        flagged=bool(reason),
        flag_reason=reason,
        bbox=bbox,
    )


def clopper_pearson(count: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial confidence interval of count/total, as fractions; (0, 1) when total is 0."""
    if total <= 0:
        return 0.0, 1.0
    if not 0 <= count <= total:
        raise PipelineError(f"count {count} outside 0..{total}")
    from scipy import stats  # here, not at import: it takes a second to load (CLI start-up)

    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else float(stats.beta.ppf(alpha / 2, count, total - count + 1))
    high = 1.0 if count == total else float(stats.beta.ppf(1 - alpha / 2, count + 1, total - count))
    return low, high


def class_counts(counts: Mapping[CellClass, int]) -> list[ClassCount]:
    """Count, percent and 95% CI (percent) of the five, in canonical order, then of any white-cell
    class beyond them that `counts` holds (IG, BLAST, RL) when counted at least once."""
    extra = [c for c in EXTRA_CLASSES if c not in NOT_WHITE and counts.get(c, 0)]
    total = sum(counts.get(c, 0) for c in (*CELL_CLASSES, *extra))
    rows = []
    for cell_class in (*CELL_CLASSES, *extra):
        k = counts.get(cell_class, 0)
        low, high = clopper_pearson(k, total)
        rows.append(
            ClassCount(
                cell_class=cell_class,
                count=k,
                percent=100.0 * k / total if total else 0.0,
                ci_low_percent=100.0 * low,
                ci_high_percent=100.0 * high,
            )
        )
    return rows


def tally(results: Iterable[CellResult]) -> tuple[dict[CellClass, int], int]:
    """Counts per class (unidentified cells in none) and number flagged, each key counted once."""
    counts, flagged, _ = tally_open(results)
    return counts, flagged


def tally_open(results: Iterable[CellResult]) -> tuple[dict[CellClass, int], int, int]:
    """Counts per class, number flagged and number unidentified, each cell key counted once."""
    seen: set[CellKey] = set()
    counts = dict.fromkeys(CELL_CLASSES, 0)
    flagged = unidentified = 0
    for result in results:
        if result.key in seen:
            continue
        seen.add(result.key)
        flagged += int(result.flagged)
        if result.unidentified:
            unidentified += 1
            continue
        counts[result.cell_class] = counts.get(result.cell_class, 0) + 1
    return counts, flagged, unidentified


def white_counts(counts: Mapping[CellClass, int]) -> dict[CellClass, int]:
    """The counts that make the white-cell differential (NRBC left out: not white cells)."""
    return {c: n for c, n in counts.items() if c not in NOT_WHITE}


@dataclass(frozen=True)
class StopDecision:
    """Whether a sample's differential is final, with its status and the reason."""

    finished: bool
    status: SampleStatus
    reason: str


def stop_decision(ledger: SampleLedger, aborted: str = "") -> StopDecision:
    """Apply the stop rule to `ledger`: target reached, or all fields done, or aborted."""
    counted = ledger.counted()
    failures = ledger.failure_reasons
    if ledger.target_reached():
        last_fov = counted[-1].key.fov
        failed = {f: r for f, r in failures.items() if f < last_fov}
        reason = f"target of {ledger.target_cells} cells reached"
    elif ledger.complete():
        failed = failures
        reason = f"all {ledger.fields_total} fields analysed, {len(counted)} cells"
        if ledger.target_cells:
            reason += f" (fewer than the target of {ledger.target_cells})"
    elif aborted:
        return StopDecision(True, SampleStatus.INCOMPLETE, aborted)
    else:
        return StopDecision(False, SampleStatus.RUNNING, "")
    if not counted:  # nothing to report is never a complete differential
        fields = ledger.fields_total or 0
        why = "no fields of view" if fields == 0 else f"no white cells in {fields} field(s)"
        if failed:
            why += f"; {failed_fields(failed)}"
        return StopDecision(True, SampleStatus.INCOMPLETE, why)
    if failed:
        return StopDecision(True, SampleStatus.INCOMPLETE, f"{failed_fields(failed)}; {reason}")
    return StopDecision(True, SampleStatus.COMPLETE, reason)


def failed_fields(failed: Mapping[int, str], shown: int = 5) -> str:
    """`N field(s) failed (field F: reason; ...)`, the first `shown` reasons spelled out."""
    listed = "; ".join(f"field {f}: {r}" for f, r in list(failed.items())[:shown])
    more = f" and {len(failed) - shown} more" if len(failed) > shown else ""
    return f"{len(failed)} field(s) failed ({listed}{more})"


def received_results(ledger: SampleLedger) -> list[CellResult]:
    """Every distinct result the ledger holds, in (fov, cell_index) order."""
    return [
        state.results[i]
        for fov, state in sorted(ledger.fields.items())
        for i in sorted(state.results)
    ]


def differential_cells(ledger: SampleLedger, aborted: str = "") -> list[CellResult]:
    """The cells a summary counts: exactly the ledger's counted cells once the stop rule is met,
    otherwise every distinct result received so far (the live, provisional view)."""
    if stop_decision(ledger, aborted).finished:
        return ledger.counted()
    return received_results(ledger)


def summarize(
    ledger: SampleLedger,
    *,
    aborted: str = "",
    elapsed_s: float = 0.0,
    timings: Mapping[str, float] | None = None,
) -> SampleSummary:
    """The sample's differential: final once the stop rule is met (exactly the ledger's counted
    cells), otherwise provisional over every result received so far (the live table)."""
    decision = stop_decision(ledger, aborted)
    results = differential_cells(ledger, aborted)
    counts, flagged, unidentified = tally_open(results)
    white = white_counts(counts)
    nrbc = counts.get(CellClass.NRBC, 0)
    problems = image_problems(ledger.failure_reasons)
    wbc = sum(white.values())
    return SampleSummary(
        sample_id=ledger.sample_id,
        classes=class_counts(white),
        cells_counted=wbc,
        cells_flagged=flagged,
        cells_unidentified=unidentified,
        nrbc=nrbc,
        nrbc_per_100_wbc=100.0 * nrbc / wbc if wbc else 0.0,
        fields_done=ledger.fields_done - ledger.fields_failed,
        fields_total=ledger.fields_total,
        fields_failed=ledger.fields_failed,
        fields_blank=len(problems.blank),
        fields_saturated=len(problems.saturated),
        status=decision.status,
        status_reason=decision.reason,
        elapsed_s=elapsed_s,
        timings=dict(timings or {}),
        simulated=ledger.simulated,
    )

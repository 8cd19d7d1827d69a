"""White-cell class composition: parse, validate, and apportion exact counts.

The default is the paper's data set (Yang, Mehta, Ge, MIDL 2022): 4167 NEU, 2027 LYM, 82 MO, 378 EOS,
43 BAS out of 6697 cells, i.e. 62.2 / 30.3 / 1.2 / 5.6 / 0.6 percent. The default keeps the exact ratios
(not the rounded percentages), so apportioning 6697 cells gives exactly the paper's counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from leukoscope.errors import ParameterError
from leukoscope.types import CELL_CLASSES, CellClass

PAPER_COUNTS: dict[CellClass, int] = {
    CellClass.NEU: 4167,
    CellClass.LYM: 2027,
    CellClass.MO: 82,
    CellClass.EOS: 378,
    CellClass.BAS: 43,
}
PAPER_TOTAL = sum(PAPER_COUNTS.values())  # 6697

Composition = dict[CellClass, float]
"""Percent of white cells per class, every class present, summing to 100."""

DEFAULT_COMPOSITION: Composition = {c: 100.0 * n / PAPER_TOTAL for c, n in PAPER_COUNTS.items()}

SUM_TOLERANCE_PERCENT = 0.5
"""A composition may miss 100 by this much (five figures rounded to 0.1 % sum to 99.9); it is rescaled."""


def validate_composition(values: Mapping[Any, float]) -> Composition:
    """Check class names, signs and the sum; return every class's percent, rescaled to sum to 100."""
    result: Composition = {c: 0.0 for c in CELL_CLASSES}
    for key, value in values.items():
        cell_class = _parse_class(key)
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ParameterError(f"composition: {cell_class.value}={value} must be >= 0 percent")
        result[cell_class] = number
    total = sum(result.values())
    if abs(total - 100.0) > SUM_TOLERANCE_PERCENT:
        given = ", ".join(f"{c.value}={v:g}" for c, v in result.items())
        raise ParameterError(
            f"composition must sum to 100 percent (within {SUM_TOLERANCE_PERCENT}), got {total:g}: "
            f"{given}"
        )
    return {c: v * 100.0 / total for c, v in result.items()}


def parse_composition(text: str | None) -> Composition:
    """Parse `NEU=62.2,LYM=30.3,...` (classes left out count 0); None or empty gives the default."""
    if text is None or not text.strip():
        return dict(DEFAULT_COMPOSITION)
    values: dict[CellClass | str, float] = {}
    for item in text.split(","):
        name, sep, number = item.partition("=")
        if not sep:
            raise ParameterError(f"composition item {item.strip()!r} is not CLASS=PERCENT")
        cell_class = _parse_class(name.strip())
        if cell_class in values:
            raise ParameterError(f"composition names {cell_class.value} twice")
        try:
            values[cell_class] = float(number)
        except ValueError:
            raise ParameterError(
                f"composition: {cell_class.value}={number.strip()!r} is not a number"
            ) from None
    return validate_composition(values)


def apportion(total: int, composition: Mapping[CellClass, float]) -> dict[CellClass, int]:
    """Exact integer counts summing to `total` (largest-remainder method, ties in class order)."""
    if total < 0:
        raise ParameterError(f"number of cells must be >= 0, got {total}")
    shares = validate_composition(dict(composition))
    quotas = {c: total * shares[c] / 100.0 for c in CELL_CLASSES}
    counts = {c: int(math.floor(q + 1e-9)) for c, q in quotas.items()}
    left = total - sum(counts.values())
    order = sorted(CELL_CLASSES, key=lambda c: (-(quotas[c] - counts[c]), CELL_CLASSES.index(c)))
    for cell_class in order[:left]:
        counts[cell_class] += 1
    return counts


def probabilities(composition: Mapping[CellClass, float]) -> list[float]:
    """The composition as probabilities in canonical class order."""
    shares = validate_composition(dict(composition))
    return [shares[c] / 100.0 for c in CELL_CLASSES]


def _parse_class(name: CellClass | str) -> CellClass:
    try:
        cell_class = name if isinstance(name, CellClass) else CellClass(name.strip().upper())
        if cell_class not in CELL_CLASSES:
            raise ValueError(cell_class)
        return cell_class
    except ValueError:
        allowed = ", ".join(c.value for c in CELL_CLASSES)
        raise ParameterError(f"unknown cell class {name!r}; allowed: {allowed}") from None

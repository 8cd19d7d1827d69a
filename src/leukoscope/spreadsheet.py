"""CSV for people: every text cell that a spreadsheet would read as a formula is neutralised.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a leading `'`
(OWASP, "CSV Injection"), so a sample id, label or reason cannot run as a formula when the file is
opened in a spreadsheet. Numbers are written as numbers (a negative number stays a number).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value`, with a `'` in front when it is text a spreadsheet would take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of `row` through `safe_cell`."""
    return [safe_cell(value) for value in row]


class SafeWriter:
    """A `csv.writer` whose every row goes through `safe_row`."""

    def __init__(self, handle: Any, **options: Any) -> None:
        options.setdefault("lineterminator", "\n")
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one neutralised row."""
        self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write neutralised rows."""
        for row in rows:
            self.writerow(row)


def csv_text(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> str:
    """A CSV document: `header`, then `rows`, every cell neutralised."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()

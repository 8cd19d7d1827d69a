"""Sample ids are names, not paths: one rule, checked at every door (CLI, storage, wire, store).

A sample id is 1-64 characters of ASCII letters, digits, `.`, `_` and `-`, starting with a letter
or a digit. So it can never hold a path separator, never be `.` or `..`, never start with `-`
(an option) or `.` (a hidden file), and never carry control characters or whitespace into a
file name, a log line, a report or a CSV cell.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from leukoscope.errors import ParameterError

SAMPLE_ID_MAX = 64
SAMPLE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_SAMPLE_ID_RE = re.compile(SAMPLE_ID_PATTERN)
SAMPLE_ID_RULE = (
    f"1-{SAMPLE_ID_MAX} characters of letters, digits, '.', '_' and '-', "
    "starting with a letter or digit"
)


def _sample_id(value: str) -> str:
    if not is_sample_id(value):
        raise ValueError(f"sample id {value!r} is not allowed: use {SAMPLE_ID_RULE}")
    return value


SampleId = Annotated[str, Field(min_length=1, max_length=SAMPLE_ID_MAX), AfterValidator(_sample_id)]
"""A sample id in a pydantic model (wire headers, acquisition.json): the error states the rule."""


def is_sample_id(value: object) -> bool:
    """True when `value` is a valid sample id."""
    return isinstance(value, str) and _SAMPLE_ID_RE.fullmatch(value) is not None


def check_sample_id(value: str) -> str:
    """`value` if it is a valid sample id, else ParameterError naming the rule."""
    if not is_sample_id(value):
        raise ParameterError(f"sample id {value!r} is not allowed: use {SAMPLE_ID_RULE}")
    return value

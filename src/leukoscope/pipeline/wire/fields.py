"""Field-by-name copying between Python objects and header models, both ways.

A header field is read from (and written back to) the attribute of the same name, so a field is
declared once, in its header model; nothing lists the fields a second time.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from leukoscope.errors import WireError

T = TypeVar("T")


def json_default(value: Any) -> Any:
    """For `json.dumps(default=...)`: what JSON cannot hold as it is (numpy scalars, enums that are
    not str or int) as plain data. Tuples, str and int enums and float subclasses it encodes itself."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_HEADER_FIELDS: dict[type[BaseModel], tuple[tuple[str, Any], ...]] = {}


def _header_fields(model: type[BaseModel]) -> tuple[tuple[str, Any], ...]:
    """(name, default) of every field of `model`, in order (cached: pydantic's look-up is slow)."""
    fields = _HEADER_FIELDS.get(model)
    if fields is None:
        fields = _HEADER_FIELDS[model] = tuple(
            (name, info.default) for name, info in model.model_fields.items()
        )
    return fields


_FillPlan = tuple[tuple[str, int, Any], ...]
_FILL_PLANS: dict[tuple[type[BaseModel], tuple[type, ...], tuple[str, ...]], _FillPlan] = {}


def _fill_plan(
    model: type[BaseModel], sources: tuple[object, ...], given: tuple[str, ...]
) -> _FillPlan:
    """(name, source index or -1 for given / -2 for the default, default) per field (cached)."""
    key = (model, tuple(type(s) for s in sources), given)
    plan = _FILL_PLANS.get(key)
    if plan is None:
        steps = []
        for name, default in _header_fields(model):
            index = (
                -1
                if name in given
                else next((i for i, source in enumerate(sources) if hasattr(source, name)), -2)
            )
            if index == -2 and name != "kind":
                raise WireError(f"{model.__name__}: no value for header field {name!r}")
            steps.append((name, index, default))
        plan = _FILL_PLANS[key] = tuple(steps)
    return plan


def fill(model: type[BaseModel], *sources: object, **given: Any) -> dict[str, Any]:
    """The header `model` as data for `json.dumps(default=json_default)`: each field from `given`, else from the first source with an
    attribute of that name, else the model's default for `kind`. A field with no value is an error
    (a header field was added without the attribute it comes from)."""
    out: dict[str, Any] = {}
    for name, index, default in _fill_plan(model, sources, tuple(given)):
        if index >= 0:
            out[name] = getattr(sources[index], name)
        else:
            out[name] = given[name] if index == -1 else default
    return out


_Plan = tuple[tuple[str, int], ...]
_PlanKey = tuple[type, tuple[type, ...], tuple[str, ...]]
_PLANS: dict[_PlanKey, _Plan] = {}


def _plan(key: _PlanKey) -> _Plan:
    """Which header (by position) each field of the class not given is read from (cached)."""
    cls, headers, given = key
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
    else:
        names = list(getattr(cls, "_fields", ()))  # a NamedTuple
    found = (
        (name, next((i for i, h in enumerate(headers) if name in dict(_header_fields(h))), -1))
        for name in names
        if name not in given
    )
    plan = _PLANS[key] = tuple((name, i) for name, i in found if i >= 0)
    return plan


def take(cls: type[T], *headers: BaseModel, **given: Any) -> T:
    """A `cls` (dataclass or NamedTuple) built from `given` and the same-named fields of `headers`
    (the first that has each); fields found nowhere keep the class's default."""
    key = (cls, tuple(map(type, headers)), tuple(given))
    for name, i in _PLANS.get(key) or _plan(key):
        given[name] = getattr(headers[i], name)
    return cls(**given)

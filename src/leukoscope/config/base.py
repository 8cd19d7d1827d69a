"""What every settings section shares: no unknown keys, no NaN/inf, validated on assignment."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A settings section: unknown keys, NaN and inf are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def merge_over(defaults: dict[Any, Any], given: Any) -> Any:
    """A partial per-modality/per-class table from a file, filled in from the defaults."""
    if not isinstance(given, dict):
        return given
    merged: dict[Any, Any] = {getattr(k, "value", k): v for k, v in defaults.items()}
    for key, value in given.items():
        base = merged.get(key)
        if isinstance(base, BaseModel) and isinstance(value, dict):
            merged[key] = {**base.model_dump(), **value}
        else:
            merged[key] = value
    return merged

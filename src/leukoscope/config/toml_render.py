"""Settings written as TOML: every default with its description (`config init`), or the effective
settings (`config show`)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel


def _toml_value(value: Any) -> str:
    if isinstance(value, Enum):  # str-valued enums (Modality) are written by value
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _emit(model: BaseModel, prefix: str, lines: list[str]) -> None:
    scalars: list[str] = []
    tables: list[tuple[str, BaseModel | dict[str, Any]]] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            tables.append((name, value))
            continue
        if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
            tables.append((name, value))
            continue
        if value is None:
            scalars.append(f"# {name} = ...  ({info.description or 'unset'})")
            continue
        if info.description:
            scalars.append(f"# {info.description}")
        if isinstance(value, dict):
            inner = ", ".join(
                f"{getattr(k, 'value', k)} = {_toml_value(v)}" for k, v in value.items()
            )
            scalars.append(f"{name} = {{ {inner} }}")
        else:
            scalars.append(f"{name} = {_toml_value(value)}")
    if scalars:
        if prefix:
            doc = (type(model).__doc__ or "").strip().splitlines()
            lines.append("")
            lines.append(f"[{prefix}]")
            if doc:
                lines.append(f"# {doc[0]}")
        lines.extend(scalars)
    for name, value in tables:
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(value, BaseModel):
            _emit(value, path, lines)
        else:
            for key, item in value.items():
                _emit(item, f"{path}.{getattr(key, 'value', key)}", lines)


def render_default_toml() -> str:
    """A commented TOML file holding every default setting."""
    from leukoscope.config import Settings

    lines = [
        "# leukoscope configuration. Every key is optional; this file lists the defaults.",
        "# Override any key from the environment: LEUKOSCOPE__SECTION__KEY=value.",
    ]
    _emit(Settings(), "", lines)
    return "\n".join(lines) + "\n"


def render_toml(settings: BaseModel) -> str:
    """The effective settings as TOML (for `config show`)."""
    lines: list[str] = []
    _emit(settings, "", lines)
    return "\n".join(lines).lstrip("\n") + "\n"

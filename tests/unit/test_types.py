"""Types: canonical order of modalities and classes, modality parsing, error hierarchy."""

from __future__ import annotations

import pytest

from leukoscope import errors
from leukoscope.types import CELL_CLASSES, MODALITIES, Modality, parse_modalities


def test_canonical_orders() -> None:
    assert [m.value for m in MODALITIES] == ["color1", "color2", "color3", "fluorescence"]
    assert [c.value for c in CELL_CLASSES] == ["NEU", "LYM", "MO", "EOS", "BAS"]


def test_parse_modalities_sorts_and_dedups() -> None:
    parsed = parse_modalities("fluorescence,color1,color1")
    assert parsed == (Modality.COLOR1, Modality.FLUORESCENCE)


@pytest.mark.parametrize("bad", ["", "color4", "color1,uv"])
def test_parse_modalities_rejects(bad: str) -> None:
    with pytest.raises(errors.ParameterError):
        parse_modalities(bad)


def test_leaf_errors_are_builtins_too() -> None:
    assert issubclass(errors.CameraTimeout, TimeoutError)
    assert issubclass(errors.CameraTimeout, errors.LeukoscopeError)
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.StorageError, OSError)
    leaves = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, Exception)
        and cls is not errors.LeukoscopeError
    ]
    assert all(issubclass(cls, errors.LeukoscopeError) for cls in leaves)

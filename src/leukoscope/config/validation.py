"""`[validation]`: the acceptance criteria `leukoscope validate` judges a model by (PASS/FAIL).

Defaults and their sources: docs/validation.md ("Acceptance criteria").
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from leukoscope.config.base import Section
from leukoscope.types import CellClass

BiasLimit = Annotated[float, Field(ge=0.0, le=100.0)]


def _default_bias() -> dict[CellClass, float]:
    # About three quarters of the 95 % half-width of a 200-cell manual count (Rümke; binomial) at
    # a mid-reference-range share: NEU 60 % +-6.8, LYM 30 % +-6.4, MO 6 % +-3.3, EOS 3 % +-2.4,
    # BAS 1 % +-1.4 percentage points.
    return {
        CellClass.NEU: 5.0,
        CellClass.LYM: 5.0,
        CellClass.MO: 3.0,
        CellClass.EOS: 2.0,
        CellClass.BAS: 1.0,
    }


class ValidationConfig(Section):
    """Acceptance criteria for `leukoscope validate` (a model passes only if all hold)."""

    min_samples: int = Field(
        default=1, ge=1, le=100_000, description="labelled samples at least (a lab: 20 or more)"
    )
    min_segmentation_recall: float = Field(
        default=0.95, ge=0.0, le=1.0, description="share of labelled white cells found, at least"
    )
    recall_whole_cells_only: bool = Field(
        default=True,
        description="recall over cells at least 10 um from every frame edge (border cells are "
        "dropped by design); false: over every label",
    )
    min_accuracy: float = Field(
        default=0.90, ge=0.0, le=1.0, description="classification accuracy on matched cells"
    )
    max_bias_pp: dict[CellClass, BiasLimit] = Field(
        default_factory=_default_bias,
        description="largest absolute mean bias of the differential per class, percentage points",
    )
    min_coverage: float = Field(
        default=0.80,
        ge=0.0,
        le=1.0,
        description="share of reference values inside the pipeline's 95 % interval, at least",
    )

    @field_validator("max_bias_pp", mode="before")
    @classmethod
    def _fill_bias(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {**{c.value: v for c, v in _default_bias().items()}, **value}

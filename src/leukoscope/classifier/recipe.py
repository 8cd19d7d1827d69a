"""The training recipe: everything that decides what a training run computes (TrainConfig, stored
in run.json and checkpoints), read from command-line values, and what it means for augmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leukoscope.config import format_validation_error
from leukoscope.errors import ConfigError
from leukoscope.types import Modality, parse_modalities

if TYPE_CHECKING:  # batches imports torch; the command line reads TrainConfig's defaults without
    from leukoscope.classifier.batches import AugmentConfig


class TrainConfig(BaseModel):
    """Everything that decides what a training run computes (stored in run.json and checkpoints)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: str = "hs_mm_mimo"
    modalities: tuple[Modality, ...] | None = Field(
        default=None, description="None = every modality folder of the dataset"
    )
    input_size: int = Field(default=64, ge=8, le=1024)
    width: float = 1.0
    options: dict[str, str] = Field(default_factory=dict, description="architecture options")
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=64, ge=2)
    lr: float = Field(default=2e-3, gt=0, le=1.0)
    weight_decay: float = Field(default=1e-4, ge=0, le=1.0)
    warmup_epochs: float = Field(default=0.0, ge=0)
    rho: float = Field(default=0.5, ge=0.0, le=1.0, description="MIMO input repetition")
    batch_repetition: int = Field(default=1, ge=1, description="MIMO batch repetition R")
    balance: float = Field(default=0.5, ge=0.0, le=1.0, description="class balancing power")
    augment: bool = Field(default=True, description="random flips/90-degree rotations")
    scale_jitter: float = Field(default=0.0, ge=0.0, le=0.5, description="+-fraction; 0 = off")
    shift_jitter: float = Field(default=0.0, ge=0.0, le=0.5, description="+-fraction; 0 = off")
    contrast_jitter: float = Field(default=0.0, ge=0.0, le=1.0, description="per modality")
    gain_jitter: float = Field(default=0.0, ge=0.0, le=1.0, description="per modality")
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    folds: int = Field(default=5, ge=2)
    seed: int = 0
    open_set_rate: float = Field(
        default=0.05,
        ge=0.0,
        lt=1.0,
        description="normal cells the open-set flag sets apart; 0: no fit",
    )
    open_set_holdout: float = Field(
        default=0.1, ge=0.0, le=0.5, description="cells the final fit leaves out to fit it on"
    )


OPEN_SET_KEYS = ("open_set_rate", "open_set_holdout")
"""Keys a run.json written before them lacks: read as their defaults."""


def make_config(arch: str, modalities: str | None = None, **fields: Any) -> TrainConfig:
    """A validated TrainConfig from command-line values (modalities comma-separated)."""
    chosen = parse_modalities(modalities) if modalities else None
    try:
        return TrainConfig.model_validate({"arch": arch, "modalities": chosen, **fields})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "training options")) from None


JITTERS = ("scale", "shift", "contrast", "gain")


def jitter_options(text: str | None) -> dict[str, float]:
    """`scale=0.1,gain=0.05` -> {"scale_jitter": 0.1, "gain_jitter": 0.05} (bounds: TrainConfig)."""
    options: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in JITTERS:
            raise ConfigError(
                f"jitter {item.strip()!r}: expected NAME=VALUE with NAME in {', '.join(JITTERS)}"
            )
        try:
            options[f"{name}_jitter"] = float(value)
        except ValueError:
            raise ConfigError(f"jitter {name}: {value.strip()!r} is not a number") from None
    return options


def augment_config(config: TrainConfig) -> AugmentConfig | None:
    """The training augmentation `config` asks for (None: none at all)."""
    from leukoscope.classifier.batches import AugmentConfig

    if not config.augment:
        return None
    return AugmentConfig(
        scale=config.scale_jitter,
        shift=config.shift_jitter,
        contrast=config.contrast_jitter,
        gain=config.gain_jitter,
    )


def recipe_summary(config: TrainConfig) -> str:
    """The recipe in one phrase, e.g. for a table's settings line."""
    jitter = [
        f"{name} {getattr(config, f'{name}_jitter'):g}"
        for name in JITTERS
        if getattr(config, f"{name}_jitter") > 0
    ]
    augment = "flips/rotations" if config.augment else "no augmentation"
    if jitter and config.augment:
        augment += " + " + ", ".join(jitter) + " jitter"
    smoothing = f", label smoothing {config.label_smoothing:g}" if config.label_smoothing else ""
    return (
        f"AdamW lr {config.lr:g} weight decay {config.weight_decay:g}, warm-up "
        f"{config.warmup_epochs:g} epoch(s), {augment}, balance {config.balance:g}{smoothing}"
    )

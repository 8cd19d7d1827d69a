"""Every setting, as pydantic models: validated, documented, loaded from TOML with env overrides.

Environment overrides use `LEUKOSCOPE__SECTION__KEY=value` (double underscores between levels); the
value is parsed as a TOML value when it can be (numbers, booleans, arrays), else taken as a string.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from leukoscope.config.base import Section, merge_over
from leukoscope.config.lis import LisConfig as LisConfig
from leukoscope.config.quality import QualityConfig as QualityConfig
from leukoscope.config.rig import AcquisitionConfig as AcquisitionConfig
from leukoscope.config.rig import CameraConfig as CameraConfig
from leukoscope.config.rig import LightChannel as LightChannel
from leukoscope.config.rig import LightsConfig as LightsConfig
from leukoscope.config.rig import RegistrationConfig as RegistrationConfig
from leukoscope.config.rig import RigConfig as RigConfig
from leukoscope.config.validation import ValidationConfig as ValidationConfig
from leukoscope.errors import ConfigError
from leukoscope.limits import DEFAULT_CROP_UM
from leukoscope.types import CellClass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "LEUKOSCOPE__"
CONFIG_ENV = "LEUKOSCOPE_CONFIG"


class SegmentationConfig(Section):
    """White-cell detection in the fluorescence frame; every size in micrometres."""

    working_px_um: float = Field(
        default=1.0, gt=0.0, le=10.0, description="pixel size of the detection image, um"
    )
    background_um: float = Field(
        default=30.0, gt=0.0, le=1000.0, description="background window (opening + blur), um"
    )
    smooth_um: float = Field(default=0.75, gt=0.0, le=20.0, description="Gaussian smoothing, um")
    threshold_sigmas: float = Field(
        default=6.0, gt=0.0, le=100.0, description="noise floor: median + this x robust sigma"
    )
    close_um: float = Field(
        default=1.0, gt=0.0, le=20.0, description="closing inside a nucleus, um"
    )
    marker_sigma_um: float = Field(
        default=1.5, gt=0.0, le=20.0, description="blur of the split-marker landscape, um"
    )
    marker_radius_um: float = Field(
        default=4.0, gt=0.0, le=50.0, description="a split marker is the maximum within this, um"
    )
    max_nucleus_um: float = Field(
        default=7.0, gt=0.0, le=50.0, description="lobes merge while they fit this radius, um"
    )
    max_cell_um: float = Field(
        default=9.0,
        gt=0.0,
        le=50.0,
        description="a piece under max_lobe_um2 joins a neighbour while they fit this radius, um",
    )
    max_lobe_um2: float = Field(
        default=45.0, gt=0.0, description="pieces smaller than this are lobes or fragments, um^2"
    )
    min_area_um2: float = Field(default=6.0, gt=0.0, description="smallest nucleus area, um^2")
    max_area_um2: float = Field(default=250.0, gt=0.0, description="largest nucleus area, um^2")
    min_contrast: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="threshold at least this share of the brightest signal (clean backgrounds)",
    )
    max_extent_um: float = Field(
        default=12.0, gt=0.0, le=100.0, description="largest nucleus radius from its centre, um"
    )
    max_regions: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description="a field with more candidate regions fails (noise, a bubble, a smear edge)",
    )
    border_um: float = Field(
        default=2.5,
        gt=0.0,
        le=100.0,
        description="cells this close to (or cut along) the border are dropped, um",
    )
    border_share: float = Field(
        default=0.6,
        gt=0.0,
        le=1.0,
        description="a nucleus along the border over this share of its width is cut (dropped)",
    )
    crop_um: float = Field(
        default=DEFAULT_CROP_UM,
        gt=0.0,
        le=500.0,
        description="side of the square cut around each cell, um",
    )

    @model_validator(mode="after")
    def _ordered(self) -> SegmentationConfig:
        if self.min_area_um2 >= self.max_area_um2:
            raise ValueError(
                f"min_area_um2 {self.min_area_um2} must be below max_area_um2 {self.max_area_um2}"
            )
        return self


class PipelineConfig(Section):
    """Stages, sockets, queues and the counting rules."""

    bind_host: str = Field(default="127.0.0.1", description="address tcp endpoints bind to")
    base_port: int = Field(default=5550, ge=1024, le=65500, description="first tcp port used")
    segment_workers: int = Field(default=1, ge=1, le=64)
    classify_workers: int = Field(default=1, ge=1, le=64)
    high_water_mark: int = Field(default=8, ge=1, le=100_000, description="messages per socket")
    batch_size: int = Field(default=32, ge=1, le=4096, description="cells per classify batch")
    batch_wait_ms: float = Field(default=20.0, ge=0.0, le=10_000.0, description="batch wait, ms")
    target_cells: int = Field(default=200, ge=0, description="stop after this many cells; 0 = all")
    min_probability: float = Field(
        default=0.6, ge=0.0, le=1.0, description="flag a cell whose top probability is below"
    )
    max_disagreement: float = Field(
        default=0.25, ge=0.0, le=1.0, description="flag a cell whose heads disagree more"
    )
    worker_timeout_s: float = Field(
        default=10.0, gt=0.0, le=3600.0, description="re-dispatch after, s"
    )
    unit_budget_s: float = Field(
        default=5.0,
        gt=0.0,
        le=3600.0,
        description="a worker gives up a field's segmentation after this long, s",
    )
    connect_timeout_s: float = Field(
        default=300.0,
        gt=0.0,
        le=86400.0,
        description="workers and send give up after this long without a serve process, s",
    )
    live_endpoint: str = Field(
        default="tcp://127.0.0.1:5554",
        description="embedded runs also publish live summaries here; empty = off",
    )

    @field_validator("live_endpoint")
    @classmethod
    def _live_port(cls, value: str) -> str:
        if value.startswith("tcp://"):
            port = value.rpartition(":")[2]
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"expected tcp://HOST:PORT with a port 1-65535, got {value!r}")
        return value

    curve_server_key: Path | None = Field(default=None, description="CurveZMQ server secret key")
    curve_client_key: Path | None = Field(default=None, description="CurveZMQ client secret key")
    results_db: Path = Field(default=Path("leukoscope.sqlite"), description="SQLite results")
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)


class ClassifierConfig(Section):
    """Which model runs, and how."""

    model_path: Path | None = Field(default=None, description="checkpoint; empty = shipped default")
    backend: Literal["torch", "onnx"] = Field(default="onnx", description="torch or onnx")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto")
    threads: int = Field(default=0, ge=0, le=256, description="CPU threads; 0 = all cores")


class BatchConfig(Section):
    """`leukoscope batch` on a Dask cluster (docs/deployment.md); needs `leukoscope[dask]`."""

    scheduler: str = Field(
        default="",
        description="Dask scheduler: local, tcp://HOST:8786 or a scheduler file; empty = in process",
    )
    local_workers: int = Field(
        default=0, ge=0, le=256, description="worker processes of `local`; 0 = one per core"
    )


class ReferenceRange(Section):
    """Normal range of one class, percent of white cells."""

    low_percent: float = Field(ge=0.0, le=100.0)
    high_percent: float = Field(ge=0.0, le=100.0)

    @model_validator(mode="after")
    def _ordered(self) -> ReferenceRange:
        if self.low_percent > self.high_percent:
            raise ValueError(f"low_percent {self.low_percent} > high_percent {self.high_percent}")
        return self


def _default_ranges() -> dict[CellClass, ReferenceRange]:
    # Typical adult reference intervals (e.g. Bain, "Blood Cells", 5th ed.); see docs/report.md.
    bounds = {
        CellClass.NEU: (40.0, 75.0),
        CellClass.LYM: (20.0, 45.0),
        CellClass.MO: (2.0, 10.0),
        CellClass.EOS: (1.0, 6.0),
        CellClass.BAS: (0.0, 2.0),
    }
    return {c: ReferenceRange(low_percent=lo, high_percent=hi) for c, (lo, hi) in bounds.items()}


class ReportConfig(Section):
    """Per-lab reference ranges and review thresholds."""

    reference_ranges: dict[CellClass, ReferenceRange] = Field(default_factory=_default_ranges)

    @field_validator("reference_ranges", mode="before")
    @classmethod
    def _fill_ranges(cls, value: Any) -> Any:
        return merge_over(_default_ranges(), value)

    max_flagged_percent: float = Field(default=10.0, ge=0.0, le=100.0)


class ReviewConfig(Section):
    """The review web page (`leukoscope review`)."""

    session_minutes: int = Field(
        default=30, ge=1, le=1440, description="a login ends after this many idle minutes"
    )
    require_verification: bool = Field(
        default=False,
        description="a release needs a second, different person: the first one's release is a "
        "submission, the second one's releases it",
    )


class Settings(Section):
    """The whole configuration file."""

    rig: RigConfig = Field(default_factory=RigConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    lis: LisConfig = Field(default_factory=LisConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    value = error.get("input")
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key (value {value!r}); check the spelling"
    return f"{location} = {value!r}: {message}"


def format_validation_error(
    exc: ValidationError, source: str, env_keys: dict[tuple[str, ...], str] | None = None
) -> str:
    """One line per problem: where it was set, the key, the value given and what is allowed.

    `env_keys` maps key paths set from the environment to their variable, which is then blamed
    instead of `source`.
    """
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        blame = next(
            (
                f"environment {name}"
                for key, name in (env_keys or {}).items()
                if loc[: len(key)] == key
            ),
            source,
        )
        lines.append(f"{blame}: {_describe(error)}")
    return "\n".join(lines)


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(
    data: dict[str, Any],
    environ: dict[str, str],
    env_keys: dict[tuple[str, ...], str] | None = None,
) -> dict[str, Any]:
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment {name}: {part} is not a section")
            node = child
        if path:
            node[path[-1]] = _env_value(raw)
            if env_keys is not None:
                env_keys[tuple(path)] = name
    return data


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load settings from `path` (or $LEUKOSCOPE_CONFIG, or defaults) plus env overrides."""
    env = dict(os.environ if environ is None else environ)
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a folder, not a config file") from None
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot read the config file: {exc.strerror or exc}"
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    env_keys: dict[tuple[str, ...], str] = {}
    data = _apply_env(data, env, env_keys)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, env_keys)) from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None

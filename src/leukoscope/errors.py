"""One root exception type; every leaf also inherits the matching built-in."""

from __future__ import annotations


class LeukoscopeError(Exception):
    """Root of every error leukoscope raises on purpose."""


class ConfigError(LeukoscopeError, ValueError):
    """A configuration file or value is invalid."""


class ParameterError(LeukoscopeError, ValueError):
    """A user-supplied parameter (composition, count, size...) is invalid."""


class InstrumentError(LeukoscopeError, RuntimeError):
    """Base for hardware-facing failures."""


class LightControllerError(InstrumentError):
    """The light controller answered with an error or broke the protocol."""


class LightTimeout(LightControllerError, TimeoutError):
    """The light controller did not answer in time (after retries)."""


class LightRejected(LightControllerError):
    """The light controller answered `ERR <code> <text>`."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class LightDisconnected(LightControllerError, ConnectionError):
    """The light controller's port vanished (unplugged, powered off)."""


class CameraError(InstrumentError):
    """The camera or its GenTL producer failed."""


class CameraTimeout(CameraError, TimeoutError):
    """No frame arrived within the timeout."""


class AcquisitionError(InstrumentError):
    """A field of view could not be acquired."""


class StorageError(LeukoscopeError, OSError):
    """A saved acquisition, dataset or result file is missing, malformed or truncated."""


class DatasetError(LeukoscopeError, ValueError):
    """A training dataset does not follow the documented layout."""


class LabelError(LeukoscopeError, ValueError):
    """A labels file is malformed or does not fit the acquisitions it is used with."""


class CheckpointError(LeukoscopeError, ValueError):
    """A model file is corrupt or does not match what was asked for."""


class WireError(LeukoscopeError, ValueError):
    """A pipeline message is malformed."""


class PipelineError(LeukoscopeError, RuntimeError):
    """The pipeline could not run or complete a sample."""


class SecurityError(LeukoscopeError, PermissionError):
    """A configuration would expose endpoints without authentication."""


class FieldQualityError(PipelineError):
    """A field's cells cannot be analysed (pipeline/field_quality.py): that field fails; `kind`
    says why (a `field_quality.QualityKind` value)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class TooManyRegions(PipelineError):
    """A field holds more candidate regions than segmentation takes (noise, a bubble, a smear
    edge): that field fails (pipeline/segmentation.py)."""


class OverBudget(PipelineError, TimeoutError):
    """A unit of work ran past its time budget (pipeline/budget.py): that unit fails."""


class WorkStopped(PipelineError):
    """A worker was told to stop while it worked on a unit; the unit is left for another."""


class LisError(LeukoscopeError, ValueError):
    """A laboratory-system message is malformed or refused (an order, an ACK), or cannot be
    delivered (leukoscope.lis)."""

"""The messages the pipeline's sockets carry, as Python objects.

Messages without arrays are pydantic models: the model is also the message's header schema.
Messages with arrays are dataclasses around `types.py` objects; their header schemas and the
conversions both ways are in `kinds.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from leukoscope.ids import SampleId
from leukoscope.pipeline.wire.bounds import (
    Count,
    Fov,
    Name,
    PixelSize,
    Role,
    Strict,
    Text,
    Ticket,
    Time,
)
from leukoscope.types import (
    MODALITIES,
    CellCrop,
    CellResult,
    FrameSet,
    Modality,
    SampleSummary,
)

# --- messages without arrays: the pydantic model is the message --------------------------------


class SampleStart(Strict):
    """A sample begins; `fields_total` is known up front for saved acquisitions."""

    kind: Literal["sample_start"] = "sample_start"
    sample_id: SampleId
    fields_total: Count | None = None
    run_id: Name = ""
    settings_digest: Name = ""
    pixel_size_um: PixelSize | None = None
    started_s: Time = 0.0
    acquisition: Text = ""  # saved-acquisition folder: where lost fields can be re-read
    simulated: bool = False  # the fields come from the simulator (marked in every output)


class SampleEnd(Strict):
    """No more fields of view will come for this sample: it had `fields_total` of them."""

    kind: Literal["sample_end"] = "sample_end"
    sample_id: SampleId
    fields_total: Count
    reason: Text = ""  # why acquisition ended early, if it did


class FieldDone(Strict):
    """Segmentation finished a field of view: it produced `cell_count` cells (zero is reported)."""

    kind: Literal["field_done"] = "field_done"
    sample_id: SampleId
    fov: Fov
    cell_count: Count
    worker: Name = ""
    t_available_s: Time = 0.0  # when the field became available (source clock)
    elapsed_s: Time = 0.0  # segmentation time


class FieldFailed(Strict):
    """A field of view could not be analysed (corrupt file, decode error...): it is skipped."""

    kind: Literal["field_failed"] = "field_failed"
    sample_id: SampleId
    fov: Fov
    reason: Text
    stage: Name = ""
    worker: Name = ""
    ticket: Ticket = ""  # from a worker: the ticket of the work it was handed


class Hello(Strict):
    """A worker announces itself when it connects."""

    kind: Literal["hello"] = "hello"
    worker: Name
    role: Role
    host: Name = ""
    pid: Annotated[int, Field(ge=0, le=2**31)] = 0
    version: Name = ""
    sent_s: Time = 0.0


class Heartbeat(Strict):
    """A worker is alive; `in_flight` lists the (sample, fov) it is working on."""

    kind: Literal["heartbeat"] = "heartbeat"
    worker: Name
    role: Role
    sent_s: Time = 0.0
    in_flight: tuple[tuple[SampleId, Fov], ...] = Field(default=(), max_length=10_000)
    processed: Annotated[int, Field(ge=0, le=2**62)] = 0


class Ready(Strict):
    """A worker asks for `credit` more units of work (sent on its work socket); with `reset` the
    worker is idle and its credit is exactly `credit` (how a restarted aggregator learns it)."""

    kind: Literal["ready"] = "ready"
    worker: Name
    role: Role
    credit: Annotated[int, Field(ge=1, le=1024)] = 1
    reset: bool = False


class SummaryMessage(Strict):
    """Live counts of one sample, published on the PUB socket (schema in docs/pipeline.md)."""

    kind: Literal["summary"] = "summary"
    summary: SampleSummary
    sent_s: Time = 0.0
    workers: tuple[Name, ...] = Field(default=(), max_length=1024)


# --- messages with arrays: typed dataclasses around types.py objects ----------------------------


@dataclass(frozen=True)
class FrameSetMessage:
    """A field of view to segment."""

    frameset: FrameSet
    t_available_s: float = 0.0
    ticket: str = ""  # set by the aggregator on dispatch; the answer carries it back


@dataclass(frozen=True)
class CellBatch:
    """Cells of one field of view; `cell_count` is how many the field has in all (may be 0)."""

    sample_id: str
    fov: int
    cell_count: int
    cells: tuple[CellCrop, ...] = ()
    modalities: tuple[Modality, ...] = MODALITIES  # axis 0 of every crop
    worker: str = ""
    t_available_s: float = 0.0
    ticket: str = ""  # the dispatch this batch is (aggregator -> worker) or answers (worker ->)
    thumbnails: tuple[bytes, ...] = ()  # one PNG per cell (segment worker -> aggregator), or none
    focus: float | None = None  # the field's focus measure (field_quality), None: not measured
    quality_notes: tuple[str, ...] = ()  # field_quality notes (focus_low, saturated_background)


@dataclass(frozen=True)
class ResultBatch:
    """Classified cells (any mix of fields and samples)."""

    results: tuple[CellResult, ...]
    worker: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # free-form worker notes (model version...)
    tickets: tuple[tuple[str, int, str], ...] = ()  # (sample_id, fov, ticket) of the work answered


Message: TypeAlias = (
    FrameSetMessage
    | CellBatch
    | ResultBatch
    | FieldDone
    | FieldFailed
    | SampleStart
    | SampleEnd
    | Hello
    | Heartbeat
    | Ready
    | SummaryMessage
)

"""Where fields of view come from: a saved acquisition on disk, or a rig (real or simulated).

Each source is a `SampleJob`: a sample id and a lazy iterator of `FieldOutcome`s in field order, so
fields are read or acquired only as fast as the pipeline takes them (back-pressure).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from leukoscope.acquisition_files import storage
from leukoscope.errors import StorageError
from leukoscope.pipeline.source_stage import FieldOutcome
from leukoscope.types import FrameSet

if TYPE_CHECKING:
    from leukoscope.instrument.rig import Rig


@dataclass
class SampleJob:
    """One sample to analyse: its id, its fields (lazily) and, if known, how many there are."""

    sample_id: str
    fields: Iterable[FieldOutcome]
    fields_total: int | None = None
    acquisition: Path | None = None  # where the fields are saved (lost work is re-read from it)
    simulated: bool = False  # the fields come from the simulator: every output says so


def _saved_fields(folder: Path, count: int) -> Iterator[FieldOutcome]:
    for fov in range(count):
        try:
            yield FieldOutcome(fov, storage.read_field(folder, fov))
        except StorageError as exc:
            yield FieldOutcome(fov, None, str(exc))


def saved_acquisition(folder: Path) -> SampleJob:
    """The fields of a saved acquisition folder; a corrupt field becomes a failed field.

    Raises StorageError when the folder itself is unusable (no or invalid `acquisition.json`), or
    when a field's own simulated mark disagrees with it (the whole sample is refused).
    """
    meta = storage.read_acquisition_meta(folder)
    on_disk = storage.list_fields(folder)
    # the fields are those up to the last one on disk (a missing one before it is a failed field),
    # but never more than were acquired: `meta.fields` saved (planned, in older acquisitions) plus
    # those recorded as failed; a stray fov_9999999.ome.tif does not make millions of fields
    failed = storage.failed_field_count(folder)
    acquired = max(meta.fields, len(on_disk)) + failed
    count = min((on_disk[-1] + 1) if on_disk else 0, acquired)
    return SampleJob(
        meta.sample_id, _saved_fields(folder, count), count, folder.resolve(), meta.simulated
    )


def rig_acquisition(rig: Rig, sample_id: str, max_fields: int, out_dir: Path) -> SampleJob:
    """Fields acquired live from `rig`, each saved under `out_dir` before it is analysed."""
    from leukoscope.instrument.acquisition import Acquisition

    results = Acquisition(rig).run(sample_id, max_fields, out_dir=out_dir)
    fields = (FieldOutcome(r.fov, r.frameset, r.error) for r in results)
    simulated = bool(rig.simulated_camera or rig.simulated_lights)
    return SampleJob(sample_id, _closing(results, fields), None, out_dir.resolve(), simulated)


def _closing(owner: Iterator[object], items: Iterator[FieldOutcome]) -> Iterator[FieldOutcome]:
    """Yield `items`; close `owner` (lights off, camera stopped) however iteration ends."""
    try:
        yield from items
    finally:
        close = getattr(owner, "close", None)
        if close is not None:
            close()


class SavedFields:
    """Reads the fields of saved acquisitions again: what the aggregator is handed to replay a
    field that was lost on the way (a restarted aggregator, a dropped message)."""

    def saved(self, folder: Path) -> int:
        """Fields saved in `folder` plus those its `failed_fields.json` records."""
        return len(storage.list_fields(folder)) + storage.failed_field_count(folder)

    def fovs(self, folder: Path) -> list[int]:
        """Indices of the fields saved in `folder`."""
        return storage.list_fields(folder)

    def read(self, folder: Path, fov: int) -> FrameSet:
        """One saved field, validated against its acquisition.json."""
        return storage.read_field(folder, fov)

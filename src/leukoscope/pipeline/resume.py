"""Resume an interrupted `run`: keep the sample's saved fields, acquire the rest on the same rig.

A run stopped by Ctrl-C, SIGTERM or a power cut leaves its acquisition folder consistent (every
field written atomically, `acquisition.json` counting the saved ones, `failed_fields.json` the
failed ones) and its sample `incomplete` in the store. `leukoscope run --sample S --resume` reads
that folder back: the saved fields are analysed again from disk (segmentation and classification
are deterministic, so they count as they did) and acquisition continues at the next field, into the
same folder, up to `--max-fields` or the target count. The result is a new run of the same sample.

A sample whose latest run is complete is not resumed (one ParameterError line saying how to start
it again). Refused (one StorageError line each), because fields from two set-ups must never be mixed: no
acquisition of that sample in the folder; a rig whose acquisition settings (digest) differ from
those the fields were taken with; a simulated rig resuming a real sample or the reverse; a camera
configured for another frame size.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from leukoscope.acquisition_files import storage
from leukoscope.errors import ParameterError, StorageError
from leukoscope.pipeline.source_stage import FieldOutcome
from leukoscope.pipeline.sources import SampleJob

if TYPE_CHECKING:
    from leukoscope.instrument.rig import Rig

MAX_REASON = 4000
"""Longest failure reason read back from `failed_fields.json` (as on the wire)."""


@dataclass(frozen=True)
class ResumePoint:
    """What an interrupted acquisition left: its metadata, saved and failed fields, and where the
    next field starts."""

    folder: Path
    meta: storage.AcquisitionMeta
    saved: tuple[int, ...]
    failed: dict[int, str]
    next_fov: int


def _failed_fields(folder: Path, bound: int) -> dict[int, str]:
    """Field -> reason from `failed_fields.json`, only well-formed entries below `bound`."""
    try:
        data = json.loads((folder / "failed_fields.json").read_text(encoding="utf-8"))
        entries = data["failed"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}
    failed: dict[int, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        fov = entry.get("fov") if isinstance(entry, dict) else None
        reason = entry.get("reason") if isinstance(entry, dict) else None
        if type(fov) is int and 0 <= fov < bound and isinstance(reason, str):
            failed[fov] = reason[:MAX_REASON]
    return failed


def resume_point(folder: Path, sample_id: str, replace: bool = False) -> ResumePoint:
    """Where the interrupted acquisition of `sample_id` in `folder` stands (StorageError if there
    is nothing of that sample to resume; ParameterError with `replace`, which would clear it)."""
    if replace:
        raise ParameterError("--resume keeps the saved fields and --replace deletes them: use one")
    folder = Path(folder)
    if not (folder / storage.META_FILE).is_file():
        raise StorageError(
            f"nothing to resume: {folder} holds no acquisition; start the sample with "
            f"leukoscope run --sample {sample_id}"
        )
    meta = storage.read_acquisition_meta(folder)
    if meta.sample_id != sample_id:
        raise StorageError(f"{folder} holds sample {meta.sample_id!r}, not {sample_id!r}")
    saved = storage.list_fields(folder)
    # never more fields than were acquired (a stray fov_9999999.ome.tif does not make millions)
    acquired = max(meta.fields, len(saved)) + storage.failed_field_count(folder)
    failed = _failed_fields(folder, acquired)
    last = max([*saved, *failed], default=-1)
    next_fov = min(last + 1, acquired)
    kept = tuple(f for f in saved if f < next_fov)
    return ResumePoint(folder, meta, kept, failed, next_fov)


def refuse_complete(results_db: Path, sample_id: str) -> None:
    """Refuse (ParameterError) to resume a sample whose latest run in `results_db` is complete:
    there is nothing left to acquire, and a second complete result would be made."""
    from leukoscope.results.store import ResultStore

    if not Path(results_db).is_file():
        return
    with ResultStore(results_db, read_only=True) as store:
        rows = store.query(
            "SELECT run_id, status FROM samples WHERE sample_id=? ORDER BY started_s DESC LIMIT 1",
            (sample_id,),
        )
    if rows and rows[0]["status"] == "complete":
        raise ParameterError(
            f"sample {sample_id!r} is complete (run {str(rows[0]['run_id'])[:8]}): nothing to "
            f"resume; to acquire it again from the start: leukoscope run --sample {sample_id} "
            "--replace (deletes its saved fields), or use a new sample id"
        )


def check_same_rig(point: ResumePoint, rig: Rig) -> None:
    """Refuse to add fields taken with other settings, or simulated ones to a real sample."""
    from leukoscope.instrument.acquisition import AcquisitionSettings

    meta, camera = point.meta, rig.config.camera
    simulated = bool(rig.simulated_camera)
    if simulated != meta.simulated:
        was, now = ("simulated", "real") if meta.simulated else ("real", "simulated")
        raise StorageError(
            f"cannot resume {meta.sample_id}: its fields are {was} and this rig is {now}"
            + (" (add --simulate)" if meta.simulated else "")
        )
    digest = AcquisitionSettings.from_config(rig.config, meta.modalities).digest()
    if digest != meta.settings_digest:
        raise StorageError(
            f"cannot resume {meta.sample_id}: the rig's acquisition settings changed since its "
            f"fields were taken (digest {meta.settings_digest}, now {digest}); analyse the saved "
            f"fields with leukoscope batch {point.folder}, or start a new sample"
        )
    saving = rig.config.acquisition.format
    if saving != meta.field_format:
        raise StorageError(
            f"cannot resume {meta.sample_id}: its fields are saved as {meta.field_format} and "
            f"rig.acquisition.format is {saving}; set it to {meta.field_format} to resume"
        )
    shape = (camera.height, camera.width)
    if camera.height and camera.width and shape != tuple(meta.frame_shape):
        raise StorageError(
            f"cannot resume {meta.sample_id}: the camera is set to {shape[1]}x{shape[0]} px, its "
            f"fields are {meta.frame_shape[1]}x{meta.frame_shape[0]} px"
        )


def _saved_part(point: ResumePoint) -> Iterator[FieldOutcome]:
    saved = set(point.saved)
    for fov in range(point.next_fov):
        if fov in point.failed and fov not in saved:
            yield FieldOutcome(fov, None, point.failed[fov])
            continue
        try:
            yield FieldOutcome(fov, storage.read_field(point.folder, fov))
        except StorageError as exc:
            yield FieldOutcome(fov, None, str(exc))


def resumed_acquisition(rig: Rig, point: ResumePoint, max_fields: int) -> SampleJob:
    """The saved fields of `point`, then fields `next_fov` .. `max_fields - 1` from `rig`, each
    saved into the same folder before it is analysed."""
    from leukoscope.instrument.acquisition import Acquisition, AcquisitionSettings

    check_same_rig(point, rig)
    settings = AcquisitionSettings.from_config(rig.config, point.meta.modalities)
    more = range(point.next_fov, max(point.next_fov, max_fields))
    results = Acquisition(rig, settings).run(
        point.meta.sample_id, more, point.folder, saved=len(point.saved), failed=point.failed
    )

    def fields() -> Iterator[FieldOutcome]:
        try:
            yield from _saved_part(point)
            yield from (FieldOutcome(r.fov, r.frameset, r.error) for r in results)
        finally:
            close = getattr(results, "close", None)  # lights off, camera stopped, however the
            if close is not None:  # stream ends
                close()

    folder = point.folder.resolve()
    return SampleJob(point.meta.sample_id, fields(), None, folder, point.meta.simulated)


def resume_args(
    sample_id: str,
    *,
    simulate: bool,
    seed: int,
    out: Path | None,
    cells: int | None,
    max_fields: int,
) -> str:
    """The `run` arguments that resume `sample_id` as it was started (shell-quoted)."""
    words = ["run", "--sample", sample_id, "--resume"]
    if simulate:
        words += ["--simulate"] + (["--seed", str(seed)] if seed else [])
    if cells is not None:
        words += ["--cells", str(cells)]
    words += ["--max-fields", str(max_fields)]
    if out is not None:
        words += ["--out", str(out)]
    return " ".join(shlex.quote(w) for w in words)

"""The acquisition's stages off each other's critical path: capture runs ahead in its own thread,
fields are written by a writer thread behind a bounded queue.

`Ahead(items, depth)` iterates `items` in a thread at most `depth` items ahead of its consumer (the
camera and lights are then only ever driven from that one thread); an exception there is raised in
the consumer; `close()` stops it and waits for the item in hand. `FieldWriter` saves fields in order
(acquisition.json, the field, failed_fields.json) in one thread; `close()` writes whatever was
queued before returning (the acquisition's `finally` calls it, so Ctrl-C and SIGTERM lose nothing
that was acquired; a writer never closed is drained at interpreter exit), and a write error is raised
in the acquisition at the next field or at the end.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np

from leukoscope.types import FrameSet, Modality

if TYPE_CHECKING:
    from leukoscope.acquisition_files.channels import ChannelOptics
    from leukoscope.instrument.flatfield import RigCorrection
    from leukoscope.instrument.rig import Rig

log = logging.getLogger(__name__)
T = TypeVar("T")
_POLL_S = 0.1  # waits are sliced so a signal or a stop is seen
_END = object()

BIT_DEPTHS = {"Mono8": 8, "Mono10": 10, "Mono12": 12, "Mono14": 14, "Mono16": 16}
"""Significant bits of each camera pixel format."""
FAILED_FIELDS_FILE = "failed_fields.json"
"""Beside acquisition.json: the fields that failed and why (absent when none did)."""


class SaveSettings(Protocol):
    """What saving needs of `acquisition.AcquisitionSettings` (read-only)."""

    @property
    def modalities(self) -> tuple[Modality, ...]: ...
    @property
    def intensities_percent(self) -> dict[Modality, float]: ...
    @property
    def exposures_us(self) -> dict[Modality, float]: ...
    @property
    def pixel_format(self) -> str: ...
    @property
    def pixel_size_um(self) -> float: ...
    @property
    def optics(self) -> dict[Modality, ChannelOptics]: ...
    @property
    def compression(self) -> str: ...
    @property
    def field_format(self) -> Any: ...
    def digest(self) -> str: ...


class Ahead(Generic[T]):
    """`items` produced in a thread, at most `depth` made (or in the making) and not yet taken."""

    def __init__(self, items: Iterator[T], depth: int = 1, name: str = "ahead") -> None:
        self._items = items
        self._queue: queue.Queue[Any] = queue.Queue()
        self._credit = threading.Semaphore(max(1, depth))  # one per item the consumer may get
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while self._wait_credit():
                item = next(self._items, _END)
                if item is _END:
                    break
                self._queue.put(("item", item))
        except BaseException as exc:
            self._queue.put(("error", exc))
            return
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()
        self._queue.put(("end", None))

    def _wait_credit(self) -> bool:
        """True once the consumer may take one more item; False when stopped."""
        while not self._stop.is_set():
            if self._credit.acquire(timeout=_POLL_S):
                return not self._stop.is_set()
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                kind, value = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return
                continue
            if kind == "error":
                raise value
            if kind == "end":
                return
            self._credit.release()  # the next item is made while this one is used
            yield value

    def close(self) -> None:
        """Stop producing; wait for the item in hand (every capture wait is bounded)."""
        self._stop.set()
        self._thread.join()


class FieldWriter:
    """Writes an acquisition's files in order in one thread; at most `depth` fields wait."""

    def __init__(
        self,
        out_dir: Path,
        save: Callable[[FrameSet, int], Path],
        depth: int = 2,
    ) -> None:
        self.out_dir = Path(out_dir)
        self._save = save  # writes acquisition.json (with the saved count), then the field
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._raised = False
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="field-writer", daemon=True)
        self._thread.start()
        _OPEN.add(self)  # drained at exit even if the run was never closed

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is _END:
                return
            if self._error is not None:
                continue  # drained, not written: the run ends with the first error
            try:
                job()
            except BaseException as exc:
                self._error = exc

    def _check(self) -> None:
        if self._error is not None and not self._raised:
            self._raised = True  # said once; what was queued after it is not written
            raise self._error

    def field(self, frameset: FrameSet, saved: int) -> None:
        """Queue `frameset` (the `saved`-th field saved); blocks while `depth` fields wait."""
        self._check()
        self._queue.put(lambda: self._save(frameset, saved))

    def failures(self, failures: dict[int, str]) -> None:
        """Queue failed_fields.json as `failures` stand now."""
        self._check()
        snapshot = dict(failures)
        self._queue.put(lambda: write_failures(self.out_dir, snapshot))

    def close(self) -> None:
        """Write everything queued, then stop; raises the first write error (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_END)
            self._thread.join()
            _OPEN.discard(self)
        self._check()


_OPEN: weakref.WeakSet[FieldWriter] = weakref.WeakSet()


@atexit.register
def _drain_open_writers() -> None:
    """At interpreter exit: write what a run that was never closed still had queued."""
    for writer in list(_OPEN):
        try:
            writer.close()
        except BaseException as exc:
            log.error("writing the last fields at exit: %s", exc)


def write_failures(out_dir: Path, failures: dict[int, str]) -> None:
    """failed_fields.json under `out_dir`: every failed field and why."""
    from leukoscope.acquisition_files import storage

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "failed": [{"fov": f, "reason": r} for f, r in sorted(failures.items())]
    }
    storage.atomic_write_bytes(
        Path(out_dir) / FAILED_FIELDS_FILE, json.dumps(data, indent=2).encode()
    )


def field_saver(
    out_dir: Path,
    sample_id: str,
    settings: SaveSettings,
    rig: Rig,
    correction: RigCorrection | None,
) -> Callable[[FrameSet, int], Path]:
    """What the writer calls per field: acquisition.json (with the number of fields saved so
    far), then the field, dated now and marked simulated as the rig is."""
    from leukoscope.acquisition_files import storage

    s = settings
    simulated = bool(rig.simulated_camera)

    def save(frameset: FrameSet, saved: int) -> Path:
        frame = frameset.frames[0]
        meta = storage.AcquisitionMeta(
            sample_id=sample_id,
            modalities=list(s.modalities),
            pixel_size_um=s.pixel_size_um,
            bit_depth=BIT_DEPTHS.get(s.pixel_format, 8 if frame.dtype == np.uint8 else 16),
            frame_shape=(int(frame.shape[0]), int(frame.shape[1])),
            channels=[
                storage.ChannelMeta(
                    modality=m,
                    exposure_us=s.exposures_us[m],
                    intensity_percent=s.intensities_percent[m],
                )
                for m in s.modalities
            ],
            settings_digest=s.digest(),
            fields=saved,
            simulated=simulated,
            field_format=s.field_format,
            correction=correction.label if correction is not None else "",
        )
        storage.write_acquisition_meta(out_dir, meta)
        return storage.write_field(
            out_dir,
            frameset,
            optics=s.optics,
            acquired_at=datetime.now(timezone.utc),
            compression=s.compression,
            field_format=s.field_format,
            simulated=simulated,
        )

    return save

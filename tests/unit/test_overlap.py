"""The live path's overlap: capture one item ahead, a bounded writer that loses nothing, the
registration's stable-offset reuse, and the replay camera."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from leukoscope.config import RegistrationConfig
from leukoscope.errors import CameraTimeout, StorageError
from leukoscope.instrument.overlap import Ahead, FieldWriter
from leukoscope.instrument.registration import Registrar
from leukoscope.types import Modality


def test_ahead_keeps_order_and_makes_at_most_one_item_ahead() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(6):
            made.append(i)
            yield i

    ahead = Ahead(items(), depth=1)
    seen = []
    for item in ahead:
        time.sleep(0.05)  # the producer has time to run ahead, if it could
        assert len(made) <= item + 2  # this one and the next, never more
        seen.append(item)
    ahead.close()
    assert seen == list(range(6))


def test_ahead_raises_the_producers_error_and_stops_on_close() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise StorageError("disk gone")

    ahead = Ahead(failing())
    with pytest.raises(StorageError, match="disk gone"):
        list(ahead)
    ahead.close()

    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    ahead = Ahead(endless())
    assert next(iter(ahead)) == 0
    ahead.close()
    assert closed.is_set()


def test_field_writer_writes_everything_queued_in_order_before_close_returns(
    tmp_path: Path,
) -> None:
    written: list[int] = []

    def save(frameset: object, saved: int) -> Path:
        time.sleep(0.02)
        written.append(saved)
        return tmp_path

    writer = FieldWriter(tmp_path, save, depth=1)  # type: ignore[arg-type]
    for n in range(1, 5):
        writer.field(object(), n)  # type: ignore[arg-type]
    writer.failures({3: "timeout"})
    writer.close()
    assert written == [1, 2, 3, 4]
    assert (tmp_path / "failed_fields.json").is_file()


def test_field_writer_raises_its_first_error(tmp_path: Path) -> None:
    def save(frameset: object, saved: int) -> Path:
        raise StorageError(f"cannot write field {saved}")

    writer = FieldWriter(tmp_path, save)  # type: ignore[arg-type]
    writer.field(object(), 1)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="field 1"):
        writer.close()


def test_registration_reuses_a_stable_offset_and_checks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registrar = Registrar(RegistrationConfig(reuse_stable=3))
    drift = iter([(1.0, 2.0), (1.02, 2.0), (0.98, 2.01)] + [(1.01, 2.0)] * 10)
    estimated = []

    def estimate(frames: object) -> dict[Modality, object]:
        from leukoscope.instrument.registration import ShiftEstimate

        dy, dx = next(drift)
        estimated.append((dy, dx))
        return {Modality.COLOR2: ShiftEstimate(dy, dx, 50.0)}

    monkeypatch.setattr(registrar, "estimate", estimate)
    frames = {m: np.zeros((8, 8), np.uint16) for m in (Modality.COLOR1, Modality.COLOR2)}
    results = [registrar.shifts(frames) for _ in range(9)]
    refined = [r[1][Modality.COLOR2] for r in results]
    # three agreeing fields, then two reused and one checked, twice
    assert refined == [True, True, True, False, False, True, False, False, True]
    assert results[3][0][Modality.COLOR2] == pytest.approx((1.0, 2.0))
    assert len(estimated) == 5


def test_replay_camera_serves_the_lit_light_at_its_rate(tmp_path: Path) -> None:
    from leukoscope.instrument.replay_camera import ReplayCamera
    from leukoscope.instrument.simulator.acquisition import generate_acquisition

    generate_acquisition(tmp_path / "s", "s", 1, seed=0, frame_shape=(256, 256))

    class State:
        fov = 0

        def lit(self) -> dict[Modality, float]:
            return {Modality.COLOR3: 50.0}

    camera = ReplayCamera(tmp_path / "s", State(), frame_rate=20.0)
    camera.start()
    start = time.monotonic()
    for _ in range(3):
        camera.trigger()
        frame = camera.fetch(1.0)
        assert frame.lit is Modality.COLOR3
    assert time.monotonic() - start >= 3 / 20.0 - 0.01
    camera.trigger()
    with pytest.raises(CameraTimeout):
        camera.fetch(0.0)


def test_field_writer_never_closed_is_drained_at_exit(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = f"""
import time
from pathlib import Path
from leukoscope.instrument.overlap import FieldWriter

def save(frameset, saved):
    time.sleep(0.2)
    Path({str(tmp_path)!r}, f"field_{{saved}}").write_text("x")
    return Path()

writer = FieldWriter(Path({str(tmp_path)!r}), save)
writer.field(None, 1)
writer.field(None, 2)
"""  # the run is abandoned: no close()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["field_1", "field_2"]

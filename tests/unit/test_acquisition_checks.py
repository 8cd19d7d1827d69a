"""Acquisition's per-frame checks, with a scripted fake camera and an in-memory fake controller."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pytest

from leukoscope.config import RigConfig
from leukoscope.errors import CameraTimeout
from leukoscope.instrument.acquisition import Acquisition
from leukoscope.instrument.lights import ChannelState, ControllerInfo, LightController
from leukoscope.instrument.rig import Rig
from leukoscope.types import Frame, Modality


class FakeLights(LightController):
    """An in-memory controller (no protocol): records switching."""

    def __init__(self) -> None:
        self.intensity = dict.fromkeys(range(1, 5), 0.0)
        self.is_on = dict.fromkeys(range(1, 5), False)

    def identify(self) -> ControllerInfo:
        return ControllerInfo("fake", "0", "0", 4)

    def set_intensity(self, channel: int, percent: float) -> None:
        self.intensity[channel] = percent

    def on(self, channel: int) -> None:
        self.is_on[channel] = True

    def off(self, channel: int) -> None:
        self.is_on[channel] = False

    def all_off(self) -> None:
        self.is_on = dict.fromkeys(self.is_on, False)

    def status(self) -> dict[int, ChannelState]:
        return {c: ChannelState(self.is_on[c], self.intensity[c]) for c in self.is_on}

    def close(self) -> None:
        pass


class FakeCamera:
    """Answers each trigger with the next scripted frame maker (None: the frame never arrives)."""

    def __init__(self, script: list[object]) -> None:
        self.script = deque(script)
        self.queue: deque[Frame] = deque()
        self.next_id = 100

    def configure(self, **kwargs: object) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass

    def flush(self) -> int:
        dropped = len(self.queue)
        self.queue.clear()
        return dropped

    def trigger(self) -> None:
        make = self.script.popleft() if self.script else "good"
        now = time.time()
        self.next_id += 1
        image = np.full((32, 32), 100, np.uint8)
        if make == "good":
            self.queue.append(Frame(image, self.next_id, now, 2000.0, None))
        elif make == "stale":
            self.queue.append(Frame(image, 1, now, 2000.0, None))
        elif make == "early":
            self.queue.append(Frame(image, self.next_id, now - 10.0, 2000.0, None))
        elif make == "wrong_light":
            self.queue.append(Frame(image, self.next_id, now, 2000.0, Modality.FLUORESCENCE))

    def fetch(self, timeout_s: float) -> Frame:
        if not self.queue:
            raise CameraTimeout("fake: no frame")
        return self.queue.popleft()


def run_one(script: list[object], retries: int = 1) -> tuple[object, FakeLights]:
    config = RigConfig()
    config.camera.retries = retries
    config.lights.settle_ms = 0.0
    config.registration.refine = False
    lights = FakeLights()
    rig = Rig(config=config, lights=lights, camera=FakeCamera(script))  # type: ignore[arg-type]
    (result,) = Acquisition(rig).run("S", 1)
    return result, lights


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("stale", "stale frame id 1"),
        ("early", "exposed before its trigger"),
        ("wrong_light", "shows fluorescence, not color2"),
        (None, "timeout"),
    ],
)
def test_bad_frame_is_retried_then_accepted(bad: object, reason: str) -> None:
    result, lights = run_one(["good", bad, "good"])  # color1 fine, color2 retried
    assert result.ok and result.triggers == 5  # type: ignore[attr-defined]
    assert not any(lights.is_on.values())


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("stale", "stale frame id 1"),
        ("early", "exposed before its trigger"),
        ("wrong_light", "shows fluorescence, not color2"),
        (None, "timeout"),
    ],
)
def test_bad_frame_twice_fails_the_field_with_reason(bad: object, reason: str) -> None:
    result, lights = run_one(["good", bad, bad])
    assert not result.ok  # type: ignore[attr-defined]
    assert result.error.startswith("color2: no valid frame after 2 trigger(s)")  # type: ignore[attr-defined]
    assert reason in result.error  # type: ignore[attr-defined]
    assert not any(lights.is_on.values())


def test_no_retries_configured() -> None:
    result, _ = run_one([None], retries=0)
    assert "after 1 trigger(s)" in result.error  # type: ignore[attr-defined]

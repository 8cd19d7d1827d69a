"""A fake with harvesters' ImageAcquirer surface, for faults the GenTL simulators cannot produce.

It is a fake, not a simulator: it serves scripted frames, raises genicam's own exception types, and
scribbles over a buffer's memory when it is re-queued (so code that keeps a view instead of a copy
fails). Nodes: Width, Height, PixelFormat, TriggerMode, TriggerSource, TriggerSoftware, and optionally
ExposureTime and Gain.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from genicam.gentl import GenericException, TimeoutException


@dataclass
class FakeNode:
    """A GenApi node: `value`, `symbolics`, `execute()`."""

    value: Any = None
    symbolics: tuple[str, ...] = ()
    on_execute: Any = None
    writable: bool = True

    def execute(self) -> None:
        if self.on_execute is not None:
            self.on_execute()


class FakeNodeMap:
    """Attribute access and has_node(), like genicam's NodeMap."""

    def __init__(self, nodes: dict[str, FakeNode]) -> None:
        self._nodes = nodes

    def has_node(self, name: str) -> bool:
        return name in self._nodes

    def __getattr__(self, name: str) -> FakeNode:
        try:
            return self._nodes[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class FakeComponent:
    """Component 0 of a payload: flat `data`, width, height, components per pixel."""

    data: np.ndarray
    width: int
    height: int
    num_components_per_pixel: float = 1.0


@dataclass
class FakePayload:
    components: list[FakeComponent]


@dataclass
class FakeBuffer:
    """A fetched buffer; `queue()` gives its memory back (and the fake overwrites it)."""

    payload: FakePayload
    frame_id: int
    owner: FakeImageAcquirer

    def queue(self) -> None:
        self.payload.components[0].data[:] = 0xEE  # the driver reuses the memory
        self.owner.queued += 1


@dataclass
class FakeRemoteDevice:
    node_map: FakeNodeMap


@dataclass
class FakeImageAcquirer:
    """Scripted frames per trigger; `drop` ids deliver nothing; `fail_next` raises GenTL errors."""

    width: int = 8
    height: int = 6
    with_exposure: bool = True
    drop: set[int] = field(default_factory=set)  # trigger numbers whose frame never arrives
    fail_next: list[BaseException] = field(default_factory=list)
    incomplete: int = 0  # incomplete buffers the producer delivers (discarded) before good ones
    num_buffers: int = 5
    started: bool = False
    destroyed: bool = False
    queued: int = 0
    triggers: int = 0
    pending: deque[int] = field(default_factory=deque)
    remote_device: FakeRemoteDevice = field(init=False)

    def __post_init__(self) -> None:
        nodes = {
            "Width": FakeNode(self.width),
            "Height": FakeNode(self.height),
            "PixelFormat": FakeNode("Mono8", ("Mono8", "Mono16")),
            "TriggerMode": FakeNode("Off", ("Off", "On")),
            "TriggerSource": FakeNode("Software", ("Software",)),
            "TriggerSoftware": FakeNode(on_execute=self._on_trigger),
        }
        if self.with_exposure:
            nodes["ExposureTime"] = FakeNode(1000.0)
            nodes["Gain"] = FakeNode(0.0)
        self.remote_device = FakeRemoteDevice(FakeNodeMap(nodes))

    def _on_trigger(self) -> None:
        self.triggers += 1
        if self.triggers not in self.drop:
            self.pending.append(self.triggers)

    def push_stale(self, count: int) -> None:
        """Frames left over from before the cycle (what flush() must drop)."""
        for _ in range(count):
            self.pending.append(0)

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def destroy(self) -> None:
        self.destroyed = True

    def _buffer(self, frame_id: int) -> FakeBuffer:
        nm = self.remote_device.node_map
        width, height = int(nm.Width.value), int(nm.Height.value)
        dtype = np.uint16 if nm.PixelFormat.value == "Mono16" else np.uint8
        data = (np.arange(width * height) + frame_id).astype(dtype)
        return FakeBuffer(FakePayload([FakeComponent(data, width, height)]), frame_id, self)

    def fetch(self, *, timeout: float = 0) -> FakeBuffer:
        if self.fail_next:
            raise self.fail_next.pop(0)
        if not self.pending:
            raise TimeoutException()
        return self._buffer(self.pending.popleft())

    def try_fetch(self, *, timeout: float) -> FakeBuffer | None:
        """Like harvesters: None after `timeout` (or at once for an incomplete buffer)."""
        if self.fail_next:
            raise self.fail_next.pop(0)
        if self.incomplete:
            self.incomplete -= 1
            time.sleep(min(timeout, 0.001))
            return None
        if not self.pending:
            time.sleep(min(timeout, 0.01))
            return None
        return self._buffer(self.pending.popleft())


def gentl_error(message: str = "I/O error") -> BaseException:
    """A genicam GenTL exception, as the real stack raises them."""
    return GenericException(message)

"""GenTL devices through harvesters: producers (.cti) found and loaded, devices enumerated and one
chosen by serial, id or name, its acquirer created without losing our SIGINT handler."""

from __future__ import annotations

import glob
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leukoscope.errors import CameraError


def gentl_errors() -> tuple[type[BaseException], type[BaseException], type[BaseException]]:
    from genicam.genapi import GenericException as GenApiError
    from genicam.gentl import GenericException as GenTLError
    from genicam.gentl import TimeoutException

    return TimeoutException, GenTLError, GenApiError


@dataclass(frozen=True)
class DeviceDescription:
    """A GenTL device as enumerated by a producer."""

    producer: str
    index: int
    id: str
    serial_number: str
    model: str
    vendor: str
    display_name: str


def _info(device_info: Any, name: str) -> str:
    """A device-info property, or "" where the producer does not provide it."""
    try:
        value = getattr(device_info, name)
    except Exception:  # GenTL NotAvailableException and friends
        return ""
    return "" if value is None else str(value)


def default_producers() -> list[str]:
    """The .cti files in the directories of $GENICAM_GENTL64_PATH."""
    found: list[str] = []
    for directory in os.environ.get("GENICAM_GENTL64_PATH", "").split(os.pathsep):
        if directory:
            found.extend(sorted(glob.glob(os.path.join(directory, "*.cti"))))
    return found


def new_harvester(producers: Sequence[str | Path]) -> Any:
    from harvesters.core import Harvester

    if not producers:
        raise CameraError("no GenTL producer (.cti) given; set rig.camera.producer_path")
    harvester = Harvester()
    try:
        for producer in producers:
            try:
                harvester.add_file(str(producer), check_existence=True, check_validity=True)
            except FileNotFoundError:
                raise CameraError(f"GenTL producer not found: {producer}") from None
            except OSError as exc:
                raise CameraError(f"GenTL producer {producer} cannot be loaded: {exc}") from None
        harvester.update()
    except BaseException:
        harvester.reset()
        raise
    return harvester


def describe_devices(harvester: Any, producers: Sequence[str | Path]) -> list[DeviceDescription]:
    label = ", ".join(str(p) for p in producers)
    return [
        DeviceDescription(
            producer=label,
            index=i,
            id=_info(d, "id_"),
            serial_number=_info(d, "serial_number"),
            model=_info(d, "model"),
            vendor=_info(d, "vendor"),
            display_name=_info(d, "display_name"),
        )
        for i, d in enumerate(harvester.device_info_list)
    ]


def list_devices(producers: Sequence[str | Path]) -> list[DeviceDescription]:
    """Enumerate the devices the given producers find (opens nothing)."""
    harvester = new_harvester(producers)
    try:
        return describe_devices(harvester, producers)
    finally:
        harvester.reset()


def select_device(devices: list[DeviceDescription], device_id: str) -> int:
    """Index of the device whose serial number, id or display name is `device_id` (first if empty)."""
    if not devices:
        raise CameraError("the GenTL producer found no devices")
    if not device_id:
        return 0
    for key in ("serial_number", "id", "display_name"):
        hits = [d.index for d in devices if getattr(d, key) == device_id]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            serials = ", ".join(devices[i].serial_number for i in hits)
            raise CameraError(f"{device_id!r} matches several devices; use a serial: {serials}")
    known = ", ".join(f"{d.serial_number} ({d.id})" for d in devices)
    raise CameraError(f"no camera {device_id!r}; found: {known}")


def create_keeping_sigint(harvester: Any, index: int) -> Any:
    """harvester.create(index), then put back the SIGINT handler harvesters replaces."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        return harvester.create(index)
    except Exception as exc:
        _, gentl_error, genapi_error = gentl_errors()
        if isinstance(exc, (gentl_error, genapi_error, ValueError)):
            raise CameraError(f"cannot open camera #{index}: {exc}") from exc
        raise
    finally:
        if in_main and previous is not None:
            signal.signal(signal.SIGINT, previous)

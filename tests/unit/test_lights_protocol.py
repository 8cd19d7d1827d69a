"""The LC4 protocol: the firmware state machine, and the driver's parsing against a scripted port."""

from __future__ import annotations

from collections import deque

import pytest

from leukoscope.errors import LightControllerError, LightRejected, LightTimeout
from leukoscope.instrument.lights import ChannelState, Lc4Controller
from leukoscope.instrument.simulator.firmware import Lc4Firmware
from leukoscope.instrument.simulator.state import SimulatedRigState
from leukoscope.types import Modality


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"IDN?", "OK IDN LC4-SIM SIM0001 1.0.0 4"),
        (b"PING abc", "OK PONG abc"),
        (b"INT 2 33.33", "OK INT 2 33.3"),
        (b"ON 1\r", "OK ON 1"),
        (b"off 1", "OK OFF 1"),
        (b"ALLOFF", "OK ALLOFF"),
        (b"STAT?", "OK STAT 1:OFF:0.0 2:OFF:0.0 3:OFF:0.0 4:OFF:0.0"),
        (b"ON 5", "ERR 3 channel out of range 1-4"),
        (b"INT 1 101", "ERR 4 intensity out of range 0-100"),
        (b"INT 1 lots", "ERR 2 intensity is not a number"),
        (b"ON", "ERR 2 wrong number of arguments for ON"),
        (b"FLASH 1", "ERR 1 unknown command FLASH"),
        (b"", "ERR 1 empty command"),
        (b"\xffON 1", "ERR 6 command is not ASCII"),
        (b"ON\x001", "ERR 6 command has control characters"),
    ],
)
def test_firmware_replies(line: bytes, reply: str) -> None:
    assert Lc4Firmware().handle(line) == reply


def test_firmware_mirrors_outputs_into_rig_state() -> None:
    state = SimulatedRigState()
    firmware = Lc4Firmware(state)
    firmware.handle(b"INT 4 25")
    assert state.lit() == {}  # a setpoint alone lights nothing
    firmware.handle(b"ON 4")
    assert state.lit() == {Modality.FLUORESCENCE: 25.0}
    firmware.handle(b"INT 4 50")
    assert state.lit() == {Modality.FLUORESCENCE: 50.0}
    firmware.handle(b"ON 2")  # on at 0 % is dark
    assert state.lit() == {Modality.FLUORESCENCE: 50.0}
    firmware.power_off()
    assert state.lit() == {}
    assert firmware.handle(b"STAT?") == "OK STAT 1:OFF:0.0 2:OFF:0.0 3:OFF:0.0 4:OFF:50.0"


class ScriptedPort:
    """A pyserial stand-in that answers each written line from a script (None = silence)."""

    def __init__(self, replies: list[bytes | None]) -> None:
        self.replies = deque(replies)
        self.pending = b""
        self.written: list[bytes] = []
        self.timeout = 0.1

    def write(self, data: bytes) -> int:
        self.written.append(data)
        line = data.decode().strip()
        if line.startswith("PING "):
            self.pending += f"OK PONG {line.split()[1]}\n".encode()
        elif self.replies:
            reply = self.replies.popleft()
            if reply is not None:
                self.pending += reply
        return len(data)

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        self.pending = b""

    def read_until(self, expected: bytes, size: int) -> bytes:
        index = self.pending.find(expected)
        end = min(size, len(self.pending)) if index < 0 else index + 1
        data, self.pending = self.pending[:end], self.pending[end:]
        return data

    def close(self) -> None:
        pass


def scripted(replies: list[bytes | None], retries: int = 1) -> tuple[Lc4Controller, ScriptedPort]:
    controller = Lc4Controller("loop://", timeout_s=0.05, retries=retries)
    controller.close()
    port = ScriptedPort(replies)
    controller._serial = port
    return controller, port


def test_stale_reply_of_another_command_is_skipped() -> None:
    controller, port = scripted(
        [b"OK ON 1\nOK OFF 2\n", b"OK STAT 1:ON:10.0 2:OFF:0.0 3:OFF:0.0 4:OFF:0.0\n"]
    )
    controller.off(2)
    # the late `OK ON 1` is not taken for the answer: both lines read, nothing left for STAT?
    assert port.pending == b""
    assert controller.status()[1] == ChannelState(on=True, intensity_percent=10.0)
    assert [w for w in port.written if b"PING" not in w] == [b"OFF 2\n", b"STAT?\n"]


def test_late_echo_of_an_earlier_setpoint_is_not_the_answer() -> None:
    controller, port = scripted([b"OK INT 1 30.0\nOK INT 1 50.0\n"])
    controller.set_intensity(1, 50.0)
    assert port.pending == b""  # `OK INT 1 30.0` skipped, `OK INT 1 50.0` taken


def test_err_reply_carries_code() -> None:
    controller, _ = scripted([b"ERR 8 interlock open\n"])
    with pytest.raises(LightRejected, match="interlock open") as info:
        controller.on(1)
    assert info.value.code == 8


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"OK IDN LC4 X 1.0\n", "malformed IDN"),
        (b"OK IDN LC4 X 1.0 four\n", "bad channel count"),
    ],
)
def test_malformed_identify(reply: bytes, message: str) -> None:
    controller, _ = scripted([reply])
    with pytest.raises(LightControllerError, match=message):
        controller.identify()


def test_malformed_status() -> None:
    controller, _ = scripted([b"OK STAT 1:MAYBE:0.0\n"])
    with pytest.raises(LightControllerError, match="malformed STAT"):
        controller.status()


def test_garbled_every_time_is_a_controller_error_not_a_timeout() -> None:
    controller, port = scripted([b"\xfe\xff\n", b"OK?? \n"], retries=1)
    with pytest.raises(LightControllerError, match="garbled") as info:
        controller.on(1)
    assert not isinstance(info.value, LightTimeout)
    assert sum(w.startswith(b"ON 1") for w in port.written) == 2


def test_partial_line_is_a_timeout_then_retried() -> None:
    controller, port = scripted([b"OK O", b"OK ON 1\n"], retries=1)
    controller.on(1)
    assert [w for w in port.written if b"PING" not in w] == [b"ON 1\n", b"ON 1\n"]

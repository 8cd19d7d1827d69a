"""The LC4 driver over real pyserial on a pty, against the emulated firmware, with every fault."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
import serial

from leukoscope.errors import (
    LightControllerError,
    LightDisconnected,
    LightRejected,
    LightTimeout,
    ParameterError,
)
from leukoscope.instrument.lights import Lc4Controller
from leukoscope.instrument.simulator.firmware import EmulatedController, Fault
from leukoscope.instrument.simulator.state import SimulatedRigState
from leukoscope.types import Modality

TIMEOUT_S = 0.15


@pytest.fixture
def rig_state() -> SimulatedRigState:
    return SimulatedRigState()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def emulator(rig_state: SimulatedRigState) -> Iterator[EmulatedController]:
    """The emulator on a pty; at teardown its thread must have stopped and no descriptor leaked."""
    before = open_fds()
    with EmulatedController(state=rig_state) as emu:
        yield emu
    assert not emu.serving, "emulator thread still running"
    leaked = open_fds() - before
    assert not leaked, f"descriptors left open: {leaked}"


@pytest.fixture
def controller(emulator: EmulatedController) -> Iterator[Lc4Controller]:
    lights = Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S, retries=2)
    try:
        yield lights
    finally:
        lights.close()


def test_identify_and_status(controller: Lc4Controller) -> None:
    info = controller.identify()
    assert (info.model, info.channels) == ("LC4-SIM", 4)
    controller.set_intensity(3, 42.5)
    assert controller.status()[3].intensity_percent == 42.5
    assert not controller.status()[3].on


def test_light_shows_in_rig_state(controller: Lc4Controller, rig_state: SimulatedRigState) -> None:
    controller.light(4, 30.0)
    assert rig_state.lit() == {Modality.FLUORESCENCE: 30.0}
    assert controller.lit() == {4: 30.0}
    controller.light(1, 55.0)
    controller.off(4)
    assert rig_state.lit() == {Modality.COLOR1: 55.0}
    controller.all_off()
    assert rig_state.lit() == {}


def test_rejects_bad_arguments_without_sending(
    controller: Lc4Controller, emulator: EmulatedController
) -> None:
    sent = len(emulator.commands)
    with pytest.raises(ParameterError, match="channel 5"):
        controller.on(5)
    with pytest.raises(ParameterError, match="intensity"):
        controller.set_intensity(1, 120.0)
    assert len(emulator.commands) == sent


@pytest.mark.parametrize(
    ("fault", "delay_s"),
    [
        (Fault.SILENCE, 0.0),
        (Fault.GARBLED, 0.0),
        (Fault.SLOW, TIMEOUT_S / 3),  # late but within the timeout
        (Fault.SLOW, TIMEOUT_S * 1.5),  # past the timeout: the late reply must not be mistaken
    ],
)
def test_recovers_from_transient_fault(
    controller: Lc4Controller,
    emulator: EmulatedController,
    rig_state: SimulatedRigState,
    fault: Fault,
    delay_s: float,
) -> None:
    controller.set_intensity(2, 60.0)
    emulator.inject(fault, delay_s=delay_s, match="ON")
    controller.on(2)
    assert rig_state.lit() == {Modality.COLOR2: 60.0}
    emulator.inject(fault, delay_s=delay_s, match="OFF")
    controller.off(2)
    assert rig_state.lit() == {}
    # the link is in step afterwards: a different command gets its own answer
    assert controller.status()[2].on is False
    assert emulator.commands.count("ON 2") >= 1


def test_garbled_reply_triggers_resync(
    controller: Lc4Controller, emulator: EmulatedController
) -> None:
    emulator.inject(Fault.GARBLED, match="STAT?")
    controller.status()
    commands = emulator.commands[-3:]
    assert commands[0] == "STAT?" and commands[1].startswith("PING ") and commands[2] == "STAT?"


def test_err_reply_is_a_clear_error_and_lights_end_off(
    emulator: EmulatedController, rig_state: SimulatedRigState
) -> None:
    with (
        pytest.raises(LightRejected, match="ERR 7 LED over-temperature") as info,
        Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S) as lights,
    ):
        lights.light(1, 20.0)
        emulator.inject(Fault.ERROR, match="ON")
        lights.on(3)
    assert info.value.code == 7
    assert rig_state.lit() == {}
    assert emulator.commands[-1] == "ALLOFF"


def test_silence_past_retries_times_out_and_lights_end_off(
    emulator: EmulatedController, rig_state: SimulatedRigState
) -> None:
    elapsed = 0.0
    with (
        pytest.raises(LightTimeout, match="3 attempt"),
        Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S, retries=2) as lights,
    ):
        lights.light(2, 50.0)
        emulator.inject(Fault.SILENCE, count=10)
        started = time.monotonic()
        try:
            lights.on(3)
        finally:
            elapsed = time.monotonic() - started
            emulator.clear_faults()
    assert elapsed < 100 * TIMEOUT_S  # bounded (generous: a loaded machine is slow), not timed
    assert rig_state.lit() == {}


def test_unplug_is_a_clear_error_and_lights_are_off(
    emulator: EmulatedController, rig_state: SimulatedRigState
) -> None:
    with (
        pytest.raises(LightDisconnected, match="disconnected"),
        Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S) as lights,
    ):
        lights.light(1, 80.0)
        assert rig_state.lit() == {Modality.COLOR1: 80.0}
        emulator.unplug()
        lights.on(2)
    assert rig_state.lit() == {}  # the controller lost power with the cable


def test_unplug_mid_command(emulator: EmulatedController, rig_state: SimulatedRigState) -> None:
    with Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S) as lights:
        lights.light(1, 80.0)
        emulator.inject(Fault.UNPLUG, match="OFF")
        with pytest.raises(LightControllerError):
            lights.off(1)
    assert emulator.unplugged.wait(10)  # set by the emulator thread as it closes the port
    assert rig_state.lit() == {}


def test_exception_in_block_turns_lights_off(
    emulator: EmulatedController, rig_state: SimulatedRigState
) -> None:
    with pytest.raises(RuntimeError, match="boom"), Lc4Controller.open(emulator.port) as lights:
        lights.light(4, 90.0)
        raise RuntimeError("boom")
    assert rig_state.lit() == {}


def test_ctrl_c_in_block_turns_lights_off(
    emulator: EmulatedController, rig_state: SimulatedRigState
) -> None:
    with pytest.raises(KeyboardInterrupt), Lc4Controller.open(emulator.port) as lights:
        lights.light(2, 90.0)
        raise KeyboardInterrupt
    assert rig_state.lit() == {}


def test_port_can_be_reopened(emulator: EmulatedController) -> None:
    for _ in range(2):
        with Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S) as lights:
            lights.light(1, 10.0)
            assert lights.lit() == {1: 10.0}
        time.sleep(0.05)  # the emulator reads EIO while no client holds the port


def test_port_has_one_owner(controller: Lc4Controller, emulator: EmulatedController) -> None:
    with pytest.raises(LightDisconnected, match="cannot open light controller port"):
        Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S)
    assert controller.lit() == {}  # the first owner is undisturbed


def test_partial_command_left_by_a_previous_client(emulator: EmulatedController) -> None:
    with serial.Serial(emulator.port, timeout=1.0) as raw:
        raw.write(b"INT 2")  # a client died mid-command
        raw.flush()
    with Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S) as lights:
        assert lights.lit() == {}
    # the blank line before PING ended the partial command, so the first resync succeeded
    assert emulator.commands[:3] == ["INT 2", "PING 000001", "IDN?"]


def test_line_noise_before_a_command_is_ignored(emulator: EmulatedController) -> None:
    with serial.Serial(emulator.port, timeout=1.0) as raw:
        raw.write(b"\x00\xff garbage that is far too long for any command line " * 3 + b"\n")
        raw.write(b"PING 7\n")
        lines = [raw.readline() for _ in range(2)]
    assert lines[0].startswith(b"ERR ")
    assert lines[1] == b"OK PONG 7\r\n"


_CHILD = textwrap.dedent(
    """
    import sys, time
    from leukoscope.instrument.lights import Lc4Controller
    with Lc4Controller.open(sys.argv[1]) as lights:
        lights.light(3, 70.0)
        print("lit", flush=True)
        time.sleep(30)
    """
)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("signum", "expected_rc"),
    # SIGINT: KeyboardInterrupt unwinds the block, then Python exits by re-raising SIGINT
    [(signal.SIGTERM, 143), (signal.SIGINT, -signal.SIGINT)],
)
def test_signal_turns_lights_off(
    emulator: EmulatedController, rig_state: SimulatedRigState, signum: int, expected_rc: int
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, emulator.port],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # a test run started in the background (`nohup ... &`) ignores SIGINT, and a Python started
        # with SIGINT ignored never raises KeyboardInterrupt: give the child the default disposition
        preexec_fn=_default_sigint,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 20.0)
        assert ready, "child did not light up within 20 s"
        assert child.stdout.readline() == b"lit\n"
        assert rig_state.lit() == {Modality.COLOR3: 70.0}
        child.send_signal(signum)
        rc = child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert rc == expected_rc
    assert rig_state.lit() == {}
    assert emulator.commands[-1] == "ALLOFF"

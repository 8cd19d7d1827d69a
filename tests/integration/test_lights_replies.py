"""The LC4 driver matches each reply to its pending command, over a real pty against the emulator.

The emulator sends stale lines (a late reply of an earlier command) before a reply, repeats replies
(the copy is stale for the next command) and holds replies back past the driver's timeout. After
every such fault, what the driver reports must be what the firmware holds (its own state, read from
the emulator, not through the driver), and the next commands must get their own answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from leukoscope.instrument.lights import ChannelState, Lc4Controller
from leukoscope.instrument.simulator.firmware import EmulatedController, Fault

TIMEOUT_S = 0.3  # per reply; the faults below never wait for it except the held-back reply


@pytest.fixture
def emulator() -> Iterator[EmulatedController]:
    with EmulatedController() as emu:
        yield emu


@pytest.fixture
def lights(emulator: EmulatedController) -> Iterator[Lc4Controller]:
    controller = Lc4Controller.open(emulator.port, timeout_s=TIMEOUT_S, retries=2)
    try:
        yield controller
    finally:
        controller.close()


def firmware_state(emulator: EmulatedController) -> dict[int, ChannelState]:
    """The emulator's outputs, read from the firmware itself."""
    firmware = emulator.firmware
    return {
        ch: ChannelState(on=firmware.output_on[ch], intensity_percent=firmware.intensity[ch])
        for ch in range(1, 5)
    }


def exercise(lights: Lc4Controller) -> None:
    """A set-up sequence: two setpoints, one light on, one off, then read back."""
    lights.set_intensity(1, 30.0)
    lights.set_intensity(2, 55.5)
    lights.on(1)
    lights.on(2)
    lights.off(2)


EXPECTED = {
    1: ChannelState(on=True, intensity_percent=30.0),
    2: ChannelState(on=False, intensity_percent=55.5),
    3: ChannelState(on=False, intensity_percent=0.0),
    4: ChannelState(on=False, intensity_percent=0.0),
}


def test_clean_link_reports_the_firmware_state(
    emulator: EmulatedController, lights: Lc4Controller
) -> None:
    exercise(lights)
    assert firmware_state(emulator) == EXPECTED
    assert lights.status() == EXPECTED


@pytest.mark.parametrize("verb", ["INT", "ON", "OFF", "STAT?"])
def test_a_stale_line_before_each_reply_is_skipped(
    emulator: EmulatedController, lights: Lc4Controller, verb: str
) -> None:
    emulator.inject(Fault.STALE, count=10, match=verb, text="")  # the last reply sent, again
    exercise(lights)
    assert lights.status() == EXPECTED
    assert firmware_state(emulator) == EXPECTED
    # a skipped line is not a failure: no command was sent twice
    assert len(emulator.commands) == len(set(emulator.commands))


def test_a_late_echo_of_an_earlier_setpoint_is_not_the_answer(
    emulator: EmulatedController, lights: Lc4Controller
) -> None:
    lights.set_intensity(3, 10.0)
    emulator.inject(Fault.STALE, match="INT", text="OK INT 3 10.0")
    lights.set_intensity(3, 70.0)
    lights.on(3)
    assert lights.status()[3] == ChannelState(on=True, intensity_percent=70.0)
    assert firmware_state(emulator)[3] == ChannelState(on=True, intensity_percent=70.0)


def test_duplicated_replies_are_not_taken_for_the_next_commands(
    emulator: EmulatedController, lights: Lc4Controller
) -> None:
    emulator.inject(Fault.DUPLICATE, count=20)  # every reply twice: each copy interleaves
    exercise(lights)
    info = lights.identify()
    assert info.model == "LC4-SIM" and info.channels == 4
    assert lights.status() == EXPECTED
    assert lights.lit() == {1: 30.0}
    assert firmware_state(emulator) == EXPECTED


def test_a_reply_held_past_the_timeout_lands_in_the_resynchronisation(
    emulator: EmulatedController, lights: Lc4Controller
) -> None:
    # OFF 2's reply comes after the driver gave up on it: the driver resynchronises (PING), the
    # late `OK OFF 2` arrives among its lines and is dropped, OFF 2 is sent again
    lights.set_intensity(2, 55.5)
    lights.on(2)
    emulator.inject(Fault.SLOW, match="OFF", delay_s=2 * TIMEOUT_S)
    lights.off(2)
    lights.set_intensity(1, 30.0)
    lights.on(1)
    assert lights.status() == EXPECTED
    assert firmware_state(emulator) == EXPECTED
    assert emulator.commands.count("OFF 2") == 2


def test_two_threads_get_their_own_replies(
    lights: Lc4Controller, emulator: EmulatedController
) -> None:
    """Commands from two threads (an acquisition's capture thread and a caller) never take each
    other's replies: every command succeeds and the firmware ends as the last commands left it."""
    errors: list[BaseException] = []

    def switch(channel: int) -> None:
        try:
            for i in range(40):
                lights.set_intensity(channel, float(10 + i))
                lights.on(channel)
                lights.off(channel)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=switch, args=(ch,)) for ch in (1, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert firmware_state(emulator) == {
        1: ChannelState(on=False, intensity_percent=49.0),
        2: ChannelState(on=False, intensity_percent=0.0),
        3: ChannelState(on=False, intensity_percent=49.0),
        4: ChannelState(on=False, intensity_percent=0.0),
    }

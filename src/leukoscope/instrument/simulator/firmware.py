"""Emulated firmware of the LC4 light controller, with fault injection, served on a pseudo-terminal.

`Lc4Firmware` is the controller's state machine (one command line in, one reply line out), written
from the protocol spec in docs/instrument.md and independent of the driver in `instrument.lights`.
It mirrors its outputs into a `SimulatedRigState`, so the simulated camera sees what is lit.

`EmulatedController` serves the firmware on a pty: `os.openpty()`, `tty.setraw()` on the slave, and a
thread answering on the master. Clients open `controller.port` (the slave's path) with a real
`serial.Serial`. It keeps its own slave descriptor open, so clients may close and reopen the port
(reading the master raises EIO while no slave is open). Faults are injected with `inject()`:

- SILENCE: the command is executed but no reply is sent;
- GARBLED: the command is executed, the reply arrives as line noise;
- ERROR:   the command is refused with `ERR <code> <text>` (a hardware fault, e.g. over-temperature);
- SLOW:    the command is executed, the reply comes after `delay_s`;
- UNPLUG:  the controller loses power: every output off, the master closes, the port is dead;
- STALE:   the command is executed, but a stale line comes first: `text` when it starts with `OK`,
           else the last reply sent (a late answer to an earlier command), then the reply;
- DUPLICATE: the command is executed and its reply sent twice (the copy is stale for the next
           command).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass
from enum import Enum
from types import TracebackType

from leukoscope.instrument.simulator.state import SimulatedRigState

log = logging.getLogger(__name__)

MODEL = "LC4-SIM"
FIRMWARE_VERSION = "1.0.0"
MAX_COMMAND = 64
"""Longest command line the firmware buffers; longer lines are answered ERR 5."""

ERR_UNKNOWN, ERR_ARGUMENT, ERR_CHANNEL, ERR_INTENSITY, ERR_TOO_LONG, ERR_NOT_ASCII = (
    1,
    2,
    3,
    4,
    5,
    6,
)
ERR_OVERTEMP = 7


class Fault(str, Enum):
    """A fault the emulator can inject into its next command(s)."""

    SILENCE = "silence"
    GARBLED = "garbled"
    ERROR = "error"
    SLOW = "slow"
    UNPLUG = "unplug"
    STALE = "stale"
    DUPLICATE = "duplicate"


@dataclass
class _Injection:
    fault: Fault
    remaining: int
    delay_s: float
    code: int
    text: str
    match: str | None


class Lc4Firmware:
    """The controller's command interpreter and output state."""

    def __init__(
        self, state: SimulatedRigState | None = None, channels: int = 4, serial: str = "SIM0001"
    ) -> None:
        self.state = state
        self.channels = channels
        self.serial = serial
        self.intensity = dict.fromkeys(range(1, channels + 1), 0.0)
        self.output_on = dict.fromkeys(range(1, channels + 1), False)
        self._lock = threading.Lock()

    def lit(self) -> dict[int, float]:
        """Channels that are on, with their intensity."""
        with self._lock:
            return {ch: self.intensity[ch] for ch, on in self.output_on.items() if on}

    def power_off(self) -> None:
        """Lose power: every output off."""
        with self._lock:
            for ch in self.output_on:
                self.output_on[ch] = False
            self._mirror_all()

    def handle(self, line: bytes) -> str:
        """Execute one command line; return the reply (without line terminator)."""
        try:
            text = line.decode("ascii").strip()
        except UnicodeDecodeError:
            return f"ERR {ERR_NOT_ASCII} command is not ASCII"
        if not text.isprintable():
            return f"ERR {ERR_NOT_ASCII} command has control characters"
        fields = text.split()
        if not fields:
            return f"ERR {ERR_UNKNOWN} empty command"
        verb, args = fields[0].upper(), fields[1:]
        with self._lock:
            return self._dispatch(verb, args)

    def _dispatch(self, verb: str, args: list[str]) -> str:
        if verb == "IDN?" and not args:
            return f"OK IDN {MODEL} {self.serial} {FIRMWARE_VERSION} {self.channels}"
        if verb == "PING" and len(args) == 1:
            return f"OK PONG {args[0]}"
        if verb == "STAT?" and not args:
            items = " ".join(
                f"{ch}:{'ON' if self.output_on[ch] else 'OFF'}:{self.intensity[ch]:.1f}"
                for ch in sorted(self.output_on)
            )
            return f"OK STAT {items}"
        if verb == "ALLOFF" and not args:
            for ch in self.output_on:
                self.output_on[ch] = False
            self._mirror_all()
            return "OK ALLOFF"
        if verb in ("ON", "OFF") and len(args) == 1:
            channel = self._channel(args[0])
            if channel is None:
                return f"ERR {ERR_CHANNEL} channel out of range 1-{self.channels}"
            self.output_on[channel] = verb == "ON"
            self._mirror(channel)
            return f"OK {verb} {channel}"
        if verb == "INT" and len(args) == 2:
            channel = self._channel(args[0])
            if channel is None:
                return f"ERR {ERR_CHANNEL} channel out of range 1-{self.channels}"
            try:
                value = float(args[1])
            except ValueError:
                return f"ERR {ERR_ARGUMENT} intensity is not a number"
            if not 0.0 <= value <= 100.0:
                return f"ERR {ERR_INTENSITY} intensity out of range 0-100"
            self.intensity[channel] = round(value, 1)
            self._mirror(channel)
            return f"OK INT {channel} {self.intensity[channel]:.1f}"
        if verb in ("IDN?", "PING", "STAT?", "ALLOFF", "ON", "OFF", "INT"):
            return f"ERR {ERR_ARGUMENT} wrong number of arguments for {verb}"
        return f"ERR {ERR_UNKNOWN} unknown command {verb[:16]}"

    def _channel(self, text: str) -> int | None:
        try:
            channel = int(text)
        except ValueError:
            return None
        return channel if channel in self.output_on else None

    def _mirror(self, channel: int) -> None:
        if self.state is not None:
            lit = self.output_on[channel] and self.intensity[channel] > 0
            self.state.set_channel(channel, self.intensity[channel] if lit else 0.0)

    def _mirror_all(self) -> None:
        for ch in self.output_on:
            self._mirror(ch)


class EmulatedController:
    """The firmware served on a pty; `port` is the path a real `serial.Serial` opens."""

    def __init__(self, firmware: Lc4Firmware | None = None, state: SimulatedRigState | None = None):
        self.firmware = firmware if firmware is not None else Lc4Firmware(state)
        self.commands: list[str] = []  # every command line received, for tests and logs
        self._faults: deque[_Injection] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.unplugged = threading.Event()
        self._wake_requested = False
        self._last_reply = ""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="lc4-emulator", daemon=True)
        self._thread.start()

    def inject(
        self,
        fault: Fault,
        *,
        count: int = 1,
        delay_s: float = 1.0,
        code: int = ERR_OVERTEMP,
        text: str = "LED over-temperature",
        match: str | None = None,
    ) -> None:
        """Apply `fault` to the next `count` commands (whose verb is `match`, if given)."""
        with self._lock:
            self._faults.append(_Injection(fault, count, delay_s, code, text, match))

    @property
    def serving(self) -> bool:
        """True while the firmware thread runs."""
        return self._thread.is_alive()

    def clear_faults(self) -> None:
        """Forget every pending injection."""
        with self._lock:
            self._faults.clear()

    def unplug(self) -> None:
        """Pull the cable now: outputs off, master closed."""
        self.inject(Fault.UNPLUG)
        self._wake()
        self.unplugged.wait(timeout=2.0)

    def close(self) -> None:
        """Stop serving and close both ends of the pty (idempotent)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        for name in ("_master", "_slave"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)

    def __enter__(self) -> EmulatedController:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- serving --------------------------------------------------------------------------------

    def _wake(self) -> None:
        """Process an UNPLUG injected while no command is arriving."""
        with self._lock:
            self._wake_requested = True

    def _take_fault(self, verb: str) -> _Injection | None:
        with self._lock:
            for injection in self._faults:
                if injection.match is None or injection.match.upper() == verb:
                    injection.remaining -= 1
                    if injection.remaining <= 0:
                        self._faults.remove(injection)
                    return injection
        return None

    def _pending_unplug(self) -> bool:
        with self._lock:
            wake = self._wake_requested
            self._wake_requested = False
            return wake and any(f.fault is Fault.UNPLUG for f in self._faults)

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            if self._pending_unplug():
                self._do_unplug()
                return
            try:
                ready, _, _ = select.select([self._master], [], [], 0.02)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError as exc:
                if exc.errno == errno.EIO:  # no client has the slave open right now
                    time.sleep(0.01)
                    continue
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not self._answer(line):
                    return
            if len(buffer) > MAX_COMMAND:
                buffer = b""
                self._send(f"ERR {ERR_TOO_LONG} command too long")

    def _answer(self, line: bytes) -> bool:
        """Handle one line, applying any injected fault; False once unplugged."""
        text = line.decode("ascii", "replace").strip()
        if not line.strip(b" \r\t"):
            return True  # blank lines are ignored (the driver sends one to end a partial line)
        self.commands.append(text)
        verb = text.split()[0].upper() if text.split() else ""
        injection = self._take_fault(verb)
        if injection is not None and injection.fault is Fault.UNPLUG:
            self._do_unplug()
            return False
        if injection is not None and injection.fault is Fault.ERROR:
            self._send(f"ERR {injection.code} {injection.text}")
            return True
        reply = self.firmware.handle(line)
        if injection is None:
            self._send(reply)
        elif injection.fault is Fault.SLOW:
            if self._stop.wait(injection.delay_s):
                return False
            self._send(reply)
        elif injection.fault is Fault.GARBLED:
            self._send_raw(b"\x15O\xfe#K\x00" + reply[::-1].encode("ascii") + b"\xff\r\n")
        elif injection.fault is Fault.STALE:
            stale = injection.text if injection.text.startswith("OK") else self._last_reply
            if stale:
                self._send_raw((stale + "\r\n").encode("ascii"))
            self._send(reply)
        elif injection.fault is Fault.DUPLICATE:
            self._send(reply)
            self._send(reply)
        # Fault.SILENCE: executed, reply lost
        return True

    def _do_unplug(self) -> None:
        log.info("emulated light controller unplugged")
        self.firmware.power_off()
        with contextlib.suppress(OSError):
            os.close(self._master)
        self._master = -1
        self.unplugged.set()

    def _send(self, reply: str) -> None:
        self._last_reply = reply
        self._send_raw((reply + "\r\n").encode("ascii"))

    def _send_raw(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except OSError as exc:
            log.debug("emulator write failed: %s", exc)

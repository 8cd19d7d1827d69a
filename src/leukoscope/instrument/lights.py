"""Light-controller drivers: the `LightController` interface and the LC4 serial ASCII protocol.

Every controller model is one driver class deriving from `LightController`; this module holds the only
one so far, `Lc4Controller`, and with it the whole LC4 protocol (docs/instrument.md):

    host -> controller   one ASCII command per line, terminated by LF (CR LF accepted); blank
                         lines are ignored
    controller -> host   exactly one line per command: `OK <echo> ...` or `ERR <code> <text>`

    IDN?             OK IDN <model> <serial> <firmware> <channels>
    PING <token>     OK PONG <token>
    INT <ch> <pct>   OK INT <ch> <pct>       intensity 0-100 %, kept while the channel is off
    ON <ch>          OK ON <ch>
    OFF <ch>         OK OFF <ch>
    ALLOFF           OK ALLOFF
    STAT?            OK STAT <ch>:<ON|OFF>:<pct> ... (one item per channel)

Every command is idempotent, so a command whose reply was lost is simply sent again. After a timeout or
a garbled line the driver resynchronises: it drops pending input, sends `PING <n>` and discards lines
until `OK PONG <n>` arrives, so a late reply is never taken for the answer to a later command.

All lights go off on every exit path: use the controller as a context manager (it also turns SIGTERM
into SystemExit while open, and Ctrl-C is KeyboardInterrupt), or call `safe_all_off()` yourself.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from leukoscope.errors import (
    LightControllerError,
    LightDisconnected,
    LightRejected,
    LightTimeout,
    ParameterError,
)
from leukoscope.instrument.shutdown import raise_on_sigterm, signals_deferred

log = logging.getLogger(__name__)

try:  # tcflush on a vanished tty raises termios.error, which is not an OSError
    import termios

    _TERMIOS_ERRORS: tuple[type[BaseException], ...] = (termios.error,)
except ImportError:  # pragma: no cover - Windows
    _TERMIOS_ERRORS = ()

MAX_LINE = 256
"""Longest reply line accepted, bytes; anything longer is garbage."""


@dataclass(frozen=True)
class ControllerInfo:
    """What a controller says about itself."""

    model: str
    serial: str
    firmware: str
    channels: int


@dataclass(frozen=True)
class ChannelState:
    """One output channel: on or off, and its intensity setpoint in percent."""

    on: bool
    intensity_percent: float


class LightController(ABC):
    """A multi-channel light controller. Subclass per controller model; one protocol per class."""

    channels: int = 4

    @abstractmethod
    def identify(self) -> ControllerInfo:
        """Ask the controller who it is."""

    @abstractmethod
    def set_intensity(self, channel: int, percent: float) -> None:
        """Set a channel's intensity setpoint (0-100 %); does not switch it on or off."""

    @abstractmethod
    def on(self, channel: int) -> None:
        """Switch a channel on at its setpoint."""

    @abstractmethod
    def off(self, channel: int) -> None:
        """Switch a channel off."""

    @abstractmethod
    def all_off(self) -> None:
        """Switch every channel off."""

    @abstractmethod
    def status(self) -> dict[int, ChannelState]:
        """Every channel's state, by channel number."""

    @abstractmethod
    def close(self) -> None:
        """Release the port (does not switch anything; see `safe_all_off`)."""

    def lit(self) -> dict[int, float]:
        """The channels that are on now, with their intensity in percent."""
        return {ch: s.intensity_percent for ch, s in self.status().items() if s.on}

    def light(self, channel: int, percent: float) -> None:
        """Set a channel's intensity and switch it on."""
        self.set_intensity(channel, percent)
        self.on(channel)

    def safe_all_off(self) -> bool:
        """Switch everything off, never raising (logs instead); Ctrl-C/SIGTERM wait until done."""
        with signals_deferred():
            try:
                self.all_off()
            except Exception as exc:
                log.error("could not switch the lights off: %s", exc)
                return False
        return True

    def check_channel(self, channel: int) -> None:
        """Raise ParameterError unless `channel` exists on this controller."""
        if not 1 <= channel <= self.channels:
            raise ParameterError(f"light channel {channel} out of range 1-{self.channels}")

    def __enter__(self) -> LightController:
        self._sigterm = raise_on_sigterm()
        self._sigterm.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.safe_all_off()
            self.close()
        finally:
            sigterm = getattr(self, "_sigterm", None)
            if sigterm is not None:
                sigterm.__exit__(None, None, None)


class _Garbled(Exception):
    """A reply line that is not `OK ...` / `ERR ...` in printable ASCII."""


class Lc4Controller(LightController):
    """The LC4 four-channel LED controller over pyserial (device path or any pyserial URL)."""

    def __init__(
        self,
        port: str,
        *,
        baud: int = 115200,
        timeout_s: float = 0.5,
        retries: int = 2,
        channels: int = 4,
    ) -> None:
        import serial

        self.port_name = port
        self.timeout_s = timeout_s
        self.retries = retries
        self.channels = channels
        self._token = 0
        self._dirty = True  # resynchronise before the first command
        self._lock = threading.Lock()  # one command and its reply at a time
        try:
            extra = {} if "://" in port else {"exclusive": True}  # one owner per device
            self._serial: Any = serial.serial_for_url(
                port, baudrate=baud, timeout=timeout_s, write_timeout=timeout_s, **extra
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LightDisconnected(f"cannot open light controller port {port!r}: {exc}") from exc

    @classmethod
    def open(
        cls,
        port: str,
        *,
        baud: int = 115200,
        timeout_s: float = 0.5,
        retries: int = 2,
        channels: int = 4,
    ) -> Lc4Controller:
        """Open the port, check the controller speaks LC4, and switch every channel off."""
        controller = cls(port, baud=baud, timeout_s=timeout_s, retries=retries, channels=channels)
        try:
            info = controller.identify()
            if info.channels < channels:
                raise LightControllerError(
                    f"{port}: controller {info.model} has {info.channels} channels, need {channels}"
                )
            controller.all_off()
        except BaseException:
            controller.close()
            raise
        log.info("light controller %s %s fw %s on %s", info.model, info.serial, info.firmware, port)
        return controller

    # -- the commands ---------------------------------------------------------------------------

    def identify(self) -> ControllerInfo:
        """`IDN?` -> model, serial, firmware, channel count."""
        fields = self._command("IDN?", expect=["IDN"])
        if len(fields) != 5:
            raise LightControllerError(
                f"{self.port_name}: malformed IDN reply {' '.join(fields)!r}"
            )
        try:
            channels = int(fields[4])
        except ValueError:
            raise LightControllerError(
                f"{self.port_name}: bad channel count {fields[4]!r}"
            ) from None
        return ControllerInfo(
            model=fields[1], serial=fields[2], firmware=fields[3], channels=channels
        )

    def set_intensity(self, channel: int, percent: float) -> None:
        """`INT <ch> <pct>`."""
        self.check_channel(channel)
        if not 0.0 <= percent <= 100.0:
            raise ParameterError(f"light intensity {percent} out of range 0-100 %")
        text = f"{percent:.1f}"
        # the echo names the setpoint: a late `OK INT <ch>` of an earlier setpoint is not this answer
        self._command(f"INT {channel} {text}", expect=["INT", str(channel), text])

    def on(self, channel: int) -> None:
        """`ON <ch>`."""
        self.check_channel(channel)
        self._command(f"ON {channel}", expect=["ON", str(channel)])

    def off(self, channel: int) -> None:
        """`OFF <ch>`."""
        self.check_channel(channel)
        self._command(f"OFF {channel}", expect=["OFF", str(channel)])

    def all_off(self) -> None:
        """`ALLOFF`."""
        self._command("ALLOFF", expect=["ALLOFF"])

    def status(self) -> dict[int, ChannelState]:
        """`STAT?` -> every channel's on/off state and setpoint."""
        fields = self._command("STAT?", expect=["STAT"])
        states: dict[int, ChannelState] = {}
        try:
            for item in fields[1:]:
                ch, onoff, pct = item.split(":")
                if onoff not in ("ON", "OFF"):
                    raise ValueError(onoff)
                states[int(ch)] = ChannelState(on=onoff == "ON", intensity_percent=float(pct))
        except ValueError:
            raise LightControllerError(
                f"{self.port_name}: malformed STAT reply {' '.join(fields)!r}"
            ) from None
        return states

    def close(self) -> None:
        """Close the port (idempotent)."""
        try:
            self._serial.close()
        except Exception as exc:  # closing a vanished port may fail; nothing left to do
            log.debug("closing %s: %s", self.port_name, exc)

    # -- the transport --------------------------------------------------------------------------

    def _command(self, command: str, expect: list[str]) -> list[str]:
        """Send `command`, return the reply's fields after `OK`; retry, resync, or raise. One
        command at a time on the port: a second thread waits for the first's reply."""
        with self._lock:
            return self._exchange(command, expect)

    def _exchange(self, command: str, expect: list[str]) -> list[str]:
        attempts = 1 + self.retries
        problem = ""
        timed_out = False
        for attempt in range(attempts):
            if self._dirty and not self._resync():
                problem, timed_out = "no answer to resynchronisation PING", True
                continue
            self._dirty = True  # until a clean reply arrives
            self._write(command)
            try:
                fields = self._read_reply(command, expect)
            except _Garbled as exc:
                problem, timed_out = f"garbled reply {exc}", False
            else:
                if fields is not None:
                    self._dirty = False
                    return fields
                problem, timed_out = f"no reply within {self.timeout_s:g} s", True
            log.warning(
                "%s: %r attempt %d/%d: %s", self.port_name, command, attempt + 1, attempts, problem
            )
        message = f"{self.port_name}: {command!r} failed after {attempts} attempt(s): {problem}"
        raise LightTimeout(message) if timed_out else LightControllerError(message)

    def _read_reply(self, command: str, expect: list[str]) -> list[str] | None:
        """Read lines until this command's reply; None on timeout; skips stale `OK` lines."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            line = self._readline(deadline)
            if line is None:
                return None
            fields = line.split()
            if fields[0] == "ERR":
                self._dirty = False  # the controller answered; the link is in step
                code = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
                text = " ".join(fields[2:]) or "no text"
                raise LightRejected(
                    f"{self.port_name}: controller refused {command!r}: ERR {code} {text}", code
                )
            if fields[1 : 1 + len(expect)] == expect:
                return fields[1:]
            log.debug(
                "%s: skipping stale reply %r while waiting for %r", self.port_name, line, command
            )

    def _readline(self, deadline: float) -> str | None:
        """One reply line (without terminator) before `deadline`; None on timeout; _Garbled."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        raw = self._io(lambda: self._read_until(remaining))
        if not raw.endswith(b"\n"):
            if len(raw) >= MAX_LINE:
                raise _Garbled(f"(over {MAX_LINE} bytes without end of line)")
            return None  # timeout, possibly mid-line: resync drops the rest
        try:
            text = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise _Garbled(repr(raw[:40])) from None
        fields = text.split()
        if not text.isprintable() or not fields or fields[0] not in ("OK", "ERR"):
            raise _Garbled(repr(raw[:40]))
        if fields[0] == "OK" and len(fields) < 2:
            raise _Garbled(repr(raw[:40]))
        return str(text)

    def _read_until(self, timeout_s: float) -> bytes:
        self._serial.timeout = timeout_s
        data: bytes = self._serial.read_until(b"\n", MAX_LINE)
        return data

    def _write(self, command: str) -> None:
        payload = (command + "\n").encode("ascii")
        self._io(lambda: self._serial.write(payload))
        self._io(self._serial.flush)

    def _resync(self) -> bool:
        """Drop pending input, PING with a fresh token, discard lines until its PONG."""
        self._token = (self._token + 1) % 1_000_000
        token = f"{self._token:06d}"
        self._io(self._serial.reset_input_buffer)
        self._write(f"\nPING {token}")  # the blank line ends any partial command first
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                line = self._readline(deadline)
            except _Garbled:
                continue
            if line is None:
                return False
            if line.split()[1:] == ["PONG", token]:
                self._dirty = False
                return True

    def _io(self, operation: Any) -> Any:
        """Run one port operation; a vanished port becomes LightDisconnected."""
        import serial

        try:
            return operation()
        except serial.SerialTimeoutException as exc:
            raise LightTimeout(f"{self.port_name}: write timed out: {exc}") from exc
        except (serial.SerialException, OSError, *_TERMIOS_ERRORS) as exc:
            raise LightDisconnected(
                f"{self.port_name}: light controller disconnected: {exc}"
            ) from exc


def open_serial_controller(
    port: str, *, baud: int, timeout_s: float, retries: int, channels: int = 4
) -> Lc4Controller:
    """Open an LC4 controller on a device path or pyserial URL (not `sim://`, see instrument.rig)."""
    return Lc4Controller.open(
        port, baud=baud, timeout_s=timeout_s, retries=retries, channels=channels
    )

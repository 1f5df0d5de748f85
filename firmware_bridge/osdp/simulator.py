"""Door-panel simulators speaking OSDP on a simulated RS-485 line (a pty), built on libosdp's PeripheralDevice.

Models one door: the strike relay (output 0) unlocks it; the door contact opens only while the strike
is energised unless the door is forced; request-to-exit, fire alarm, tamper and power failure can be
raised; cards and keypad entries can be presented. Events raised while the link is down are kept and
delivered once the control panel is back, as a real panel buffers them. Every command the panel
receives is recorded, so tests and drills can check what went over the wire.

`PanelBus` is the line: one pty whose received bytes every panel sees (multi-drop), each panel answering
only its own address.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.health import now_us
from firmware_bridge.osdp.vocabulary import (
    INPUT_NAMES,
    LOCAL_NAMES,
    STRIKE_OUTPUT,
    TIMER_UNIT_S,
    CallableChannel,
    OutputCode,
    osdp,
)
from firmware_bridge.transport import PtyPair

# A quick panel: it answers as soon as a command is on the line, and looks at least this often (libosdp's
# helper thread would sleep 20 ms between refreshes).
REFRESH_PERIOD_S = 0.005

COMMAND_KINDS = {
    osdp.Command.Output: "output",
    osdp.Command.LED: "led",
    osdp.Command.Buzzer: "buzzer",
    osdp.Command.Keyset: "keyset",
    osdp.Command.Text: "text",
    osdp.Command.Comset: "comset",
    osdp.Command.Manufacturer: "manufacturer",
}


@dataclass(frozen=True, slots=True)
class ReceivedCommand:
    """One command the panel received: kind ("output", "led", "buzzer", "keyset", ...) and its fields."""

    kind: str
    fields: tuple[tuple[str, int | bytes | str], ...]  # bools are ints here
    time_us: int

    def field(self, name: str) -> int | bytes | str:
        return dict(self.fields)[name]


@dataclass(frozen=True, slots=True)
class SimulatedIdentity:
    vendor_code: int = 0x00C0570D
    model: int = 1
    version: int = 1
    serial_number: int = 0x0001
    firmware_version: int = 0x010203


# how a panel is on its line: read, write, wait for bytes, forget what it missed while off
_Line = tuple[
    Callable[[int], bytes], Callable[[bytes], int], Callable[[float], bool] | None, Callable[[], None] | None
]


class PanelSimulator:
    """One OSDP peripheral device (a door panel); it talks once a `PanelBus` powers it on.

    `scbk` None with `install_mode` True models a factory-fresh panel awaiting its key.
    """

    def __init__(
        self,
        address: int,
        scbk: bytes | None,
        *,
        install_mode: bool = False,
        identity: SimulatedIdentity | None = None,
        log_level: int = osdp.LogLevel.Emergency,
    ) -> None:
        self.address = address
        self.scbk = scbk
        self.install_mode = install_mode
        self.identity = identity or SimulatedIdentity(serial_number=address)
        self._log_level = log_level
        self._lock = threading.RLock()
        self.commands: list[ReceivedCommand] = []
        self._backlog: collections.deque[dict[str, object]] = collections.deque()
        self._in_flight = False  # the backlog's head is with libosdp, awaiting its delivery report
        self._inputs = [False] * len(INPUT_NAMES)
        self._local = [False] * len(LOCAL_NAMES)
        self._strike_permanent = False
        self._strike_until = 0.0  # monotonic deadline of a timed strike pulse
        self._pd: osdp.PeripheralDevice | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._wait: Callable[[float], bool] = self._stop.wait
        self._line: _Line | None = None

    # ----- power: on and off model the panel (or its line) going away; door state and events persist -----

    @property
    def running(self) -> bool:
        return self._pd is not None

    def power_on(self, read: Callable[[int], bytes] | None = None, write: Callable[[bytes], int] | None = None,
                 wait: Callable[[float], bool] | None = None, flush: Callable[[], None] | None = None) -> None:
        """Start talking on a line: `read` / `write` its bytes, `wait(t)` until bytes arrive (at most t),
        `flush()` to forget what crossed the line while the panel was off. Without them, back on the line it
        was last on (a panel powered off and on again)."""
        if self._pd is not None:
            return
        if read is None or write is None:
            if self._line is None:
                raise RuntimeError("the panel was never on a line")
            read, write, wait, flush = self._line
        self._line = (read, write, wait, flush)
        if flush is not None:
            flush()
        flags = [osdp.LibFlag.InstallMode] if self.install_mode and self.scbk is None else []
        ident = self.identity
        info = osdp.PDInfo(
            self.address,
            CallableChannel(read, write),
            scbk=self.scbk,
            name=f"sim-{self.address}",
            flags=flags,
            id=osdp.PdId(ident.version, ident.model, ident.vendor_code, ident.serial_number,
                         ident.firmware_version),
        )
        caps = osdp.PDCapabilities([
            (osdp.Capability.ContactStatusMonitoring, 1, len(INPUT_NAMES)),
            (osdp.Capability.OutputControl, 1, 1),
            (osdp.Capability.LEDControl, 1, 1),
            (osdp.Capability.AudibleControl, 1, 1),
            (osdp.Capability.CardDataFormat, 1, 1),
            (osdp.Capability.CommunicationSecurity, 1, 1),
        ])
        self._in_flight = False
        self._pd = osdp.PeripheralDevice(info, caps, log_level=self._log_level,
                                         command_handler=self._on_command,
                                         event_completion_handler=self._on_event_done)
        self._pd.lock = threading.Lock()  # the wrapper's methods serialise on it against refresh
        self._wait = wait or self._stop.wait
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name=f"osdp-sim-{self.address}", daemon=True)
        self._worker.start()
        # Announce the present input state, as a panel does after power-up.
        self._queue_input_report()
        self._queue_local_report()

    def power_off(self) -> None:
        """The link goes silent; events raised from now on wait in the panel's buffer."""
        if self._pd is None:
            return
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        self._pd = None

    @property
    def online(self) -> bool:
        pd = self._pd
        return pd is not None and bool(pd.is_online())

    @property
    def secure(self) -> bool:
        pd = self._pd
        return pd is not None and bool(pd.is_sc_active())

    # ----- the door -----

    @property
    def strike_active(self) -> bool:
        with self._lock:
            return self._strike_permanent or time.monotonic() < self._strike_until

    @property
    def door_open(self) -> bool:
        return self._inputs[0]

    def open_door(self, *, force: bool = False) -> bool:
        """Someone pulls the door; it opens only when the strike is released, or when forced."""
        with self._lock:
            if not (self.strike_active or force):
                return False
            self._set_input(0, True)
            return True

    def close_door(self) -> None:
        self._set_input(0, False)

    def press_exit_button(self, pressed: bool = True) -> None:
        self._set_input(1, pressed)

    def raise_fire_alarm(self, active: bool = True) -> None:
        self._set_input(2, active)

    def set_tamper(self, active: bool = True) -> None:
        self._set_local(0, active)

    def set_power_failure(self, active: bool = True) -> None:
        self._set_local(1, active)

    def present_card(self, card_hex: str, bits: int, reader: int = 0) -> None:
        data = bytes.fromhex(card_hex)
        if not 0 < bits <= len(data) * 8:
            raise ValueError(f"{bits} bits do not fit in {len(data)} bytes of card data")
        self._queue({"event": osdp.Event.CardRead, "reader_no": reader, "format": osdp.CardFormat.Wiegand,
                     "direction": 0, "length": bits, "data": data})

    def type_keys(self, keys: str, reader: int = 0) -> None:
        self._queue({"event": osdp.Event.KeyPress, "reader_no": reader, "data": keys.encode("ascii")})

    @property
    def pending_events(self) -> int:
        with self._lock:
            return len(self._backlog)

    # ----- internals -----

    def _set_input(self, index: int, active: bool) -> None:
        with self._lock:
            if self._inputs[index] == active:
                return
            self._inputs[index] = active
            self._queue_input_report()

    def _set_local(self, index: int, active: bool) -> None:
        with self._lock:
            if self._local[index] == active:
                return
            self._local[index] = active
            self._queue_local_report()

    def _queue_input_report(self) -> None:
        self._queue({"event": osdp.Event.Status, "type": osdp.StatusReportType.Input,
                     "report": bytes(int(v) for v in self._inputs)})

    def _queue_local_report(self) -> None:
        self._queue({"event": osdp.Event.Status, "type": osdp.StatusReportType.Local,
                     "report": bytes(int(v) for v in self._local)})

    def _queue(self, event: dict[str, object]) -> None:
        with self._lock:
            self._backlog.append(event)

    def _run(self) -> None:
        # Refresh libosdp and hand it the oldest buffered event, one at a time: an event leaves the
        # buffer only when libosdp reports it delivered, so a link lost mid-delivery loses nothing.
        unread = False
        while not self._stop.is_set():
            if unread:  # bytes libosdp left on the line: wait the period rather than spin on them
                self._stop.wait(REFRESH_PERIOD_S)
            else:
                self._wait(REFRESH_PERIOD_S)
            pd = self._pd
            if pd is None or self._stop.is_set():
                continue
            with pd.lock:
                pd.ctx.refresh()
            unread = self._wait(0)
            while pd.get_command(timeout=-1) is not None:
                pass  # the wrapper queues every command too; we record them in _on_command
            if not pd.is_online() or (self.scbk is not None and not pd.is_sc_active()):
                continue
            with self._lock:
                if self._in_flight or not self._backlog:
                    continue
                event = self._backlog[0]
                self._in_flight = True
            if pd.submit_event(event) is False:
                with self._lock:
                    self._in_flight = False

    def _on_event_done(self, _event: dict[str, object], status: int) -> None:
        with self._lock:
            if status == osdp.CompletionStatus.Ok and self._in_flight and self._backlog:
                self._backlog.popleft()
            self._in_flight = False  # failed, flushed or aborted: offered again once the link allows

    def _on_command(self, command: dict[str, object]) -> tuple[int, None]:
        kind = COMMAND_KINDS.get(int(command.get("command", -1)), f"command-{command.get('command')}")
        fields = tuple(sorted((k, v) for k, v in command.items()
                              if k != "command" and isinstance(v, int | bytes | str)))
        with self._lock:
            self.commands.append(ReceivedCommand(kind, fields, now_us()))
            if kind == "output" and command.get("output_no") == STRIKE_OUTPUT:
                self._apply_strike(int(command["control_code"]), int(command.get("timer_count", 0)))
            elif kind == "keyset":
                key = command.get("data")
                self.scbk = bytes(key) if isinstance(key, bytes) else self.scbk
                self.install_mode = False
        return 0, None

    def _apply_strike(self, code: int, count: int) -> None:
        now = time.monotonic()
        if code in (OutputCode.PERMANENT_ON, OutputCode.PERMANENT_ON_AFTER_TIMER):
            self._strike_permanent = True
        elif code in (OutputCode.PERMANENT_OFF, OutputCode.PERMANENT_OFF_AFTER_TIMER):
            self._strike_permanent = False
        if code in (OutputCode.PERMANENT_ON, OutputCode.PERMANENT_OFF, OutputCode.TEMPORARY_OFF):
            self._strike_until = 0.0
        elif code == OutputCode.TEMPORARY_ON:
            self._strike_until = now + count * TIMER_UNIT_S


class PanelBus:
    """A simulated multi-drop line: one pty; every byte the control panel sends reaches every panel.

    With `link`, the line keeps one path across stop/start, as a USB adapter keeps its by-id name. With
    `baudrate`, bytes take the time they take on an RS-485 line at that rate (10 bits each, half duplex):
    the panels see the control panel's bytes only once they have crossed the line, and their replies reach
    it after their own transmission time. Without it the pty delivers at once.
    """

    def __init__(self, panels: list[PanelSimulator], *, link: Path | None = None,
                 baudrate: int | None = None) -> None:
        if len({p.address for p in panels}) != len(panels):
            raise ValueError("panel addresses must be unique on a line")
        if baudrate is not None and baudrate <= 0:
            raise ValueError("a line's baud rate is positive")
        self.panels = {p.address: p for p in panels}
        self._link = link
        self._pty: PtyPair | None = None
        self._inbox: dict[int, bytearray] = {p.address: bytearray() for p in panels}
        self._lock = threading.Lock()
        self._byte_s = 10 / baudrate if baudrate else 0.0
        self._line_free = 0.0  # monotonic time the line is quiet again
        self._crossing: collections.deque[tuple[float, bytes]] = collections.deque()  # (arrives, bytes) on the line

    @property
    def path(self) -> str:
        if self._pty is None:
            raise RuntimeError("line not started")
        return self._pty.path

    def start(self) -> PanelBus:
        if self._pty is None:
            self._pty = PtyPair(self._link)
            for inbox in self._inbox.values():
                inbox.clear()
            for address, panel in self.panels.items():
                panel.power_on(self._reader(address), self._write, self._waiter(address), self._flusher(address))
        return self

    def stop(self) -> None:
        """Cut the line: panels go silent, the pty disappears, panel state and buffered events remain."""
        for panel in self.panels.values():
            panel.power_off()
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> PanelBus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def power_off_panel(self, address: int) -> None:
        """One panel dies while the line and the other panels stay up."""
        self.panels[address].power_off()

    def power_on_panel(self, address: int) -> None:
        if self._pty is None:
            raise RuntimeError("line not started")
        self.panels[address].power_on(self._reader(address), self._write, self._waiter(address),
                                      self._flusher(address))

    def inject_noise(self, data: bytes) -> int:
        """Put bytes on the line that no panel sent (electrical noise, a misbehaving device)."""
        return self._write(data)

    def _reader(self, address: int) -> Callable[[int], bytes]:
        def read(max_bytes: int) -> bytes:
            with self._lock:
                pty = self._pty
                if pty is not None and (received := pty.read(4096)):
                    self._crossing.append((self._occupy(len(received)), received))
                now = time.monotonic()
                while self._crossing and self._crossing[0][0] <= now:
                    _arrives, received = self._crossing.popleft()
                    for inbox in self._inbox.values():
                        inbox += received
                inbox = self._inbox[address]
                chunk = bytes(inbox[:max_bytes])
                del inbox[:max_bytes]
                return chunk

        return read

    def _flusher(self, address: int) -> Callable[[], None]:
        """A panel powers up with an empty receive buffer: what crossed the line while it was off is gone
        for it (and stays with the panels that were on)."""

        def flush() -> None:
            with self._lock:
                pty = self._pty
                while pty is not None and (received := pty.read(4096)):  # there only because no panel read
                    for other, inbox in self._inbox.items():
                        if other != address and self.panels[other].running:
                            inbox += received
                self._inbox[address].clear()

        return flush

    def _waiter(self, address: int) -> Callable[[float], bool]:
        """Wait for bytes for this panel: already in its inbox, or arriving on the line. (On a shared line a
        panel whose bytes another panel's thread took from the pty notices them at its next period.)"""

        def wait(timeout_s: float) -> bool:
            with self._lock:
                pty = self._pty
                if self._inbox[address]:
                    return True
                arrives = self._crossing[0][0] if self._crossing else None
            if arrives is not None:  # bytes on their way along the line
                time.sleep(max(0.0, min(timeout_s, arrives - time.monotonic())))
                return arrives <= time.monotonic()
            if pty is None:
                time.sleep(timeout_s)
                return False
            return pty.wait_readable(timeout_s)

        return wait

    def _occupy(self, size: int) -> float:
        """Put `size` bytes on the line (under the lock); when the last of them has crossed it."""
        self._line_free = max(self._line_free, time.monotonic()) + size * self._byte_s
        return self._line_free

    def _write(self, data: bytes) -> int:
        if self._byte_s:
            with self._lock:
                done = self._occupy(len(data))
            time.sleep(max(0.0, done - time.monotonic()))  # the panel's UART sends it, byte after byte
        pty = self._pty
        return pty.write(data) if pty is not None else 0

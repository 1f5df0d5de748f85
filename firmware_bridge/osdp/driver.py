"""OSDP control-panel driver: several door panels on one line, Secure Channel, events and door commands.

libosdp does the protocol; this module maps its events to Custodian's typed events, tracks each panel's
health, and owns recovery: a broken transport is reopened with back-off, and a panel that dropped
offline is re-initialised on Custodian's back-off schedule rather than libosdp's fixed five-minute wait.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from firmware_bridge.backoff import Backoff, RetrySchedule
from firmware_bridge.errors import DeviceOffline, ProtocolError
from firmware_bridge.events import CardRead, DeviceEvent, Health, HealthEvent, InputChange, KeyPress
from firmware_bridge.health import HealthTracker, now_us
from firmware_bridge.osdp.vocabulary import (
    CARD_FORMATS,
    INPUT_NAMES,
    LOCAL_NAMES,
    STRIKE_OUTPUT,
    BuzzerTone,
    CallableChannel,
    LedColor,
    LedPattern,
    OutputCode,
    osdp,
    timer_count,
)
from firmware_bridge.transport import ReconnectingPort

# One thread refreshes libosdp and supervises: at least every REFRESH_PERIOD_S (libosdp needs a refresh at
# least every 50 ms; its own helper thread sleeps 20 ms between refreshes), and at once when the panels'
# reply arrives on the line, so a reply (a card read) is handled as it comes and the next command follows
# it, instead of each step of an exchange waiting for the next period. A submitted command is sent at once
# too. What is left is libosdp's poll interval (OSDP_PD_POLL_TIMEOUT_MS, 50 ms from the last reply, fixed when
# libosdp is built): a card waits for the next poll, 25 ms on average; the loop wakes when that poll is due.
REFRESH_PERIOD_S = 0.005
LIBOSDP_POLL_S = 0.0512  # OSDP_PD_POLL_TIMEOUT_MS, which must have passed by a whole ms (libosdp counts ms)
DEFAULT_STALE_WINDOW_S = 1.0
EventSink = Callable[[DeviceEvent], None]


@dataclass(frozen=True, slots=True)
class PanelConfig:
    """One panel on the line and its Secure Channel base key (None: plain text, not for production).

    With `install_mode`, a factory-fresh panel is reached over the default key (SCBK-D) and libosdp
    provisions `scbk` to it (osdp_KEYSET); configure the panel without install mode afterwards.
    """

    name: str
    address: int
    scbk: bytes | None
    install_mode: bool = False
    input_names: tuple[str, ...] = INPUT_NAMES


@dataclass(frozen=True, slots=True)
class PanelIdentity:
    """What the panel reports about itself (osdp_PDID)."""

    vendor_code: int
    model: int
    version: int
    serial_number: int
    firmware_version: int


@dataclass(slots=True)
class _PanelState:
    config: PanelConfig
    health: HealthTracker
    retry: RetrySchedule
    online_since: float = 0.0  # monotonic time of the last offline->online transition
    inputs: dict[str, bool] = field(default_factory=dict)


class OsdpLine:
    """The control panel for one RS-485 line (or pty, or serial-over-TCP URL) and its panels.

    Events go to `sink` if given (called on the line's thread: hand them on quickly), otherwise to an
    internal queue read with `get_event`. A card read or keypress arriving within `stale_window_s` of
    its panel coming (back) online is flagged stale: the panel may have buffered it while the link was
    down, and OSDP carries no timestamp to tell. Stale reads must never open a door.
    """

    def __init__(
        self,
        url: str,
        panels: Sequence[PanelConfig],
        *,
        sink: EventSink | None = None,
        baudrate: int = 115200,
        backoff: Backoff | None = None,
        # libosdp sits out 300 s after a failed initialisation (a NAK, a late reply); a panel that is back
        # is re-initialised within 8 s at worst, and a dead one costs its line one try every 8 s
        reinit_backoff: Backoff = Backoff(1.0, 8.0),
        stale_window_s: float = DEFAULT_STALE_WINDOW_S,
        log_level: int = osdp.LogLevel.Emergency,
    ) -> None:
        if not panels:
            raise ValueError("an OSDP line needs at least one panel")
        if len({p.address for p in panels}) != len(panels) or len({p.name for p in panels}) != len(panels):
            raise ValueError("panel names and addresses must be unique on a line")
        self.url = url
        self._queue: queue.Queue[DeviceEvent] = queue.Queue()
        self._sink = sink or self._queue.put
        self._stale_window_s = stale_window_s
        self._panels = {
            p.name: _PanelState(p, HealthTracker(p.name, self._publish_health), RetrySchedule(reinit_backoff))
            for p in panels
        }
        self._link_events: queue.SimpleQueue[tuple[bool, str]] = queue.SimpleQueue()
        self._port = ReconnectingPort(url, baudrate=baudrate, backoff=backoff or Backoff(0.1, 2.0),
                                      listener=lambda up, why: self._link_events.put((up, why)))
        infos = []
        for p in panels:
            flags = [osdp.LibFlag.EnforceSecure] if p.scbk is not None else []
            if p.install_mode:
                flags = [osdp.LibFlag.InstallMode]
            infos.append(osdp.PDInfo(p.address, CallableChannel(self._port.read, self._port.write),
                                     scbk=p.scbk, name=p.name, flags=flags))
        self._cp = osdp.ControlPanel(infos, log_level=log_level)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._link_up = False
        self._link_reason = "not connected yet"

    # ----- lifecycle -----

    def start(self) -> OsdpLine:
        if self._thread is None:
            for state in self._panels.values():
                self._restart_retries(state)
            self._cp.lock = threading.Lock()  # the wrapper's methods serialise on it against refresh
            self._stop.clear()
            self._thread = threading.Thread(target=self._supervise, name=f"osdp-line {self.url}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._port.close()

    def __enter__(self) -> OsdpLine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- reading -----

    def get_event(self, timeout_s: float | None = None) -> DeviceEvent | None:
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def health(self, panel: str) -> Health:
        return self._state(panel).health.health

    def health_reason(self, panel: str) -> str:
        return self._state(panel).health.reason

    def incidents(self, panel: str) -> dict[str, int]:
        """Counts of trouble seen on this panel (e.g. "sink_errors")."""
        return dict(self._state(panel).health.counters)

    def secure(self, panel: str) -> bool:
        return self._cp.is_sc_active(self._state(panel).config.address)

    def wait_online(self, panel: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.health(panel) is Health.ONLINE:
                return True
            time.sleep(0.01)
        return self.health(panel) is Health.ONLINE

    def identity(self, panel: str) -> PanelIdentity:
        state = self._online_state(panel)
        with self._cp.lock:
            raw = self._cp.ctx.get_pd_id(self._index(state))
        if not raw:
            raise ProtocolError(f"{panel}: no identity reported yet")
        return PanelIdentity(raw["vendor_code"] & 0xFFFFFFFF, raw["model"], raw["version"],
                             raw["serial_number"] & 0xFFFFFFFF, raw["firmware_version"] & 0xFFFFFFFF)

    # ----- commands -----

    def pulse_strike(self, panel: str, seconds: float) -> None:
        """Release the door strike for `seconds` (0.1 s steps, at most 25.5 s), then relock."""
        self._submit(panel, {"command": osdp.Command.Output, "output_no": STRIKE_OUTPUT,
                             "control_code": OutputCode.TEMPORARY_ON, "timer_count": timer_count(seconds)})

    def set_strike(self, panel: str, released: bool) -> None:
        """Hold the strike released (e.g. fire release) or locked until told otherwise."""
        code = OutputCode.PERMANENT_ON if released else OutputCode.PERMANENT_OFF
        self._submit(panel, {"command": osdp.Command.Output, "output_no": STRIKE_OUTPUT,
                             "control_code": code, "timer_count": 0})

    def set_led(self, panel: str, color: LedColor, pattern: LedPattern = LedPattern.STEADY,
                seconds: float | None = None, *, reader: int = 0, led: int = 0) -> None:
        """Show a colour; with `seconds`, temporarily, then back to the LED's permanent state."""
        on, off = pattern.value
        command: dict[str, object] = {
            "command": osdp.Command.LED, "reader": reader, "led_number": led,
            "control_code": 2 if seconds is not None else 1,  # temporary: set+start timer; permanent: set
            "on_count": on, "off_count": off, "on_color": int(color),
            "off_color": int(color) if off == 0 else int(LedColor.OFF),
            "temporary": seconds is not None, "timer_count": timer_count(seconds or 0.1),
        }
        self._submit(panel, command)

    def buzz(self, panel: str, *, on_s: float = 0.2, off_s: float = 0.2, repeats: int = 1,
             reader: int = 0) -> None:
        self._submit(panel, {"command": osdp.Command.Buzzer, "reader": reader,
                             "control_code": BuzzerTone.DEFAULT, "on_count": timer_count(on_s),
                             "off_count": timer_count(off_s), "rep_count": max(0, min(255, repeats))})

    # ----- internals -----

    def _state(self, panel: str) -> _PanelState:
        try:
            return self._panels[panel]
        except KeyError:
            raise KeyError(f"no panel named {panel!r} on {self.url}") from None

    def _index(self, state: _PanelState) -> int:
        return self._cp.pd_addr.index(state.config.address)

    def _online_state(self, panel: str) -> _PanelState:
        state = self._state(panel)
        if state.health.health is Health.OFFLINE:
            raise DeviceOffline(f"{panel} is offline: {state.health.reason}")
        return state

    def _submit(self, panel: str, command: dict[str, object]) -> None:
        state = self._online_state(panel)
        if self._cp.submit_command(state.config.address, command) is False:
            raise ProtocolError(f"{panel}: libosdp refused the command (queue full or not supported)")
        if self._thread is not None:
            with self._cp.lock:  # on the wire now if the line is idle, else right after the reply in flight
                self._cp.ctx.refresh()
                self._cp.ctx.refresh()

    def _supervise(self) -> None:
        unread = False
        replied = 0.0  # when the panels last sent bytes: libosdp polls LIBOSDP_POLL_S after a reply
        while not self._stop.is_set():
            if unread:  # bytes libosdp did not take (noise, a late reply): wait the period instead of spinning
                self._stop.wait(REFRESH_PERIOD_S)
            else:
                poll_due = replied + LIBOSDP_POLL_S - time.monotonic()
                wait = REFRESH_PERIOD_S if poll_due <= 0 else min(REFRESH_PERIOD_S, poll_due)
                if self._port.wait_readable(wait):
                    replied = time.monotonic()
            if self._stop.is_set():
                return
            with self._cp.lock:
                self._cp.ctx.refresh()  # takes the reply
                self._cp.ctx.refresh()  # and sends what follows it (a queued command, the next panel's poll)
            unread = self._port.wait_readable(0)
            if not self._link_up:
                self._port.ensure_open()  # do not wait for libosdp to touch a port it gave up on
            status = self._cp.status()
            secure = self._cp.sc_status()
            # After reading status, so a link loss that made libosdp drop a panel is known as its reason.
            restarted = self._drain_link_events()
            for state in self._panels.values():
                index = self._index(state)
                # a panel re-initialised just now is not online, whatever libosdp said a moment before
                online = bool(status >> index & 1) and state.config.name not in restarted
                self._update_health(state, online, bool(secure >> index & 1))
                while (event := self._cp.get_event(state.config.address, timeout=-1)) is not None:
                    self._dispatch(state, event)

    def _drain_link_events(self) -> set[str]:
        """Apply link changes; the panels re-initialised because the link came back."""
        restarted: set[str] = set()
        while True:
            try:
                up, reason = self._link_events.get_nowait()
            except queue.Empty:
                return restarted
            self._link_up, self._link_reason = up, reason
            for state in self._panels.values():
                if not up:
                    state.health.offline(reason)
                    restarted.discard(state.config.name)
                elif state.online_since and state.health.health is Health.OFFLINE:
                    # libosdp may be sitting out a long offline wait; re-initialise the panel now.
                    state.retry.succeeded()
                    self._cp.disable_pd(state.config.address)
                    restarted.add(state.config.name)

    @staticmethod
    def _restart_retries(state: _PanelState) -> None:
        state.retry.succeeded()
        state.retry.failed()  # first forced re-initialisation one back-off step from now

    def _update_health(self, state: _PanelState, online: bool, secure: bool) -> None:
        tracker = state.health
        online = online and self._link_up  # libosdp notices a dead link only on its next send
        if online:
            if tracker.health is Health.OFFLINE:
                state.online_since = time.monotonic()
            if state.config.install_mode and not secure:
                tracker.degraded("install mode: awaiting its Secure Channel key")
            elif state.config.scbk is not None and not secure:
                tracker.degraded("online without Secure Channel")
            else:
                tracker.online("secure channel established" if secure else "online")
            return
        if tracker.health is not Health.OFFLINE:
            tracker.offline(self._link_reason if not self._link_up else "no valid reply from panel")
            self._restart_retries(state)
        self._advance_reinit(state)

    def _advance_reinit(self, state: _PanelState) -> None:
        """Re-initialise an offline panel (disable, then enable) whenever its back-off step is due."""
        address = state.config.address
        if not self._cp.is_pd_enabled(address):
            # Completes a re-initialisation, and also undoes one that raced with the panel recovering.
            self._cp.enable_pd(address)
        elif state.retry.due():
            # Also while the link is down: libosdp only touches the port again once re-enabled.
            state.retry.failed()
            self._cp.disable_pd(address)

    def _dispatch(self, state: _PanelState, event: dict[str, object]) -> None:
        name = state.config.name
        now = now_us()
        stale = time.monotonic() - state.online_since < self._stale_window_s
        kind = event.get("event")
        if kind == osdp.Event.CardRead:
            data = _field_bytes(event, "data")
            fmt = _field_int(event, "format")
            bits = _field_int(event, "length", len(data) * 8)
            self._emit(state, CardRead(name, _field_int(event, "reader_no"), data.hex().upper(), bits,
                                       CARD_FORMATS.get(fmt, f"format-{fmt}"), now, stale=stale))
        elif kind == osdp.Event.KeyPress:
            keys = _field_bytes(event, "data").decode("ascii", "replace")
            self._emit(state, KeyPress(name, _field_int(event, "reader_no"), keys, now, stale=stale))
        elif kind == osdp.Event.Status:
            report = _field_bytes(event, "report")
            if event.get("type") == osdp.StatusReportType.Input:
                self._report_inputs(state, state.config.input_names, report, now)
            elif event.get("type") == osdp.StatusReportType.Local:
                self._report_inputs(state, LOCAL_NAMES, report, now)

    def _publish_health(self, event: HealthEvent) -> None:
        self._emit(self._panels[event.device], event)

    def _emit(self, state: _PanelState, event: DeviceEvent) -> None:
        # A failing consumer must not stop the line: count it and carry on.
        try:
            self._sink(event)
        except Exception:
            state.health.count("sink_errors")

    def _report_inputs(self, state: _PanelState, names: Sequence[str], report: bytes, now: int) -> None:
        # Emit only changes; the first report after start gives every input's initial state.
        for index, value in enumerate(report):
            input_name = names[index] if index < len(names) else f"input-{index}"
            active = bool(value)
            if state.inputs.get(input_name) != active:
                state.inputs[input_name] = active
                self._emit(state, InputChange(state.config.name, input_name, active, now))


def _field_int(event: dict[str, object], key: str, default: int = 0) -> int:
    value = event.get(key, default)
    return value if isinstance(value, int) else default


def _field_bytes(event: dict[str, object], key: str) -> bytes:
    value = event.get(key, b"")
    return bytes(value) if isinstance(value, bytes | bytearray) else b""

"""Portal exit control and door supervision for a whole site, around one tracking engine.

Drivers hand their typed events to `submit` from their own threads; one decision thread maps them to the
engine's inputs (tag batches with their stale flags, round ends, reader health, badges, doors, cameras),
advances the engine, makes the tick's records durable (the recorder's local log, one fdatasync), then drives
the panels (allow: pulse the strike, green; block: stay locked, red, buzzer) and publishes to the live bus.
A door never acts on a decision that is not on stable storage; the register is written later, off the hot
path, by the recorder's own thread.

When it advances: every TICK_S, and as soon as the engine's horizon passes an event that can decide an exit:
a badge, its floor and its cap (badge + settle_us), and every round end, tag batch and health change at a
portal with a badge waiting. So an exit is allowed as soon as the engine has whole inventory rounds after
the badge (tracking.engine), and refused on the first read of an item it may not take; the settle time is
only the cap. The engine keeps watching the door after an allow: an item that crosses without being covered
by it raises `unauthorized_exit`, published like every alarm.

How far: the engine processes what is older than its `now` minus reorder_us, the time devices may be late
by. The controller passes a later `now` when it knows more (a watermark): every portal reader that is not
offline has reported a round end since, and a reader's reports come in order (a round's tags before its
end), so nothing older can still come from it; host-stamped events (cards, health, cameras, doors) are
stamped as they arrive, within HOST_LAG_US. Then the reorder buffer costs HOST_LAG_US on the allow path, not
reorder_us; a reader without round ends, or one that lags, holds it back to the plain clock.

Fail-secure (readers offline: `readers_offline_fail_secure`) is the engine's reason, fed by the readers'
health. Life safety: a fire-alarm input on any panel releases every door at once and keeps them released
until it clears. The release does not queue behind the engine (a decision being made, kernels compiling on
a first run, a snapshot swap): `submit` sends it from the thread that heard the alarm, and sends it again
to a panel that comes back on the line while the alarm lasts. The decision thread does the rest (records,
guards' screens, relocking when it clears).
"""

from __future__ import annotations

import heapq
import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from controllers import people
from controllers.alarms import AlarmBook, Evidence, Raised
from controllers.bus import LiveBus, LiveKind, Severity
from controllers.control import BlockState, DoorState, NoFreshBlock, OverrideOutcome, OverrideRefused, UnknownPortal
from controllers.recorder import LogError, Recorder
from controllers.records import (
    DeviceHealthChanged,
    DoorHeldOpen,
    ExitDecision,
    ExitOverride,
    ExitOverrideRefused,
    FireRelease,
    ItemCrossed,
    Record,
)
from controllers.tag_ingest import read_batch
from firmware_bridge.errors import BridgeError
from firmware_bridge.events import (
    CardRead,
    Health,
    HealthEvent,
    InputChange,
    InventoryRoundEnd,
    SensorCount,
    TagBatch,
)
from firmware_bridge.osdp.vocabulary import LedColor, LedPattern
from tracking.engine import Engine
from tracking.events import (
    BadgePresentation,
    CameraCount,
    DoorInput,
    FireAlarmInput,
    InventoryRound,
    OverrideRequest,
    ReaderHealth,
)
from tracking.results import Alarm, Decision, Movement
from tracking.vocabulary import decision_title, kept_shut_sentence, reason_sentence

log = logging.getLogger(__name__)
TICK_S = 0.01  # the engine is advanced at least this often (movements settle, caps pass, doors are watched)
BURST = 1000  # events taken from the queue before the engine is advanced again
HOST_LAG_US = 2_000  # a host-stamped event reaches the controller within this (a later badge is still decided)
HELD_OPEN_US = 30_000_000  # a door open longer than this after a pass is "held open"
NOT_RECORDED = "not_recorded_door_kept_locked"  # an allowed exit whose record could not be made durable
BLOCKED_KIND = {"exit": "exit_blocked", "entry": "entry_blocked"}  # the alarm of a refused badge, by its way


class DoorPanels(Protocol):
    """What the controller needs from an access-panel driver (the OSDP line implements it)."""

    def pulse_strike(self, panel: str, seconds: float) -> None: ...

    def set_strike(self, panel: str, released: bool) -> None: ...

    def set_led(self, panel: str, color: LedColor, pattern: LedPattern = ...) -> None: ...

    def buzz(self, panel: str, *, on_s: float = ..., off_s: float = ..., repeats: int = ...) -> None: ...


@dataclass
class PortalWiring:
    """How one portal is equipped, from the register's devices."""

    portal_id: int
    code: str
    panel: str | None = None
    readers: tuple[str, ...] = ()
    strike_s: float = 3.0
    camera: str | None = None


@dataclass(frozen=True, slots=True)
class PeopleCount:
    """A camera's count of people passing a portal (from vision.people)."""

    camera: str
    count: int
    time_us: int
    frame_png: bytes | None = None


@dataclass
class _PortalState:
    locked: bool = True
    open: bool = False
    open_since_us: int = 0
    held_open_alarmed: bool = False
    panel_online: bool = True
    offline_readers: set[str] = field(default_factory=set)
    last_block: Decision | None = None
    block_alarm: int | None = None  # the alarm-book id of last_block
    last_frame_png: bytes | None = None


@dataclass(frozen=True, slots=True)
class Names:
    """Register names for the ids the engine speaks, so guards and the journal read words, not numbers."""

    portals: dict[int, str]
    venues: dict[int, str]
    items: dict[int, str]  # item id -> "register/copy"
    epcs: dict[int, str]
    people: dict[int, str]


@dataclass(frozen=True, slots=True)
class DecisionTiming:
    """Where one exit decision's time went, on the controller's clock (us): bench/exit_latency.py's stages."""

    portal: str
    allow: bool
    badge_us: int  # the card read reached the host (the badge's time)
    decided_us: int  # the engine's timeline time of the decision (the evidence it waited for)
    tick_us: int  # the tick that brought it out started
    engine_us: float  # that tick's engine time
    durable_us: float  # making the tick's records durable, before any door acted
    acted_us: int  # the door commands were handed to the panel driver


@dataclass(frozen=True, slots=True)
class _Step:
    """A record of this tick and what to do once the recorder has it (`act(durable)`)."""

    record: Record
    act: Callable[[bool], None]
    also: tuple[Record, ...] = ()  # more records made durable with it (a block's alarm)


@dataclass(frozen=True, slots=True)
class _OverrideAsk:
    """A guard's override, authenticated by the site, on its way into the engine through the queue."""

    portal_code: str
    guard_person_id: int
    guard: str
    reason: str
    alarm_id: int | None
    answer: Future[OverrideOutcome]


@dataclass(frozen=True, slots=True)
class _ReleaseFailed:
    """A fire release a panel could not take (it is sent again when the panel is back)."""

    panel: str
    reason: str


class PortalController:
    def __init__(
        self,
        engine: Engine,
        wiring: list[PortalWiring],
        names: Names,
        bus: LiveBus,
        recorder: Recorder,
        *,
        panels: DoorPanels | None = None,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
        alarms: AlarmBook | None = None,
        zone: ZoneInfo = ZoneInfo("UTC"),
    ) -> None:
        """zone: the site's time zone, for the clock times in guards' sentences."""
        self.engine = engine
        self.zone = zone
        self.book = alarms or AlarmBook(recorder, bus, clock=clock)
        self.names = names
        self.bus = bus
        self.recorder = recorder
        self.panels = panels
        self.clock = clock
        self.wiring = {w.portal_id: w for w in wiring}
        self.by_panel = {w.panel: w for w in wiring if w.panel}
        self.by_reader = {r: w for w in wiring for r in w.readers}
        self.by_camera = {w.camera: w for w in wiring if w.camera}
        self.by_code = {w.code: w for w in wiring}
        self.state = {w.portal_id: _PortalState() for w in wiring}
        self.fire_active = False  # as the decision thread has applied it
        self._fire_heard = False  # as the drivers' threads reported it (the release follows this one)
        self._fire_lock = threading.Lock()
        self.held_open_us = HELD_OPEN_US
        self.decisions = 0
        self.timings: deque[DecisionTiming] = deque(maxlen=10_000)
        self.movements = 0
        self.alarms = 0
        self._events: queue.Queue[object] = queue.Queue()
        self._due: list[int] = []  # heap of clock times at which the engine's horizon passes a deciding event
        self._watch_until: dict[int, int] = {}  # portal id -> end of its latest badge's wait (cap + reorder)
        self._overrides: dict[tuple[int, int, int], _OverrideAsk] = {}  # (portal, guard, time) -> waiting ask
        self._round_seen: dict[str, int] = {}  # reader -> its latest round end: nothing older can still come
        self.engine_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rewire(self, wiring: list[PortalWiring]) -> None:
        """The register's portals or devices changed (called with `engine_lock` held): new portals start
        locked with fresh state, known ones keep theirs, and a removed reader no longer counts as offline."""
        state = {}
        for w in wiring:
            state[w.portal_id] = self.state.get(w.portal_id) or _PortalState()
            state[w.portal_id].offline_readers &= set(w.readers)
        self.state = state
        self.wiring = {w.portal_id: w for w in wiring}
        self.by_panel = {w.panel: w for w in wiring if w.panel}
        self.by_reader = {r: w for w in wiring for r in w.readers}
        self.by_camera = {w.camera: w for w in wiring if w.camera}
        self.by_code = {w.code: w for w in wiring}

    # ---- input side (any thread) ----
    def submit(self, event: object) -> None:
        self._life_safety(event)
        self._events.put(event)

    def _life_safety(self, event: object) -> None:
        """Release every door on a fire alarm, and a panel back on the line during one, before queueing."""
        if isinstance(event, InputChange) and event.input == "fire_alarm":
            with self._fire_lock:
                if event.active and not self._fire_heard:
                    self._release({w.panel for w in self.wiring.values() if w.panel})
                self._fire_heard = event.active
        elif isinstance(event, HealthEvent) and event.health != Health.OFFLINE and event.device in self.by_panel:
            with self._fire_lock:  # also online without Secure Channel: in a fire the door opens all the same
                if self._fire_heard:
                    self._release({event.device})

    def _release(self, panels: set[str]) -> None:
        """Hold the strikes released (under _fire_lock); a panel that cannot hear it now gets it when it is
        back (above)."""
        if self.panels is None:
            return
        for panel in sorted(panels):
            try:
                self.panels.set_strike(panel, True)
            except BridgeError as exc:
                self.submit(_ReleaseFailed(panel, str(exc)))

    def start(self) -> PortalController:
        self._thread = threading.Thread(target=self._run, name="portal-controller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Decide whatever is queued, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            wait = min(next_tick - time.monotonic(), self._until_due_s())
            try:
                first = self._events.get(timeout=wait) if wait > 0 else self._events.get_nowait()
            except queue.Empty:
                first = None
            self._take(first, BURST)
            now_us = self.clock()
            if time.monotonic() >= next_tick or self._is_due(now_us):
                next_tick = time.monotonic() + TICK_S
                self._advance(now_us)
            if self._stop.is_set() and self._events.empty():
                self.tick(self.clock() + self.engine.config.settle_us + self.engine.config.reorder_us)
                return

    def step(self, now_us: int, *, tick: bool = False) -> bool:
        """The loop's work at now_us, driven by hand (tests, replays; the loop thread is not started): take
        every queued event, then advance the engine if an event is due, or if `tick` (the periodic tick).
        True when it advanced."""
        self._take(self._next(), sys.maxsize)
        if not (tick or self._is_due(now_us)):
            return False
        self._advance(now_us)
        return True

    def _next(self) -> object | None:
        try:
            return self._events.get_nowait()
        except queue.Empty:
            return None

    def _take(self, event: object | None, limit: int) -> None:
        """Ingest `event` and what is queued behind it, at most `limit` events (a burst is one advance)."""
        taken = 0
        while event is not None:
            self._guard(self._ingest, event)
            taken += 1
            event = self._next() if taken < limit else None

    def _is_due(self, now_us: int) -> bool:
        return bool(self._due) and self._due[0] <= now_us

    def _advance(self, now_us: int) -> None:
        while self._due and self._due[0] <= now_us:
            heapq.heappop(self._due)
        self._guard(self.tick, now_us)

    def _until_due_s(self) -> float:
        return (self._due[0] - self.clock()) / 1e6 if self._due else TICK_S

    def _expect(self, time_us: int) -> None:
        """Advance the engine once its horizon can have passed `time_us` (an event that can decide an exit):
        by the watermark, or else by the clock."""
        heapq.heappush(self._due, time_us + HOST_LAG_US)
        heapq.heappush(self._due, time_us + self.engine.config.reorder_us)

    def _engine_now(self, now_us: int) -> int:
        """The `now` to advance the engine to at clock time now_us: later than the clock by what the
        watermark allows (module docstring), never so late that the horizon passes the clock."""
        offline = set().union(*(state.offline_readers for state in self.state.values()))
        marks = [self._round_seen.get(reader, -(2**62)) - 1 for reader in self.by_reader if reader not in offline]
        watermark = min([now_us - HOST_LAG_US, *marks])
        return max(now_us, watermark + self.engine.config.reorder_us)

    def _watched(self, wiring: PortalWiring | None, time_us: int) -> bool:
        """Is a badge waiting for its decision at this portal (its reads and rounds can decide it)?"""
        return wiring is not None and time_us <= self._watch_until.get(wiring.portal_id, -1)

    def _guard(self, step: Callable[..., None], *args: object) -> None:
        """The decision loop never dies: a failing step is logged and alarmed, the next event is decided."""
        try:
            step(*args)
        except Exception as exc:
            log.exception("portal controller step failed")
            self._publish_alarm("controller_error", self.clock(), "controller", f"{type(exc).__name__}: {exc}")

    def _command(self, panel: str, action: Callable[[], None], what: str) -> None:
        """Panel commands can fail (panel offline); say so to the guards instead of stopping."""
        try:
            action()
        except BridgeError as exc:
            self._publish_alarm("panel_command_failed", self.clock(), panel, f"{what}: {exc}")

    def _ingest(self, event: object) -> None:
        with self.engine_lock:
            if isinstance(event, TagBatch):
                self.engine.ingest(read_batch(event, self.engine.snapshot.reader_code))
                last = int(event.time_us.max()) if len(event) else None
                if last is not None and self._watched(self.by_reader.get(event.reader), last):
                    self._expect(last)
            elif isinstance(event, InventoryRoundEnd):
                self._round_end(event)
            elif isinstance(event, CardRead):
                self._card(event)
            elif isinstance(event, InputChange):
                self._input(event)
            elif isinstance(event, HealthEvent):
                self._health(event)
            elif isinstance(event, _OverrideAsk):
                self._ask_override(event)
            elif isinstance(event, _ReleaseFailed):
                self._publish_alarm("panel_command_failed", self.clock(), event.panel, f"fire release: {event.reason}")
            elif isinstance(event, PeopleCount):
                wiring = self.by_camera.get(event.camera)
                if wiring is not None:
                    self.engine.on_camera(CameraCount(wiring.portal_id, event.count, event.time_us))
                    self._expect(event.time_us)
                    if event.frame_png:
                        self.state[wiring.portal_id].last_frame_png = event.frame_png
            elif isinstance(event, SensorCount):
                # A people-counting sensor in the camera's place: its count (the most there may be
                # when it is unsure) is the door's people count.
                wiring = self.by_camera.get(event.device)
                if wiring is not None:
                    self.engine.on_camera(CameraCount(wiring.portal_id, event.count, event.time_us))
                    self._expect(event.time_us)

    def _card(self, card: CardRead) -> None:
        wiring = self.by_panel.get(card.panel)
        if wiring is None:
            self._publish_alarm("data_quality", card.time_us, card.panel, f"card read on unknown panel {card.panel}")
            return
        badge = badge_number(card.card_hex)
        self.engine.on_badge(BadgePresentation(wiring.portal_id, badge, card.time_us, card.stale,
                                               people.direction(card.reader)))
        config = self.engine.config
        for after in (0, config.decision_floor_us, config.settle_us):  # refuse at once, earliest allow, the cap
            self._expect(card.time_us + after)
        until = card.time_us + config.settle_us + config.reorder_us
        self._watch_until[wiring.portal_id] = max(until, self._watch_until.get(wiring.portal_id, until))

    def _round_end(self, end: InventoryRoundEnd) -> None:
        """A reader read its whole field on an antenna: what an early allow waits for. A round that ended
        while the link was down says nothing of the field now, so it is not passed on."""
        if end.stale:
            return
        self._round_seen[end.reader] = max(end.time_us, self._round_seen.get(end.reader, end.time_us))
        self.engine.on_round(InventoryRound(end.reader, end.antenna, end.time_us))
        if self._watched(self.by_reader.get(end.reader), end.time_us):
            self._expect(end.time_us)

    def _input(self, change: InputChange) -> None:
        wiring = self.by_panel.get(change.panel)
        self._expect(change.time_us)
        if change.input == "fire_alarm":
            self.engine.on_fire_alarm(FireAlarmInput(change.active, change.time_us))
            self._fire(change.active, change.time_us, change.panel)
        elif change.input == "door_contact" and wiring is not None:
            state = self.state[wiring.portal_id]
            state.open = change.active
            state.open_since_us = change.time_us if change.active else 0
            state.held_open_alarmed = False
            self.engine.on_door(DoorInput(wiring.portal_id, change.active, change.time_us))
            self._publish(
                LiveKind.DOOR,
                Severity.INFO,
                change.time_us,
                wiring.code,
                "door open" if change.active else "door closed",
            )
        elif change.input in ("tamper", "power_failure") and change.active:
            source = wiring.code if wiring else change.panel
            self._publish_alarm(change.input, change.time_us, source, f"{change.input} on panel {change.panel}")

    def _health(self, event: HealthEvent) -> None:
        offline = event.health == Health.OFFLINE
        if event.device in self.by_panel:
            wiring = self.by_panel[event.device]
            self.state[wiring.portal_id].panel_online = not offline
        elif event.device in self.by_reader:
            wiring = self.by_reader[event.device]
            readers = self.state[wiring.portal_id].offline_readers
            (readers.add if offline else readers.discard)(event.device)
            # a degraded reader still reads; only an offline one makes its portals fail secure
            self.engine.on_reader_health(ReaderHealth(event.device, not offline, event.time_us))
            self._expect(event.time_us)
        severity = Severity.CRITICAL if offline else Severity.INFO
        self._publish(
            LiveKind.HEALTH,
            severity,
            event.time_us,
            event.device,
            f"{event.device} {event.health}",
            (("reason", event.reason),),
        )
        self._record([DeviceHealthChanged(device=event.device, health=str(event.health), reason=event.reason)])
        if offline:
            self.book.raise_alarm("device_offline", event.time_us, event.device, Evidence(detail=event.reason))
        elif event.health == Health.ONLINE:
            self.book.clear("device_offline", event.device, f"{event.device} is back online")

    # ---- decision side (controller thread) ----
    def tick(self, now_us: int | None = None) -> None:
        """Advance the engine; make every record of this tick durable (one fsync), then act on the doors."""
        started = time.perf_counter_ns()
        now_us = self.clock() if now_us is None else now_us
        # The lock is held until the tick's records are accepted: a snapshot swap (SiteRuntime.reload) then
        # never lands between what the engine did and the record of it.
        with self.engine_lock:
            out = self.engine.advance(self._engine_now(now_us))
            engine_us = (time.perf_counter_ns() - started) / 1000
            steps = [
                *self._check_held_open(now_us),
                *(self._movement(m) for m in out.movements),
                *(self._decision(d) for d in out.decisions),
                *(self._alarm(a) for a in out.alarms),
                *(_Step(record, _recorded) for record in people.records(out, self.names)),
            ]
            if not steps:
                return
            recording = time.perf_counter_ns()
            durable = self._record([record for step in steps for record in (step.record, *step.also)])
            durable_us = (time.perf_counter_ns() - recording) / 1000
        acted_us = self.clock()
        for step in steps:
            step.act(durable)
        for d in out.decisions:
            code = self.wiring[d.portal_id].code if d.portal_id in self.wiring else str(d.portal_id)
            self.timings.append(DecisionTiming(code, d.allow, d.time_us, d.decided_us, now_us, engine_us, durable_us,
                                               acted_us))

    def _record(self, records: list[Record]) -> bool:
        """Accept records into the local log; False (and an alarm) when the disk refused them."""
        try:
            self.recorder.accept(records)
            return True
        except LogError as exc:
            log.error("records not durable: %s", exc)
            self._publish_alarm("recorder_failed", self.clock(), "recorder", f"records not durable: {exc}")
            return False

    def _check_held_open(self, now_us: int) -> list[_Step]:
        """A door left open past the limit is an alarm (once per opening), except while fire releases it."""
        if self.fire_active:
            return []
        steps = []
        for portal_id, state in self.state.items():
            if state.open and not state.held_open_alarmed and now_us - state.open_since_us > self.held_open_us:
                state.held_open_alarmed = True
                code = self.wiring[portal_id].code
                seconds = (now_us - state.open_since_us) / 1e6
                record = DoorHeldOpen(portal=code, open_since_us=state.open_since_us, time_us=now_us)
                steps.append(
                    _Step(
                        record,
                        lambda _durable, code=code, seconds=seconds: self._publish_alarm(
                            "door_held_open", now_us, code, f"open for {seconds:.0f} s"
                        ),
                    )
                )
        return steps

    def _decision(self, decision: Decision) -> _Step:
        if decision.override_by is not None:
            return self._override_decided(decision)
        self.decisions += 1
        wiring = self.wiring[decision.portal_id]
        reasons = list(decision.reason_names)
        allow = decision.allow
        items = [self.names.items.get(i, str(i)) for i in decision.item_ids]
        person = self.names.people.get(decision.person_id, "unknown") if decision.person_id else "unknown"
        record = ExitDecision(
            portal=wiring.code,
            person=person,
            allow=allow,
            badge=decision.badge,
            items=tuple(items),
            reasons=tuple(reasons),
            approvals=tuple(decision.approval_ids),
            time_us=decision.time_us,
            direction=decision.direction,
        )

        block = None if allow else self._block_alarm(wiring, decision, person, items, reasons)

        def act(durable: bool) -> None:
            """The door opens only for a decision on stable storage; otherwise it stays shut (fail closed)."""
            opened = allow and durable
            shown = reasons if durable or not allow else [*reasons, NOT_RECORDED]
            raised = block or (None if opened else self._block_alarm(wiring, decision, person, items, shown, now=True))
            self._show_decision(wiring, decision, person, items, shown, raised)

        return _Step(record, act, (block.record,) if block else ())

    def _block_alarm(
        self, wiring: PortalWiring, decision: Decision, person: str, items: list[str], reasons: list[str],
        *, now: bool = False,
    ) -> Raised:
        """The alarm of a refused badge (exit or entry), with its evidence and the camera's frame (recorded at once
        with `now`)."""
        raised = self.book.prepare(
            BLOCKED_KIND.get(decision.direction, "exit_blocked"), decision.time_us, wiring.code,
            Evidence(person, tuple(items), tuple(reasons), "; ".join(self._kept_shut(decision)), decision.badge),
            portal_id=wiring.portal_id, frame_png=self.state[decision.portal_id].last_frame_png,
        )
        if now:
            self._record([raised.record])
        return raised

    def _kept_shut(self, decision: Decision) -> tuple[str, ...]:
        """For a refusal: which resting items kept the door shut (their own reasons refused them), and since when,
        so the guard can have them moved."""
        if decision.allow:
            return ()
        blamed = {item_id for item_id, mask in decision.item_reasons if mask}
        names = self.names.items
        return tuple(
            kept_shut_sentence(names.get(item_id, str(item_id)), self._clock_time(since_us, decision.time_us))
            for item_id, since_us in decision.resting
            if item_id in blamed
        )

    def _clock_time(self, time_us: int, now_us: int) -> str:
        """A clock time in the site's zone ("14:02"), with the date when it is not the day of `now_us`."""
        at = datetime.fromtimestamp(time_us / 1e6, self.zone)
        same_day = at.date() == datetime.fromtimestamp(now_us / 1e6, self.zone).date()
        return at.strftime("%H:%M" if same_day else "%d %b %H:%M")

    def _show_decision(
        self, wiring: PortalWiring, decision: Decision, person: str, items: list[str], reasons: list[str],
        block: Raised | None,
    ) -> None:
        state = self.state[decision.portal_id]
        details = (
            ("person", person),
            ("badge", decision.badge),
            ("items", ", ".join(items) or "none"),
            ("reasons", ", ".join(reasons) or "-"),
            *(("kept shut", sentence) for sentence in self._kept_shut(decision)),
        )
        title = decision_title(decision.direction, block is None, person)
        if block is None:
            self._open_door(wiring)
            state.last_block, state.block_alarm = None, None
            self._publish(LiveKind.DECISION, Severity.INFO, decision.time_us, wiring.code, title, details)
            return
        state.last_block, state.block_alarm = decision, block.alarm.alarm_id
        self._refuse_at_panel(wiring)
        self.alarms += 1
        self.book.announce(block, title=title, details=details)

    def _movement(self, movement: Movement) -> _Step:
        self.movements += 1
        wiring = self.wiring.get(movement.portal_id)
        record = ItemCrossed(
            item_id=movement.item_id,
            item=self.names.items.get(movement.item_id, str(movement.item_id)),
            epc=self.names.epcs.get(movement.item_id, ""),
            portal=wiring.code if wiring else str(movement.portal_id),
            from_venue=self._venue(movement.from_venue_id),
            to_venue=self._venue(movement.to_venue_id),
            to_venue_id=movement.to_venue_id,
            direction=movement.direction,
            time_us=movement.time_us,
            emergency_release=self.fire_active,
        )
        return _Step(record, lambda _durable: None)

    def _venue(self, venue_id: int | None) -> str:
        return self.names.venues.get(venue_id, str(venue_id)) if venue_id else "outside"

    def _alarm(self, alarm: Alarm) -> _Step:
        wiring = self.wiring.get(alarm.portal_id) if alarm.portal_id is not None else None
        source = wiring.code if wiring else (alarm.reader or "site")
        item = self.names.items.get(alarm.item_id, "") if alarm.item_id is not None else ""
        detail = ", ".join(part for part in (alarm.epc and f"EPC {alarm.epc}", alarm.detail) if part)
        raised = self.book.prepare(
            alarm.kind, alarm.time_us, source, Evidence(items=(item,) if item else (), detail=detail),
            portal_id=alarm.portal_id, item_id=alarm.item_id, epc=alarm.epc,
        )

        def act(_durable: bool) -> None:
            self.alarms += 1
            self.book.announce(raised)

        return _Step(raised.record, act)

    # ---- outputs ----
    def _open_door(self, wiring: PortalWiring) -> None:
        if self.panels is None or wiring.panel is None:
            return
        panels, panel = self.panels, wiring.panel
        self._command(panel, lambda: panels.pulse_strike(panel, wiring.strike_s), "unlock")
        self._command(panel, lambda: panels.set_led(panel, LedColor.GREEN, LedPattern.STEADY), "green LED")

    def _refuse_at_panel(self, wiring: PortalWiring) -> None:
        if self.panels is None or wiring.panel is None:
            return
        panels, panel = self.panels, wiring.panel
        self._command(panel, lambda: panels.set_led(panel, LedColor.RED, LedPattern.FAST_BLINK), "red LED")
        self._command(panel, lambda: panels.buzz(panel, on_s=0.2, off_s=0.1, repeats=3), "buzzer")

    def _fire(self, active: bool, time_us: int, panel: str) -> None:
        """Life safety over everything: the release went out from `submit`, before its record is durable (a
        disk must never hold a door shut in a fire); here it is recorded and shown, and the doors relocked
        when the alarm clears."""
        if active == self.fire_active:
            return
        self.fire_active = active
        if self.panels is not None and not active:  # the release itself went out from `submit`
            panels = self.panels
            with self._fire_lock:  # never relock over a fire alarm raised again meanwhile
                for wiring in self.wiring.values():
                    if wiring.panel and not self._fire_heard:
                        door = wiring.panel
                        self._command(door, lambda d=door: panels.set_strike(d, False), "relock after fire")
        for state in self.state.values():
            state.locked = not active
        title = "FIRE ALARM: all doors released" if active else "fire alarm cleared: doors relocked"
        self._publish(LiveKind.DOOR, Severity.CRITICAL if active else Severity.WARNING, time_us, panel, title)
        self._record([FireRelease(panel=panel, active=active, time_us=time_us)])

    def request_override(
        self, portal_code: str, guard_person_id: int, guard: str, reason: str, alarm_id: int | None = None
    ) -> Future[OverrideOutcome]:
        """Queue an authenticated guard's override; the engine decides it on the controller thread. The answer
        is an OverrideOutcome once the door is opened, or NoFreshBlock / OverrideRefused / UnknownPortal."""
        answer: Future[OverrideOutcome] = Future()
        self.submit(_OverrideAsk(portal_code, guard_person_id, guard, reason, alarm_id, answer))
        return answer

    def _ask_override(self, ask: _OverrideAsk) -> None:
        wiring = self.by_code.get(ask.portal_code)
        if wiring is None:
            ask.answer.set_exception(UnknownPortal(f"there is no door {ask.portal_code} at this site"))
            return
        state = self.state[wiring.portal_id]
        if ask.alarm_id is not None and ask.alarm_id != state.block_alarm:
            ask.answer.set_exception(NoFreshBlock(
                f"the block of alarm {ask.alarm_id} is no longer the current one at {ask.portal_code}",
                "override_no_block",
            ))
            return
        now = self.clock()
        block_time = state.last_block.time_us if state.last_block is not None else None
        self._overrides[(wiring.portal_id, ask.guard_person_id, now)] = ask
        self.engine.on_override(OverrideRequest(wiring.portal_id, ask.guard_person_id, now, ask.reason, block_time))
        self._expect(now)  # decided as soon as the engine's horizon passes it, not at the next tick

    def _override_decided(self, decision: Decision) -> _Step:
        """The engine's answer to an override: accepted opens the door (once recorded), refused says why."""
        ask = self._overrides.pop((decision.portal_id, decision.override_by or 0, decision.time_us), None)
        wiring = self.wiring[decision.portal_id]
        state = self.state[decision.portal_id]
        guard = ask.guard if ask else self.names.people.get(decision.override_by or 0, str(decision.override_by))
        person = self.names.people.get(decision.person_id, "unknown") if decision.person_id else "unknown"
        items = tuple(self.names.items.get(i, str(i)) for i in decision.item_ids)
        if not decision.allow:
            refused_for = decision.reason_names
            record: Record = ExitOverrideRefused(
                portal=wiring.code, guard=guard, person=person, reason=decision.override_reason, items=items,
                refused_for=refused_for, time_us=decision.time_us,
            )

            def refuse(_durable: bool) -> None:
                if ask is None:
                    return
                sentence = " ".join(reason_sentence(r) for r in refused_for) or "The override was refused."
                stale = set(refused_for) & {"override_no_block", "override_block_too_old"}
                error = NoFreshBlock if stale else OverrideRefused
                ask.answer.set_exception(error(sentence, refused_for[0] if refused_for else ""))

            return _Step(record, refuse)
        record = ExitOverride(
            portal=wiring.code, portal_id=wiring.portal_id, guard=guard, reason=decision.override_reason,
            badge=decision.badge, items=items, blocked_for=decision.reason_names, person=person,
            alarm_id=state.block_alarm,
        )
        block_alarm = state.block_alarm

        def act(durable: bool) -> None:
            if not durable:
                if ask is not None:
                    ask.answer.set_exception(OverrideRefused("the override could not be recorded; the door stays shut"))
                return
            state.last_block, state.block_alarm = None, None
            self._open_door(wiring)
            self._publish(
                LiveKind.DECISION, Severity.WARNING, decision.time_us, wiring.code, f"override by {guard}",
                (("person", person), ("reason", decision.override_reason), ("items", ", ".join(items))),
            )
            if block_alarm is not None:
                self.book.close(block_alarm, guard, f"overridden: {decision.override_reason}")
            if ask is not None:
                ask.answer.set_result(OverrideOutcome(
                    wiring.code, guard, person, items, decision.reason_names, decision.time_us
                ))

        return _Step(record, act)

    def readers_reporting_rounds(self) -> frozenset[str]:
        """The portal readers that have reported an inventory round end: only then can an exit be allowed
        early, and a portal's reader that never reported one keeps its door shut at the cap."""
        return frozenset(self._round_seen.copy())  # copy(): atomic against the decision thread's inserts

    def doors(self) -> list[DoorState]:
        return [
            DoorState(
                portal=w.code,
                locked=self.state[pid].locked,
                open=self.state[pid].open,
                released_by_fire_alarm=self.fire_active,
                panel_online=self.state[pid].panel_online,
                readers_online=not self.state[pid].offline_readers,
                block=self._block_state(pid),
            )
            for pid, w in sorted(self.wiring.items())
            if w.panel or w.readers  # a doorway with no equipment has no state to show
        ]

    def _block_state(self, portal_id: int) -> BlockState | None:
        """The door's current block while it is fresh enough to override."""
        state = self.state[portal_id]
        block = state.last_block
        if block is None:
            return None
        fresh_until = block.decided_us + self.engine.config.override_max_age_us
        if self.clock() > fresh_until:
            return None
        return BlockState(
            state.block_alarm,
            self.names.people.get(block.person_id, "unknown") if block.person_id else "unknown",
            tuple(self.names.items.get(i, str(i)) for i in block.item_ids),
            block.reason_names,
            block.time_us,
            fresh_until,
            block.direction,
            self._kept_shut(block),
        )

    def _publish(
        self,
        kind: LiveKind,
        severity: Severity,
        time_us: int,
        source: str,
        title: str,
        details: tuple[tuple[str, str], ...] = (),
        image: str | None = None,
    ) -> None:
        self.bus.publish(kind, severity, time_us, source, title, details, image)

    def _publish_alarm(
        self, kind: str, time_us: int, source: str, detail: str, *, item: str = "", epc: str = ""
    ) -> None:
        self.alarms += 1
        detail = ", ".join(part for part in (epc and f"EPC {epc}", detail) if part)
        self.book.raise_alarm(kind, time_us, source, Evidence(items=(item,) if item else (), detail=detail))


def _recorded(_durable: bool) -> None:
    """Nothing to drive for a record that only the register needs."""


def badge_number(card_hex: str) -> str:
    """The register keeps badge numbers as the decimal value of the card number the reader sends."""
    try:
        return str(int(card_hex, 16))
    except ValueError:
        return card_hex

"""The alarm book: every alarm a site shows its guards, with an id, its evidence and its state.

    open --acknowledge(user, note)--> acknowledged --resolve(user, note)--> resolved

Everything that raises an alarm (the portal controller, the site runtime, the recorder) raises it here, so
every alarm on the live bus carries the id a guard acknowledges it by. The book is the site's live state
(one lock; the controller thread raises, API threads acknowledge) and each change is a record accepted by
the recorder: durable in the local log at once, in the register (table `alarms`, through
`registry.services.alarms`) and its journal shortly after, also through a database outage. A restarted site
rebuilds the book from the register.

Alarm kinds come in two lists: security alarms (a blocked exit, a forced door, a destroyed tag seen), which
sound and escalate, and technical / data-quality alarms (late reads, a device offline, the recorder), which
go to a quieter list and, while one of a kind and source is open, count repeats instead of adding rows.
An unacknowledged critical security alarm escalates after `escalate_after_s`: repeated to every guard
station (LiveKind.ESCALATION, with a sound cue on the page) and recorded.
"""

from __future__ import annotations

import base64
import enum
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.orm import Session

from controllers.bus import LiveBus, LiveKind, Severity
from controllers.control import AlarmConflict, UnknownAlarm
from controllers.recorder import LogError, Recorder
from controllers.records import AlarmAcknowledged, AlarmEscalated, AlarmRaised, AlarmResolved, Record
from registry.models import AlarmRecord
from registry.services import alarms as register_alarms
from tracking.vocabulary import alarm_sentence

log = logging.getLogger(__name__)
ESCALATE_AFTER_S = 60.0
KEEP_RESOLVED = 200  # resolved alarms kept in memory for the stations' "resolved" view


class Category(enum.StrEnum):
    SECURITY = "security"
    TECHNICAL = "technical"


@dataclass(frozen=True, slots=True)
class AlarmKind:
    name: str
    category: Category
    severity: Severity


def _kinds(category: Category, severity: Severity, *names: str) -> dict[str, AlarmKind]:
    return {name: AlarmKind(name, category, severity) for name in names}


# Every alarm kind a site raises. A kind not listed is treated as a critical security alarm (fail loud).
KINDS: dict[str, AlarmKind] = {
    **_kinds(
        Category.SECURITY, Severity.CRITICAL,
        "exit_blocked", "entry_blocked", "unauthorized_exit", "unregistered_tag", "destroyed_item_seen",
        "possible_clone", "venue_ceiling", "door_forced", "door_held_open", "emergency_release_movement", "tamper",
        "exit_override",
    ),
    **_kinds(Category.SECURITY, Severity.CRITICAL, "visitor_unescorted"),
    **_kinds(Category.SECURITY, Severity.WARNING, "overdue", "inventory_discrepancy", "anti_passback"),
    **_kinds(
        Category.TECHNICAL, Severity.WARNING,
        "late_read", "data_quality", "device_offline", "panel_command_failed", "power_failure",
    ),
    **_kinds(
        Category.TECHNICAL, Severity.CRITICAL,
        "database_unavailable", "recorder_failed", "recorder_error", "local_log_damaged", "record_dead_lettered",
        "controller_error",
    ),
}

# Standard operating steps per kind; a site replaces any of them (registry.services.alarms.set_procedure).
DEFAULT_PROCEDURES: dict[str, tuple[str, ...]] = {
    "exit_blocked": (
        "Keep the door shut and speak to the person at the door.",
        "Check their identity against the badge and the items named here.",
        "If the items need an approval, send them back to their room and ask for one.",
        "Override only if the duty officer confirms, with your own password and a written reason.",
    ),
    "entry_blocked": (
        "Keep the door shut and speak to the person at the door.",
        "If an item named here rests inside by the door, have its custodian take it back to its place; then the "
        "person badges again.",
        "Otherwise check the reasons given (escort, meeting list, badge) with the person and their host.",
    ),
    "unauthorized_exit": (
        "Stop the person if they are still in sight; call the duty officer.",
        "Note the item, the time and which way they went; an incident is open with a 24-hour clock.",
    ),
    "unregistered_tag": (
        "Find the tag: ask whoever is at the portal what they carry.",
        "A foreign or copied tag is a possible leak; report it to the security officer.",
    ),
    "destroyed_item_seen": (
        "Treat as a possible fraudulent destruction or clone: hold the carrier and the item.",
        "Call the security officer; an incident is open.",
    ),
    "possible_clone": (
        "Hold the item at the portal; call the security officer.",
        "Compare its label with the register.",
    ),
    "venue_ceiling": ("Return the item to a venue cleared for its level.", "Tell the venue's custodian."),
    "door_forced": ("Go to the door; check who opened it and what they carried.", "Call the duty officer."),
    "door_held_open": ("Ask whoever holds the door to close it.", "If nobody is there, go and close it."),
    "emergency_release_movement": (
        "After the emergency, account for every item that moved; an incident is open.",
    ),
    "tamper": ("Go to the panel; check for damage and who was near it.", "Call the maintenance contractor."),
    "exit_override": ("Check the override's reason with the guard who made it.",),
    "visitor_unescorted": (
        "Go to the room; stay with the visitor until an escort cleared for the room is back.",
        "Ask the visitor's host to come or to collect them.",
    ),
    "anti_passback": ("Ask the holder where they came in; if their place is known, note it and let it be.",),
    "overdue": ("Call the person who carried the item out and ask when it comes back.",),
    "inventory_discrepancy": (
        "Search the venue for the missing items; return items registered elsewhere.",
        "Report a missing item that is not found within the shift to the security officer.",
    ),
}
TECHNICAL_DEFAULT = ("Tell the site's technician; the site keeps deciding from its snapshot meanwhile.",)


def procedure_for(kind: str, own: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The steps shown with an alarm of `kind`: the site's own (`own`, from the register), else the default."""
    if own.get(kind):
        return own[kind]
    technical = kind_of(kind).category is Category.TECHNICAL
    return DEFAULT_PROCEDURES.get(kind) or (TECHNICAL_DEFAULT if technical else ())


def kind_of(name: str) -> AlarmKind:
    return KINDS.get(name, AlarmKind(name, Category.SECURITY, Severity.CRITICAL))


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a guard is shown with an alarm."""

    person: str = ""
    items: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    detail: str = ""
    badge: str = ""


@dataclass(frozen=True, slots=True)
class AlarmView:
    """One alarm of the book, as it stands."""

    alarm_id: int
    kind: str
    category: Category
    severity: Severity
    source: str  # portal code, device name, station or "site"
    portal_id: int | None
    venue: str
    time_us: int
    last_us: int
    repeats: int
    evidence: Evidence
    frame_ref: str
    state: str  # open | acknowledged | resolved
    escalated_us: int | None = None
    acknowledged_by: str = ""
    acknowledged_us: int | None = None
    acknowledge_note: str = ""
    resolved_by: str = ""
    resolved_us: int | None = None
    resolve_note: str = ""

    @property
    def sentence(self) -> str:
        return alarm_sentence(self.kind)


@dataclass(frozen=True, slots=True)
class Raised:
    """An alarm the book has taken in, with the record that persists it (for the caller's batch)."""

    alarm: AlarmView
    record: AlarmRaised
    frame_png: bytes | None = None
    new: bool = True  # False: a repeat of an open technical alarm


def _us(at: object) -> int | None:
    return int(at.timestamp() * 1_000_000) if at is not None else None  # type: ignore[attr-defined]


@dataclass
class AlarmBook:
    recorder: Recorder
    bus: LiveBus
    frames_dir: Path | None = None
    escalate_after_s: float = ESCALATE_AFTER_S
    clock: Callable[[], int] = field(default=lambda: time.time_ns() // 1000)
    _alarms: dict[int, AlarmView] = field(default_factory=dict)  # unresolved, and resolved ones of this run
    _open_technical: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, source) -> alarm id
    _procedures: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the site's own, by kind
    _next_id: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- restart ----
    def load(self, session: Session, *, undelivered: int = 0) -> None:
        """Rebuild from the register. `undelivered`: records of an earlier run still in the local log, each of
        which may carry an alarm id above the register's highest, so new ids start after them."""
        rows = register_alarms.unresolved(session)
        with self._lock:
            self._alarms = {row.id: view_of(row) for row in rows}
            self._open_technical = {
                (a.kind, a.source): a.alarm_id
                for a in self._alarms.values()
                if a.category is Category.TECHNICAL and a.state == "open"
            }
            self._next_id = register_alarms.highest_id(session) + undelivered + 1
            self._procedures = register_alarms.procedures(session)

    # ---- raising ----
    def prepare(
        self,
        kind: str,
        time_us: int,
        source: str,
        evidence: Evidence = Evidence(),
        *,
        portal_id: int | None = None,
        venue: str = "",
        frame_png: bytes | None = None,
        item_id: int | None = None,
        epc: str | None = None,
    ) -> Raised:
        """Take an alarm in and return the record that persists it; the caller makes the record durable,
        then calls `announce`. A technical alarm whose kind and source is still open is a repeat of it."""
        spec = kind_of(kind)
        with self._lock:
            repeat_of = self._open_technical.get((kind, source)) if spec.category is Category.TECHNICAL else None
            if repeat_of is not None and repeat_of in self._alarms:
                old = self._alarms[repeat_of]
                alarm = replace(old, repeats=old.repeats + 1, last_us=max(old.last_us, time_us))
                new = False
            else:
                alarm_id, self._next_id = self._next_id, self._next_id + 1
                frame_ref = f"alarm-{alarm_id}.png" if frame_png and self.frames_dir is not None else ""
                alarm = AlarmView(
                    alarm_id, kind, spec.category, spec.severity, source, portal_id, venue, time_us, time_us, 1,
                    evidence, frame_ref, "open",
                )
                new = True
                if spec.category is Category.TECHNICAL:
                    self._open_technical[(kind, source)] = alarm_id
            self._alarms[alarm.alarm_id] = alarm
        record = AlarmRaised(
            alarm=kind, source=source, detail=evidence.detail, time_us=time_us,
            item=", ".join(evidence.items), epc=epc, item_id=item_id, portal_id=portal_id, alarm_id=alarm.alarm_id,
            category=str(spec.category), severity=str(spec.severity), person=evidence.person,
            items=evidence.items, reasons=evidence.reasons, venue=venue, frame_ref=alarm.frame_ref,
        )
        return Raised(alarm, record, frame_png if new else None, new)

    def announce(self, raised: Raised, *, title: str = "", details: Sequence[tuple[str, str]] = ()) -> None:
        """Show a prepared alarm on every guard station (after its record is durable, or failed to be). A repeat
        of an open technical alarm is only counted: stations see the count when they next read the book."""
        if not raised.new:
            return
        alarm = raised.alarm
        if raised.frame_png and alarm.frame_ref and self.frames_dir is not None:
            try:
                self.frames_dir.mkdir(parents=True, exist_ok=True)
                (self.frames_dir / alarm.frame_ref).write_bytes(raised.frame_png)
            except OSError as exc:
                log.error("camera frame of alarm %d not kept: %s", alarm.alarm_id, exc)
        shown = tuple(details) or _details(alarm.evidence)
        image = base64.b64encode(raised.frame_png).decode() if raised.frame_png else None
        headline = title or alarm.kind.replace("_", " ")
        self.bus.publish(
            LiveKind.ALARM, alarm.severity, alarm.time_us, alarm.source, headline, shown, image, alarm.alarm_id
        )

    def raise_alarm(
        self, kind: str, time_us: int, source: str, evidence: Evidence = Evidence(), **where: object
    ) -> AlarmView:
        """Prepare, record (its own fsync) and announce: for alarms raised outside a controller tick."""
        raised = self.prepare(kind, time_us, source, evidence, **where)  # type: ignore[arg-type]
        self._accept([raised.record])
        self.announce(raised)
        return raised.alarm

    # ---- a guard's actions (API threads) ----
    def acknowledge(self, alarm_id: int, user: str, note: str = "") -> AlarmView:
        now = self.clock()
        with self._lock:
            alarm = self._get(alarm_id)
            if alarm.state != "open":
                raise AlarmConflict(_already(alarm))
            alarm = replace(
                alarm, state="acknowledged", acknowledged_by=user, acknowledged_us=now, acknowledge_note=note
            )
            self._alarms[alarm_id] = alarm
        self._accept([AlarmAcknowledged(alarm_id=alarm_id, user=user, note=note, time_us=now)])
        self.bus.publish(
            LiveKind.ACK, Severity.INFO, now, user, f"alarm {alarm_id} acknowledged by {user}", alarm_id=alarm_id
        )
        return alarm

    def resolve(self, alarm_id: int, user: str, note: str) -> AlarmView:
        """Close an acknowledged alarm with what was done about it."""
        now = self.clock()
        with self._lock:
            alarm = self._get(alarm_id)
            if alarm.state == "open":
                raise AlarmConflict(f"alarm {alarm_id} must be acknowledged before it is resolved")
            if alarm.state == "resolved":
                raise AlarmConflict(_already(alarm))
            alarm = self._resolved(alarm, user, now, note)
        self._accept([AlarmResolved(alarm_id=alarm_id, user=user, note=note, time_us=now)])
        title = f"alarm {alarm_id} resolved by {user}"
        self.bus.publish(LiveKind.ACK, Severity.INFO, now, user, title, alarm_id=alarm_id)
        return alarm

    def clear(self, kind: str, source: str, note: str) -> AlarmView | None:
        """The site resolves its own technical alarm when the condition ends (a device back online)."""
        with self._lock:
            alarm_id = self._open_technical.get((kind, source))
        return self.close(alarm_id, "system", note) if alarm_id is not None else None

    def close(self, alarm_id: int, user: str, note: str) -> AlarmView | None:
        """Resolve whatever its state, because what it was about is settled (an override let the exit out)."""
        now = self.clock()
        with self._lock:
            alarm = self._alarms.get(alarm_id)
            if alarm is None or alarm.state == "resolved":
                return None
            alarm = self._resolved(alarm, user, now, note)
        self._accept([AlarmResolved(alarm_id=alarm_id, user=user, note=note, time_us=now)])
        self.bus.publish(LiveKind.ACK, Severity.INFO, now, alarm.source, note, alarm_id=alarm_id)
        return alarm

    def _resolved(self, alarm: AlarmView, user: str, now: int, note: str) -> AlarmView:
        """Called under the lock."""
        acked = alarm.acknowledged_us is not None
        alarm = replace(
            alarm, state="resolved", resolved_by=user, resolved_us=now, resolve_note=note,
            acknowledged_by=alarm.acknowledged_by if acked else user,
            acknowledged_us=alarm.acknowledged_us if acked else now,
        )
        self._alarms[alarm.alarm_id] = alarm
        if self._open_technical.get((alarm.kind, alarm.source)) == alarm.alarm_id:
            del self._open_technical[(alarm.kind, alarm.source)]
        resolved = [a.alarm_id for a in self._alarms.values() if a.state == "resolved"]
        for old in sorted(resolved)[:-KEEP_RESOLVED]:  # a long run's history lives in the register, not here
            del self._alarms[old]
        return alarm

    # ---- escalation (the site's watcher calls this about every second) ----
    def escalate_due(self, now_us: int | None = None) -> list[AlarmView]:
        now = self.clock() if now_us is None else now_us
        limit = int(self.escalate_after_s * 1_000_000)
        with self._lock:
            due = [
                a for a in self._alarms.values()
                if a.state == "open" and a.escalated_us is None and a.category is Category.SECURITY
                and a.severity is Severity.CRITICAL and now - a.time_us >= limit
            ]
            for alarm in due:
                self._alarms[alarm.alarm_id] = replace(alarm, escalated_us=now)
        if due:
            self._accept([AlarmEscalated(alarm_id=a.alarm_id, time_us=now) for a in due])
        for alarm in due:
            seconds = (now - alarm.time_us) / 1e6
            waited = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
            self.bus.publish(
                LiveKind.ESCALATION, Severity.CRITICAL, now, alarm.source,
                f"NOT ACKNOWLEDGED for {waited}: {alarm.sentence}", _details(alarm.evidence),
                alarm_id=alarm.alarm_id,
            )
        return due

    # ---- reading ----
    def alarms(self, *, resolved: bool = False) -> list[AlarmView]:
        """Newest first: the unresolved ones, and with `resolved` those resolved since this site started."""
        with self._lock:
            found = [a for a in self._alarms.values() if resolved or a.state != "resolved"]
        return sorted(found, key=lambda a: a.alarm_id, reverse=True)

    def get(self, alarm_id: int) -> AlarmView:
        with self._lock:
            return self._get(alarm_id)

    def frame_path(self, alarm_id: int) -> Path | None:
        alarm = self.get(alarm_id)
        if not alarm.frame_ref or self.frames_dir is None:
            return None
        path = self.frames_dir / alarm.frame_ref
        return path if path.is_file() else None

    def procedure(self, kind: str) -> tuple[str, ...]:
        with self._lock:
            return procedure_for(kind, self._procedures)

    def set_procedure(self, kind: str, steps: tuple[str, ...]) -> None:
        """What the register now holds for `kind` (the API wrote it through the registry service)."""
        with self._lock:
            if steps:
                self._procedures[kind] = steps
            else:
                self._procedures.pop(kind, None)

    def _get(self, alarm_id: int) -> AlarmView:
        alarm = self._alarms.get(alarm_id)
        if alarm is None:
            raise UnknownAlarm(f"there is no alarm {alarm_id} in the alarm book")
        return alarm

    def _accept(self, records: list[Record]) -> None:
        """Alarms are shown even when the local disk refuses their record; that failure is logged loudly."""
        try:
            self.recorder.accept(records)
        except LogError as exc:
            log.error("alarm records not durable: %s", exc)


def _already(alarm: AlarmView) -> str:
    if alarm.state == "resolved":
        return f"alarm {alarm.alarm_id} was already resolved by {alarm.resolved_by}"
    return f"alarm {alarm.alarm_id} was already acknowledged by {alarm.acknowledged_by}"


def _details(evidence: Evidence) -> tuple[tuple[str, str], ...]:
    pairs = (
        ("person", evidence.person),
        ("badge", evidence.badge),
        ("items", ", ".join(evidence.items)),
        ("reasons", ", ".join(evidence.reasons)),
        ("detail", evidence.detail),
    )
    return tuple((label, value) for label, value in pairs if value)


def view_of(row: AlarmRecord) -> AlarmView:
    """An alarm as the register holds it (a restarted book; the centre's view of a site's book)."""
    return AlarmView(
        alarm_id=row.id, kind=row.kind, category=Category(row.category), severity=Severity(row.severity),
        source=row.source, portal_id=row.portal_id, venue=row.venue, time_us=_us(row.raised_at) or 0,
        last_us=_us(row.last_at) or 0, repeats=row.repeats,
        evidence=Evidence(
            row.person, tuple(json.loads(row.items_json)), tuple(json.loads(row.reasons_json)), row.detail
        ),
        frame_ref=row.frame_ref, state=row.state, escalated_us=_us(row.escalated_at),
        acknowledged_by=row.acknowledged_by, acknowledged_us=_us(row.acknowledged_at),
        acknowledge_note=row.acknowledge_note, resolved_by=row.resolved_by, resolved_us=_us(row.resolved_at),
        resolve_note=row.resolve_note,
    )

"""Typed records: what a site accepts for the register, one frozen dataclass per kind, each with its journal
entry and its register effects.

A record gets its id when the recorder accepts it: `RecordId(site, node, seq)`, assigned once, durable in
the local log before anything acts on it, and stored by the register under a unique key, so a replayed
record is a no-op (its effects too). The journal payload of a record is its fields plus `"record": id`,
in canonical JSON: the bytes kept in the local log are the bytes the journal gets (plus a note when the
register refuses an effect).

Effects are methods (`commit`) that call the registry's services inside the recorder's transaction
through a `RegisterTransaction`; a rule the register enforces refuses the effect, and the refusal is
journaled with the record, which still goes in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar

from sqlalchemy.orm import Session

from registry.journal import canonical_json
from registry.models import Approval
from registry.services import alarms as register_alarms
from registry.services import approvals, incidents, movements, presence

T = TypeVar("T")
# Alarms that suggest a leak open an incident with its 24-hour clock (domain-rules 8).
INCIDENT_ALARMS = frozenset(
    {"destroyed_item_seen", "possible_clone", "unauthorized_exit", "emergency_release_movement"}
)


class RecordId(NamedTuple):
    """(site, node, seq): assigned once when accepted; also the id other transports publish it under."""

    site: str
    node: str
    seq: int

    def __str__(self) -> str:
        return f"{self.site}/{self.node}/{self.seq}"


class RegisterTransaction(Protocol):
    """What a record's `commit` may do inside the recorder's transaction for its batch."""

    def journal(self, actor: str, action: str, subject: str, payload: str) -> None:
        """Journal the record's own entry (`payload` is canonical JSON)."""

    def call(self, service: Callable[[Session], T]) -> T:
        """Run a registry service that journals by itself (pending entries are written first)."""

    def effect(self, service: Callable[[Session], object]) -> str | None:
        """Run a service in a savepoint; a register rule refusing it is returned as text, not raised."""

    def journaled(self, seq: int, record_id: RecordId) -> None:
        """Record `record_id`'s own entry is journal entry `seq` (written by a service through `call`)."""


class Record:
    """Base of every kind. Subclasses are frozen, slotted dataclasses registered with `@kind`."""

    __slots__ = ()
    KIND: ClassVar[str]
    # Whether a run of records of this kind, next to each other in a batch, is committed at once (`commit_run`).
    BATCHED: ClassVar[bool] = False

    def entry(self) -> tuple[str, str, str]:
        """(actor, action, subject) of the record's journal entry."""
        raise NotImplementedError

    def has_effects(self) -> bool:
        """Whether committing it changes the register beyond its own journal entry."""
        return False

    def fields(self) -> dict[str, Any]:
        names, values = _fields(type(self))
        return dict(zip(names, values(self), strict=True))

    def payload(self, record_id: RecordId) -> dict[str, Any]:
        payload = self.fields()
        payload["record"] = str(record_id)
        return payload

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        tx.journal(*self.entry(), canonical_json(self.payload(record_id)))

    @classmethod
    def commit_run(cls, tx: RegisterTransaction, records: Sequence[tuple[Record, RecordId]]) -> None:
        """Commit consecutive records of a BATCHED kind in one go, with what `commit` does for each."""
        raise NotImplementedError


@functools.cache
def _fields(cls: type[Record]) -> tuple[tuple[str, ...], Callable[[Record], tuple[Any, ...]]]:
    """A kind's field names and a getter of all their values at once (records are encoded per event)."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    getter = operator.attrgetter(*names)
    return names, getter if len(names) > 1 else (lambda record: (getter(record),))


KINDS: dict[str, type[Record]] = {}
R = TypeVar("R", bound=type[Record])


def kind(cls: R) -> R:
    """Register a record kind by its `KIND`, so the recorder can decode it from the local log."""
    if KINDS.get(cls.KIND, cls) is not cls:
        raise ValueError(f"record kind {cls.KIND} is taken by {KINDS[cls.KIND].__name__}")
    KINDS[cls.KIND] = cls
    return cls


def decode(kind_name: str, payload: dict[str, Any]) -> Record:
    """The typed record from its journal payload (JSON arrays become tuples)."""
    cls = KINDS[kind_name]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload.items() if k != "record"})


def _with_refusals(record: Record, record_id: RecordId, outcomes: list[str | None]) -> str:
    """The record's journal payload, naming the register rules that refused its effects (outcomes of
    RegisterTransaction.effect: None = applied)."""
    payload = record.payload(record_id)
    refusals = [r for r in outcomes if r]
    if refusals:
        payload["effect_refused"] = "; ".join(refusals)
    return canonical_json(payload)


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class ExitDecision(Record):
    """The engine's decision at a portal (an exit, or an entry badged outside the door); an allowed exit uses one
    use of each approval it relied on."""

    KIND: ClassVar[str] = "exit_decision"
    portal: str
    person: str
    allow: bool
    badge: str
    items: tuple[str, ...]
    reasons: tuple[str, ...]
    approvals: tuple[int, ...]
    time_us: int
    direction: str = "exit"  # "entry": the badge at the reader outside the door (tracking.presence)

    def entry(self) -> tuple[str, str, str]:
        return self.person, "exit.decision", f"portal:{self.portal}"

    def has_effects(self) -> bool:
        return self.allow and bool(self.approvals)

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        refusals = [tx.effect(lambda s, a=approval_id: self._use(s, a, record_id))
                    for approval_id in (self.approvals if self.allow else ())]
        tx.journal(*self.entry(), _with_refusals(self, record_id, refusals))

    def _use(self, session: Session, approval_id: int, record_id: RecordId) -> None:
        approval = session.get(Approval, approval_id)
        if approval is not None:
            approvals.consume(session, self.person, approval, context=f"portal:{self.portal} ({record_id})")


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class ExitOverride(Record):
    """A guard let a blocked exit through (domain-rules 4.7): audited, and an incident is opened."""

    KIND: ClassVar[str] = "exit_override"
    portal: str
    portal_id: int
    guard: str
    reason: str
    badge: str
    items: tuple[str, ...]
    blocked_for: tuple[str, ...]
    person: str = ""  # the blocked person the guard let through
    alarm_id: int | None = None  # the block's alarm

    def entry(self) -> tuple[str, str, str]:
        return self.guard, "exit.override", f"portal:{self.portal}"

    def has_effects(self) -> bool:
        return True

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        who = f" let {self.person} through" if self.person else ""
        description = f"override at portal:{self.portal} by {self.guard}{who}: {', '.join(self.items)} {self.reason}"
        refused = tx.effect(
            lambda s: incidents.open_incident(s, self.guard, "override", description, portal_id=self.portal_id)
        )
        tx.journal(*self.entry(), _with_refusals(self, record_id, [refused]))


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class ExitOverrideRefused(Record):
    """The engine refused a guard's override (no fresh block, top secret at a border, the guard's own block)."""

    KIND: ClassVar[str] = "exit_override_refused"
    portal: str
    guard: str
    person: str
    reason: str
    items: tuple[str, ...]
    refused_for: tuple[str, ...]
    time_us: int

    def entry(self) -> tuple[str, str, str]:
        return self.guard, "exit.override_refused", f"portal:{self.portal}"


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class ItemCrossed(Record):
    """An item crossed a portal: the register's movement service moves it and journals the crossing."""

    KIND: ClassVar[str] = "item_crossed"
    BATCHED: ClassVar[bool] = True  # a busy portal's crossings: their items and venues read once, one flush
    item_id: int
    item: str
    epc: str
    portal: str
    from_venue: str
    to_venue: str
    to_venue_id: int | None
    direction: str
    time_us: int
    emergency_release: bool

    def entry(self) -> tuple[str, str, str]:
        return "system", "movement.crossed", f"item:{self.item}"

    def has_effects(self) -> bool:
        return True

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        self.commit_run(tx, [(self, record_id)])

    @classmethod
    def commit_run(cls, tx: RegisterTransaction, records: Sequence[tuple[Record, RecordId]]) -> None:
        crossings = [(movements.Crossing(**record.fields()), str(record_id)) for record, record_id in records]
        last = tx.call(lambda s: movements.record_crossings(s, "system", crossings))
        for n, (_, record_id) in enumerate(records):
            tx.journaled(last - len(records) + 1 + n, record_id)


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmRaised(Record):
    """An alarm from the engine or the site. With an `alarm_id` it is a row of the alarm book (a repeat of an
    open technical alarm counts one more); those suggesting a leak open an incident (24-hour clock)."""

    KIND: ClassVar[str] = "alarm"
    alarm: str  # the alarm's kind, e.g. "unregistered_tag"
    source: str  # portal code, reader name or "site"
    detail: str
    time_us: int
    item: str = ""
    epc: str | None = None
    item_id: int | None = None
    portal_id: int | None = None
    alarm_id: int | None = None
    category: str = "security"
    severity: str = "critical"
    person: str = ""
    items: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    venue: str = ""
    frame_ref: str = ""

    def entry(self) -> tuple[str, str, str]:
        return "system", f"alarm.{self.alarm}", f"portal:{self.source}"

    def has_effects(self) -> bool:
        return self.alarm_id is not None or self.alarm in INCIDENT_ALARMS

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        refusals: list[str | None] = []
        if self.alarm_id is not None:
            raised = register_alarms.RaisedAlarm(
                record_id.site, self.alarm_id, self.alarm, self.category, self.severity, self.source, _at(self.time_us),
                self.portal_id, self.venue, self.person, self.items, self.reasons, self.detail, self.frame_ref,
            )
            refusals.append(tx.effect(lambda s: register_alarms.record_raised(s, raised)))
        if self.alarm in INCIDENT_ALARMS:
            what = f"{self.alarm.replace('_', ' ')} at portal:{self.source}: {self.item} {self.detail}".strip()
            refusals.append(tx.effect(
                lambda s: incidents.open_incident(
                    s, "system", self.alarm, what, item_id=self.item_id, portal_id=self.portal_id
                )
            ))
        tx.journal(*self.entry(), _with_refusals(self, record_id, refusals))


def _at(time_us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(time_us / 1_000_000, dt.UTC)


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class DoorHeldOpen(Record):
    KIND: ClassVar[str] = "door_held_open"
    portal: str
    open_since_us: int
    time_us: int

    def entry(self) -> tuple[str, str, str]:
        return "system", "alarm.door_held_open", f"portal:{self.portal}"


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class FireRelease(Record):
    """Every door released by a fire-alarm input (life safety), or relocked when it cleared."""

    KIND: ClassVar[str] = "fire_release"
    panel: str  # the panel whose input raised or cleared the alarm
    active: bool
    time_us: int

    def entry(self) -> tuple[str, str, str]:
        return "system", "site.fire_release" if self.active else "site.fire_relock", f"panel:{self.panel}"


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceHealthChanged(Record):
    KIND: ClassVar[str] = "device_health"
    device: str
    health: str
    reason: str

    def entry(self) -> tuple[str, str, str]:
        return "system", "device.health", f"device:{self.device}"


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmAcknowledged(Record):
    """A guard acknowledged an alarm of the book (time_us 0: a record of an older version, before the book)."""

    KIND: ClassVar[str] = "alarm_acknowledged"
    alarm_id: int
    user: str
    note: str = ""
    time_us: int = 0

    def entry(self) -> tuple[str, str, str]:
        return self.user, "alarm.acknowledged", f"alarm:{self.alarm_id}"

    def has_effects(self) -> bool:
        return self.time_us > 0

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        refused = tx.effect(
            lambda s: register_alarms.record_acknowledged(
                s, record_id.site, self.alarm_id, self.user, _at(self.time_us), self.note
            )
        )
        tx.journal(*self.entry(), _with_refusals(self, record_id, [refused]))


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmResolved(Record):
    """An alarm closed by a guard with a note, or by the site when its condition ended (user "system")."""

    KIND: ClassVar[str] = "alarm_resolved"
    alarm_id: int
    user: str
    note: str
    time_us: int

    def entry(self) -> tuple[str, str, str]:
        return self.user, "alarm.resolved", f"alarm:{self.alarm_id}"

    def has_effects(self) -> bool:
        return True

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        refused = tx.effect(
            lambda s: register_alarms.record_resolved(
                s, record_id.site, self.alarm_id, self.user, _at(self.time_us), self.note
            )
        )
        tx.journal(*self.entry(), _with_refusals(self, record_id, [refused]))


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmEscalated(Record):
    """A critical alarm nobody acknowledged in time was repeated to every guard station."""

    KIND: ClassVar[str] = "alarm_escalated"
    alarm_id: int
    time_us: int

    def entry(self) -> tuple[str, str, str]:
        return "system", "alarm.escalated", f"alarm:{self.alarm_id}"

    def has_effects(self) -> bool:
        return True

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        refused = tx.effect(
            lambda s: register_alarms.record_escalated(s, record_id.site, self.alarm_id, _at(self.time_us))
        )
        tx.journal(*self.entry(), _with_refusals(self, record_id, [refused]))


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class PersonMoved(Record):
    """A person went through a portal (tracking.results.PresenceChange): the register keeps their place (so
    presence survives a restart), and each item the exit let out with them is a carry-out (Art. 20) and,
    at a meeting's venue in its window, an item of the meeting (Art. 45)."""

    KIND: ClassVar[str] = "person_moved"
    person_id: int
    person: str
    portal_id: int
    portal: str
    from_venue_id: int | None
    to_venue_id: int | None
    time_us: int
    cause: str
    uncertain: bool
    item_ids: tuple[int, ...] = ()

    def entry(self) -> tuple[str, str, str]:
        return "system", "presence.moved", f"person:{self.person}"

    def has_effects(self) -> bool:
        return True

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        move = presence.Move(self.person_id, self.portal_id, self.from_venue_id, self.to_venue_id, self.time_us,
                             self.cause, self.uncertain)
        reference = f"portal:{self.portal} ({record_id})"
        refusals = [tx.effect(lambda s: presence.record_move(s, move))]
        if self.item_ids:
            refusals.append(tx.effect(lambda s: presence.carried_out(s, "system", move, self.item_ids, reference)))
        tx.journal(*self.entry(), _with_refusals(self, record_id, refusals))


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class ItemBroughtIn(Record):
    """An item crossed into a venue right after a person's granted entry (tracking.results.ItemBrought): a
    reading in that venue (Art. 20) and, in a meeting's window there, an item of the meeting."""

    KIND: ClassVar[str] = "item_brought_in"
    person_id: int
    person: str
    item_id: int
    item: str
    portal_id: int
    venue_id: int | None
    time_us: int

    def entry(self) -> tuple[str, str, str]:
        return "system", "presence.item_brought_in", f"item:{self.item}"

    def has_effects(self) -> bool:
        return True

    def commit(self, tx: RegisterTransaction, record_id: RecordId) -> None:
        brought = presence.Brought(self.person_id, self.item_id, self.portal_id, self.venue_id, self.time_us)
        reference = f"entry by {self.person} ({record_id})"
        refusals = [tx.effect(lambda s: presence.brought_to_meeting(s, brought, reference)),
                    tx.effect(lambda s: presence.read_in_venue(s, "system", brought, reference))]
        tx.journal(*self.entry(), _with_refusals(self, record_id, refusals))


@kind
@dataclass(frozen=True, slots=True, kw_only=True)
class PassbackForgiven(Record):
    """A guard forgave a person's anti-passback state (their next badge is not checked against their place)."""

    KIND: ClassVar[str] = "passback_forgiven"
    guard: str
    person: str
    reason: str
    time_us: int

    def entry(self) -> tuple[str, str, str]:
        return self.guard, "presence.forgiven", f"person:{self.person}"

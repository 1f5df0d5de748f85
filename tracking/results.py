"""What the engine emits: movements, exit decisions with reasons, alarms, inventory results.

Reason bits and alarm kinds have stable string ids (they name rules of domain-rules.md section 4);
kernels use the integer codes, everything outside the core uses the names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar, overload

R = TypeVar("R")

# Decision reasons, one bit each. The names are stable ids stored in the journal.
REASON_NAMES: tuple[str, ...] = (
    "approval_missing",
    "approval_expired",
    "approval_used_up",
    "clearance",
    "scope",
    "destination_ceiling",
    "two_person_rule",
    "tailgating",
    "border",
    "abroad_approval_missing",
    "stale_badge",
    "unknown_badge",
    "person_inactive",
    "item_status",
    "unknown_portal",
    "uncertain_reads",
    "readers_offline_fail_secure",
    "override_no_block",
    "override_block_too_old",
    "override_border_top_secret",
    "override_by_blocked_person",
    "override_unknown_guard",
    "override_late",
    "anti_passback",
    "escort_missing",
    "meeting_not_participant",
    "snapshot_too_old",
    "readers_behind",
)
REASON_BIT: dict[str, int] = {name: 1 << k for k, name in enumerate(REASON_NAMES)}
R_APPROVAL_MISSING = REASON_BIT["approval_missing"]
R_APPROVAL_EXPIRED = REASON_BIT["approval_expired"]
R_APPROVAL_USED_UP = REASON_BIT["approval_used_up"]
R_CLEARANCE = REASON_BIT["clearance"]
R_SCOPE = REASON_BIT["scope"]
R_DESTINATION_CEILING = REASON_BIT["destination_ceiling"]
R_TWO_PERSON = REASON_BIT["two_person_rule"]
R_TAILGATING = REASON_BIT["tailgating"]
R_BORDER = REASON_BIT["border"]
R_ABROAD_MISSING = REASON_BIT["abroad_approval_missing"]
R_STALE_BADGE = REASON_BIT["stale_badge"]
R_UNKNOWN_BADGE = REASON_BIT["unknown_badge"]
R_PERSON_INACTIVE = REASON_BIT["person_inactive"]
R_ITEM_STATUS = REASON_BIT["item_status"]
R_UNKNOWN_PORTAL = REASON_BIT["unknown_portal"]
R_UNCERTAIN = REASON_BIT["uncertain_reads"]
R_READERS_OFFLINE = REASON_BIT["readers_offline_fail_secure"]
R_OVERRIDE_NO_BLOCK = REASON_BIT["override_no_block"]
R_OVERRIDE_TOO_OLD = REASON_BIT["override_block_too_old"]
R_OVERRIDE_BORDER_TS = REASON_BIT["override_border_top_secret"]
R_OVERRIDE_BY_BLOCKED = REASON_BIT["override_by_blocked_person"]
R_OVERRIDE_UNKNOWN_GUARD = REASON_BIT["override_unknown_guard"]
R_OVERRIDE_LATE = REASON_BIT["override_late"]
R_ANTI_PASSBACK = REASON_BIT["anti_passback"]
R_ESCORT_MISSING = REASON_BIT["escort_missing"]
R_MEETING_NOT_PARTICIPANT = REASON_BIT["meeting_not_participant"]
R_SNAPSHOT_TOO_OLD = REASON_BIT["snapshot_too_old"]
R_READERS_BEHIND = REASON_BIT["readers_behind"]

# Alarm kinds; the kernels emit the index into this tuple.
ALARM_KINDS: tuple[str, ...] = (
    "unregistered_tag",
    "destroyed_item_seen",
    "possible_clone",
    "venue_ceiling",
    "unauthorized_exit",
    "overdue",
    "data_quality",
    "late_read",
    "door_forced",
    "emergency_release_movement",
    "anti_passback",
    "visitor_unescorted",
)
A_UNREGISTERED, A_DESTROYED_SEEN, A_CLONE, A_VENUE_CEILING, A_UNAUTHORIZED_EXIT = 0, 1, 2, 3, 4

# Detail codes the kernels attach to possible_clone alarms.
CLONE_TRAVEL, CLONE_TID = 1, 2
CLONE_DETAIL = {CLONE_TRAVEL: "impossible travel between portals", CLONE_TID: "TID does not match register"}


@cache  # the masks that really occur are few; every Decision needs its names
def reason_names(mask: int) -> tuple[str, ...]:
    """The stable ids of the bits set in a reasons mask, in bit order."""
    return tuple(name for name, bit in REASON_BIT.items() if mask & bit)


@dataclass(frozen=True)
class Movement:
    """An item crossed a portal. direction: 'exit' (inside -> outside) or 'entry'.

    to_venue_id None means the outside of the unit. time_us: last read of the crossing.
    confidence: strength of the weaker side's evidence, 0..1 (EngineConfig); a crossing below
    movement_confidence_min is not a movement at all (rule 4.10).
    """

    item_id: int
    portal_id: int
    direction: str
    time_us: int
    from_venue_id: int | None
    to_venue_id: int | None
    confidence: float = 1.0


@dataclass(frozen=True, init=False)
class Decision:
    """Exit decision for one badge presentation (or one guard override); the door is pulsed only
    when allow is True.

    time_us: the badge time (for an override, the override's time). person_id is None for an
    unknown badge. item_ids: every item within reach of the door. approval_ids: approvals this exit
    consumed (one use each). item_reasons: (item_id, mask) for items with item-level reasons, so the
    guard sees which item failed which rule. resting: (item_id, since_us) of items that were resting
    by the door before the badge (they are part of the decision; the guard can have them moved).
    uncertain: items whose reads were uncertain (weak, one-sided). route_approval_ids: approvals
    that covered items on their route without a new use (the item is in custody under them).
    decided_us: when the engine decided (timeline time). override_by: the guard's person id when
    this is an override: allow True with the overridden block's reasons, or allow False with an
    override_* reason when the override was refused; override_reason: the guard's written reason.
    direction: 'exit' (from the portal's inside venue) or 'entry' (into it), as the badge was presented;
    an entry is refused for the items inside within reach as an exit would be, and allowed with none.
    """

    portal_id: int
    time_us: int
    badge: str
    person_id: int | None
    item_ids: tuple[int, ...]
    allow: bool
    reasons: int
    approval_ids: tuple[int, ...]
    item_reasons: tuple[tuple[int, int], ...] = ()
    resting: tuple[tuple[int, int], ...] = ()
    uncertain: tuple[int, ...] = ()
    route_approval_ids: tuple[int, ...] = ()
    decided_us: int = 0
    override_by: int | None = None
    override_reason: str = ""
    direction: str = "exit"
    reason_names: tuple[str, ...] = field(default=(), init=False)  # the names of the bits of reasons

    def __init__(self, portal_id: int, time_us: int, badge: str, person_id: int | None, item_ids: tuple[int, ...],
                 allow: bool, reasons: int, approval_ids: tuple[int, ...],
                 item_reasons: tuple[tuple[int, int], ...] = (), resting: tuple[tuple[int, int], ...] = (),
                 uncertain: tuple[int, ...] = (), route_approval_ids: tuple[int, ...] = (), decided_us: int = 0,
                 override_by: int | None = None, override_reason: str = "", direction: str = "exit") -> None:
        # Written out: a frozen dataclass's own __init__ sets each field through object.__setattr__, which
        # costs more than a microsecond per decision on the badge's latency path (bench/tracking.py); one
        # store per field into the instance's dict is a third cheaper than __dict__.update(**fields).
        d = self.__dict__
        d["portal_id"] = portal_id
        d["time_us"] = time_us
        d["badge"] = badge
        d["person_id"] = person_id
        d["item_ids"] = item_ids
        d["allow"] = allow
        d["reasons"] = reasons
        d["approval_ids"] = approval_ids
        d["item_reasons"] = item_reasons
        d["resting"] = resting
        d["uncertain"] = uncertain
        d["route_approval_ids"] = route_approval_ids
        d["decided_us"] = decided_us
        d["override_by"] = override_by
        d["override_reason"] = override_reason
        d["direction"] = direction
        d["reason_names"] = reason_names(reasons)


@dataclass(frozen=True, init=False)
class PresenceChange:
    """A person went through a portal (tracking.presence): from one venue to another (None = the outside).

    cause: 'badge' (an allowed badge), 'override' (a guard let a block through), 'fire_release' (a badge
    while the doors were released: they may have passed whatever the decision) or 'tailgating' (the camera
    counted more people through the door than badged: the person stays, the place becomes uncertain).
    uncertain: not a granted badge of this person alone. item_ids: the items the exit decision let out
    with them (a carry-out each).
    """

    person_id: int
    portal_id: int
    from_venue_id: int | None
    to_venue_id: int | None
    time_us: int
    cause: str = "badge"
    uncertain: bool = False
    item_ids: tuple[int, ...] = ()

    def __init__(self, person_id: int, portal_id: int, from_venue_id: int | None, to_venue_id: int | None,
                 time_us: int, cause: str = "badge", uncertain: bool = False, item_ids: tuple[int, ...] = ()) -> None:
        # written out for the latency path, as Decision.__init__
        d = self.__dict__
        d["person_id"] = person_id
        d["portal_id"] = portal_id
        d["from_venue_id"] = from_venue_id
        d["to_venue_id"] = to_venue_id
        d["time_us"] = time_us
        d["cause"] = cause
        d["uncertain"] = uncertain
        d["item_ids"] = item_ids


@dataclass(frozen=True)
class ItemBrought:
    """An item crossed into a venue right after a person's granted entry there: that person brought it in."""

    person_id: int
    item_id: int
    portal_id: int
    venue_id: int | None
    time_us: int


@dataclass(frozen=True)
class Alarm:
    """Something a guard must see. portal_id / reader / item_id are None when not applicable.

    late: raised by a read that arrived late or flagged stale by its device; time_us is the read's
    own time (rule 4.9).
    """

    kind: str
    time_us: int
    portal_id: int | None
    item_id: int | None
    detail: str = ""
    reader: str | None = None
    epc: str | None = None
    late: bool = False


class Rows(Sequence[R], Generic[R]):
    """An immutable list of results kept as columns; the result objects are built when first read.

    The bulk path settles hundreds of thousands of movements per call; building a dataclass for each
    would cost more than finding them. A caller that iterates, indexes or compares gets the objects
    (built once, then kept); one that only counts, or reads ``columns``, never pays for them.
    """

    __slots__ = ("_build", "_columns", "_length", "_objects")

    def __init__(self, build: Callable[..., list[R]], columns: tuple[Any, ...], length: int) -> None:
        self._build = build  # columns -> objects
        self._columns = columns
        self._objects: list[R] | None = None if length else []
        self._length = length

    @property
    def columns(self) -> tuple[Any, ...]:
        """The columns (numpy arrays or lists) in the order of the result's fields."""
        return self._columns

    def _all(self) -> list[R]:
        if self._objects is None:
            self._objects = self._build(*self._columns)
        return self._objects

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> R: ...
    @overload
    def __getitem__(self, index: slice) -> list[R]: ...
    def __getitem__(self, index: int | slice) -> R | list[R]:
        return self._all()[index]

    def __iter__(self) -> Iterator[R]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rows | list | tuple):
            return self._all() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Sequence[R]) -> list[R]:
        return self._all() + list(other)

    def __radd__(self, other: Sequence[R]) -> list[R]:
        return list(other) + self._all()

    def __repr__(self) -> str:
        return repr(self._all())


@dataclass(frozen=True, init=False)
class Output:
    """Everything settled by one advance()/process() call, each sequence sorted by time.

    movements and alarms are Rows (immutable lists, built on first read); decisions a list; presence and
    brought: people through portals and the items they brought in (tracking.presence; None: none).
    """

    movements: Sequence[Movement]
    decisions: list[Decision]
    alarms: Sequence[Alarm]
    presence: list[PresenceChange]
    brought: list[ItemBrought]

    def __init__(self, movements: Sequence[Movement], decisions: list[Decision], alarms: Sequence[Alarm],
                 presence: list[PresenceChange] | None = None, brought: list[ItemBrought] | None = None) -> None:
        # written out, as Decision.__init__: every advance builds one
        d = self.__dict__
        d["movements"] = movements
        d["decisions"] = decisions
        d["alarms"] = alarms
        d["presence"] = [] if presence is None else presence
        d["brought"] = [] if brought is None else brought


@dataclass(frozen=True)
class InventoryResult:
    """Reconciliation of a venue sweep against the register (domain-rules.md section 8).

    missing: registered here (and not destroyed), not seen. elsewhere: seen here, registered
    elsewhere. unregistered: EPCs not in the register. destroyed_seen: destroyed items seen.
    """

    venue_id: int
    missing: tuple[int, ...]
    elsewhere: tuple[int, ...]
    unregistered: tuple[str, ...]
    destroyed_seen: tuple[int, ...]

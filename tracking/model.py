"""Plain description of a site, as the register hands it to the tracking core.

No database and no numpy here: the register (``registry/``) fills these frozen dataclasses from its
tables and calls :func:`tracking.snapshot.build_snapshot`. Identifiers are the register's own ids
(non-negative integers); the snapshot maps them to dense array indices. Times are microseconds on
the site clock (the same clock as the device events).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Classification levels, ordered (domain-rules.md section 1).
UNCLASSIFIED, INTERNAL, CONFIDENTIAL, SECRET, TOP_SECRET = 0, 1, 2, 3, 4

ITEM_STATUSES: tuple[str, ...] = ("active", "in_transit", "destroyed", "declassified", "seized")
# The register's vocabulary (registry.models.APPROVAL_KINDS); carry_out, transfer and abroad act at doors.
APPROVAL_KINDS: tuple[str, ...] = ("carry_out", "transfer", "reproduce", "destroy", "abroad", "declassify")

Side = Literal["inside", "outside", "ignore"]
ANTI_PASSBACK: tuple[str, ...] = ("off", "refuse", "alarm")


@dataclass(frozen=True)
class ItemSpec:
    """One registered medium.

    item_id: register id. epc: tag EPC as upper-case hex, 96..496 bits in 16-bit words.
    tid: tag TID as hex, or None when unknown (then no TID clone check). level: 0..4.
    status: one of ITEM_STATUSES. venue_id: venue it is registered in (None = outside any venue).
    scope_person_ids / scope_group_ids: the knowledge scope (Art. 20); empty means nobody beyond
    people named on an approval (unclassified items have no scope check).
    custodian_person_id: who is answerable for it now (informational for the core).
    """

    item_id: int
    epc: str
    tid: str | None
    level: int
    status: str
    venue_id: int | None
    scope_person_ids: tuple[int, ...] = ()
    scope_group_ids: tuple[int, ...] = ()
    custodian_person_id: int | None = None


@dataclass(frozen=True)
class VenueSpec:
    """A secured room: its level ceiling and flags (domain-rules.md section 3).

    fail_secure_level: while a reader of a portal out of this venue is offline, exits are refused
    ('readers_offline_fail_secure') if the venue's ceiling is at least this level.
    """

    venue_id: int
    ceiling: int
    top_secret_designated: bool = False
    storage: bool = False
    closed: bool = False
    key_part: bool = False
    destruction: bool = False
    fail_secure_level: int = 3


@dataclass(frozen=True)
class AntennaSpec:
    """One reader antenna at a portal; reads from an 'ignore' antenna are counted, never tracked."""

    reader: str
    antenna: int
    side: Side


@dataclass(frozen=True)
class PortalSpec:
    """A doorway. Badges at a portal are exit requests from inside_venue_id towards outside_venue_id.

    outside_venue_id None means the outside of the unit. border: the portal leaves the country.
    x_m / y_m: position on the site plan, used for the impossible-travel (clone) check.
    anti_passback: what a badge leaving a venue its person is not known to be in gets (ANTI_PASSBACK):
    'off', 'refuse' (reason 'anti_passback') or 'alarm' (allowed, alarm 'anti_passback').
    """

    portal_id: int
    inside_venue_id: int
    outside_venue_id: int | None
    border: bool = False
    antennas: tuple[AntennaSpec, ...] = ()
    x_m: float = 0.0
    y_m: float = 0.0
    anti_passback: str = "off"

    def __post_init__(self) -> None:
        if self.anti_passback not in ANTI_PASSBACK:
            raise ValueError(f"anti_passback must be one of {', '.join(ANTI_PASSBACK)}")


@dataclass(frozen=True)
class PersonSpec:
    """A person with one or more badges. clearance uses the item levels 0..4.

    badge: a badge of the person; badges: further badges of the same person (one person counts once,
    however many badges they present). inactive_badges: badges of this person that are revoked or
    lost; presenting one is refused like an inactive person. Inactive people are always refused.
    """

    person_id: int
    badge: str
    clearance: int
    group_ids: tuple[int, ...] = ()
    active: bool = True
    badges: tuple[str, ...] = ()
    inactive_badges: tuple[str, ...] = ()
    visitor: bool = False

    @property
    def all_badges(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.badge, *self.badges, *self.inactive_badges)))


@dataclass(frozen=True)
class ApprovalSpec:
    """A recorded decision allowing an action on items.

    The approval covers a person if the person is in person_ids or in one of group_ids.
    portal_id / destination_venue_id None mean "any". Valid for valid_from_us <= t < valid_until_us,
    while uses_left > 0. return_by_us: carried-out items must be back by then (else 'overdue').
    """

    approval_id: int
    kind: str
    item_ids: tuple[int, ...]
    person_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()
    portal_id: int | None = None
    destination_venue_id: int | None = None
    valid_from_us: int = 0
    valid_until_us: int = 2**62
    uses_left: int = 1
    return_by_us: int | None = None


@dataclass(frozen=True)
class PendingReturn:
    """An item the register says is out under an approval and due back by return_by_us ('overdue')."""

    item_id: int
    approval_id: int
    return_by_us: int


@dataclass(frozen=True)
class MeetingSpec:
    """A classified meeting (Art. 45): while start_us <= t < end_us only its participants badge into its venue."""

    meeting_id: int
    venue_id: int
    start_us: int
    end_us: int
    participant_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PresenceSpec:
    """Where the register last knew a person to be (venue None = outside the unit), so presence survives a
    restart. A person with no entry has an unknown location. uncertain: the move was not a granted badge
    (emergency release, an override of a tailgating block)."""

    person_id: int
    venue_id: int | None
    since_us: int
    uncertain: bool = False


@dataclass(frozen=True)
class SiteModel:
    """Everything the core needs about a site, as plain values.

    pending_returns: return deadlines that must survive an engine restart (from the register).
    meetings: classified meetings (the engine checks badge-ins against their participants).
    presence: where people were when the register last heard (the engine starts from it).
    """

    items: tuple[ItemSpec, ...]
    venues: tuple[VenueSpec, ...]
    portals: tuple[PortalSpec, ...]
    people: tuple[PersonSpec, ...] = ()
    approvals: tuple[ApprovalSpec, ...] = ()
    groups: tuple[int, ...] = ()
    pending_returns: tuple[PendingReturn, ...] = ()
    meetings: tuple[MeetingSpec, ...] = ()
    presence: tuple[PresenceSpec, ...] = ()


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings; all times in microseconds, RSSI in dBm.

    Time and decisions (domain-rules.md 4.2, 4.8):
    settle_us: a pass ends after this long without reads; also the cap on the wait after a badge.
    reorder_us: reorder buffer depth; events older than the processed horizon are late.
    late_badge_grace_us: a badge late by at most this (and not flagged stale) is decided on arrival.
    reach_us: an item read at the portal at most this long before the badge (or after it) is within
        reach of the door and part of the decision, however long it has rested there.
    association_us: an item read at the portal since more than this before the badge is reported as
        resting (Decision.resting); it is still part of the decision.
    decision_floor_us: no allow earlier than this after the badge.
    rounds_for_allow: whole inventory rounds every antenna of the portal must complete after the badge
        and after the last new tag before an early allow (k >= 2; see tracking.engine).
    two_person_us: window in which two top-secret cleared people must badge (rule 3).
    door_grant_us: a door opening, or a crossing, this long after an allow is covered by it.
    override_max_age_us: a block older than this cannot be overridden.
    internal_needs_approval: site policy for `internal` items (unclassified items never need one).

    Evidence (rules 4.8, 4.10): reads of a pass are grouped per side into bursts (reads on that side
    at most burst_gap_us apart); a side's strength is min(1, reads / side_reads_full) times an RSSI
    factor rising linearly from rssi_weak_dbm (0) to rssi_strong_dbm (1), 1 when the reader gives no
    RSSI. A crossing is a movement when min(inside, outside) >= movement_confidence_min and the pass has
    >= min_reads reads in those bursts. An item is clearly present inside with >= presence_min_reads
    reads in its inside burst or one read at >= presence_rssi_dbm; otherwise its reads are uncertain.
    rssi_min_dbm / rssi_max_dbm: plausible RSSI; outside it (or NaN) the RSSI is treated as missing.

    Alarms: max_speed_m_per_s: faster travel between two portals means a possible cloned tag;
    unregistered_repeat_us / data_quality_repeat_us: one alarm per EPC / per (kind, reader) per period
    (the same period bounds repeats of alarms raised by late reads).
    """

    settle_us: int = 300_000
    reorder_us: int = 20_000
    late_badge_grace_us: int = 500_000
    reach_us: int = 1_000_000
    association_us: int = 5_000_000
    decision_floor_us: int = 20_000
    rounds_for_allow: int = 2
    two_person_us: int = 10_000_000
    door_grant_us: int = 10_000_000
    override_max_age_us: int = 60_000_000
    internal_needs_approval: bool = True
    burst_gap_us: int = 300_000
    side_reads_full: int = 3
    rssi_weak_dbm: float = -80.0
    rssi_strong_dbm: float = -60.0
    movement_confidence_min: float = 0.5
    min_reads: int = 2
    presence_min_reads: int = 2
    presence_rssi_dbm: float = -65.0
    max_speed_m_per_s: float = 5.0
    unregistered_repeat_us: int = 60_000_000
    data_quality_repeat_us: int = 60_000_000
    rssi_min_dbm: float = -120.0
    rssi_max_dbm: float = 20.0

    def __post_init__(self) -> None:
        if self.rounds_for_allow < 2:
            raise ValueError("rounds_for_allow must be at least 2 (a tag missed by one round is seen by the next)")
        if not self.rssi_weak_dbm < self.rssi_strong_dbm:
            raise ValueError("rssi_weak_dbm must be below rssi_strong_dbm")
        if self.side_reads_full < 1:
            raise ValueError("side_reads_full must be at least 1")
        if not -127 <= self.presence_rssi_dbm <= 127:
            raise ValueError("presence_rssi_dbm must be a whole-dBm RSSI a reader can report (-127..127)")

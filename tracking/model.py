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
APPROVAL_KINDS: tuple[str, ...] = (
    "carry_out", "transfer", "abroad", "reproduction", "destruction", "declassification",
)

Side = Literal["inside", "outside", "ignore"]


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
    """A secured room: its level ceiling and flags (domain-rules.md section 3)."""

    venue_id: int
    ceiling: int
    top_secret_designated: bool = False
    storage: bool = False
    closed: bool = False
    key_part: bool = False
    destruction: bool = False


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
    """

    portal_id: int
    inside_venue_id: int
    outside_venue_id: int | None
    border: bool = False
    antennas: tuple[AntennaSpec, ...] = ()
    x_m: float = 0.0
    y_m: float = 0.0


@dataclass(frozen=True)
class PersonSpec:
    """A badge holder. clearance uses the item levels 0..4; inactive people are always refused."""

    person_id: int
    badge: str
    clearance: int
    group_ids: tuple[int, ...] = ()
    active: bool = True


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
class SiteModel:
    """Everything the core needs about a site, as plain values."""

    items: tuple[ItemSpec, ...]
    venues: tuple[VenueSpec, ...]
    portals: tuple[PortalSpec, ...]
    people: tuple[PersonSpec, ...] = ()
    approvals: tuple[ApprovalSpec, ...] = ()
    groups: tuple[int, ...] = ()


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings; all times in microseconds.

    settle_us: wait after the last read of a pass (and after a badge) before deciding (rule 8).
    two_person_us: window in which two top-secret badges must be presented (rule 3).
    association_us: items whose pass at the portal began at most this long before the badge belong
        to that exit; items resting longer at the portal are strays and are not associated.
    reorder_us: reorder buffer depth; events older than the processed horizon are late.
    min_reads: reads a pass needs before it can count as a crossing.
    max_speed_m_per_s: faster travel between two portals means a possible cloned tag.
    unregistered_repeat_us / data_quality_repeat_us: one alarm per EPC / per (kind, reader) per period.
    door_grant_us: a door opening this long after an allow at the portal is not forced.
    rssi_min_dbm / rssi_max_dbm: plausible RSSI; outside it (or NaN) the RSSI is treated as missing.
    """

    settle_us: int = 300_000
    two_person_us: int = 10_000_000
    association_us: int = 5_000_000
    reorder_us: int = 50_000
    min_reads: int = 2
    max_speed_m_per_s: float = 5.0
    unregistered_repeat_us: int = 60_000_000
    data_quality_repeat_us: int = 60_000_000
    door_grant_us: int = 10_000_000
    rssi_min_dbm: float = -120.0
    rssi_max_dbm: float = 20.0

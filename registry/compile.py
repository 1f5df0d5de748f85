"""Compile the register into the plain site model the tracking core turns into arrays.

Besides the register's current state it carries what the engine must not forget across a restart:
the return deadlines of items carried out under an approval and not yet back (``overdue``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import Approval, Device, Group, Item, Meeting, Person, Portal, PresenceEntry, Venue
from tracking.model import (
    AntennaSpec,
    ApprovalSpec,
    ItemSpec,
    MeetingSpec,
    PendingReturn,
    PersonSpec,
    PortalSpec,
    PresenceSpec,
    SiteModel,
    VenueSpec,
)

# Approval kinds that let an item through a portal; the others act at stations, not doors.
EXIT_KINDS = ("carry_out", "transfer", "abroad")
# A person's badges open doors only while the person is in one of these states.
PRESENT_STATUSES = ("active", "departing")


def to_us(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def site_model(session: Session) -> SiteModel:
    items = tuple(
        ItemSpec(
            item_id=i.id,
            epc=i.epc,
            tid=i.tid,
            level=i.effective_level,
            # A failed destruction leaves the item in custody: to the core it is an active item.
            status="active" if i.status == "destruction_failed" else i.status,
            venue_id=i.venue_id,
            scope_person_ids=tuple(sorted(p.id for p in i.scope_people)),
            scope_group_ids=tuple(sorted(g.id for g in i.scope_groups)),
            custodian_person_id=i.custodian_id,
        )
        for i in session.execute(select(Item).order_by(Item.id)).scalars()
    )
    venues = tuple(
        VenueSpec(
            venue_id=v.id,
            ceiling=v.ceiling,
            top_secret_designated=v.top_secret_designated,
            storage=v.storage,
            closed=v.closed,
            key_part=v.key_part,
            destruction=v.destruction,
            fail_secure_level=v.fail_secure_level,
        )
        for v in session.execute(select(Venue).order_by(Venue.id)).scalars()
    )
    antennas: dict[int, list[AntennaSpec]] = {}
    for device in session.execute(select(Device).where(Device.portal_id.is_not(None))).scalars():
        for antenna in device.antennas:
            antennas.setdefault(device.portal_id, []).append(  # type: ignore[arg-type]
                AntennaSpec(reader=device.name, antenna=antenna.number, side=antenna.side)  # type: ignore[arg-type]
            )
    portals = tuple(
        PortalSpec(
            portal_id=p.id,
            inside_venue_id=p.inside_venue_id,
            outside_venue_id=p.outside_venue_id,
            border=p.border,
            antennas=tuple(antennas.get(p.id, ())),
            x_m=p.x_m,
            y_m=p.y_m,
            anti_passback=p.anti_passback,
        )
        for p in session.execute(select(Portal).order_by(Portal.id)).scalars()
    )
    people = tuple(
        _person(p) for p in session.execute(select(Person).order_by(Person.id)).scalars() if p.badges
    )
    approvals = tuple(
        ApprovalSpec(
            approval_id=a.id,
            kind=a.kind,
            item_ids=tuple(sorted(i.id for i in a.items)),
            person_ids=tuple(sorted(p.id for p in a.people)),
            group_ids=tuple(sorted(g.id for g in a.groups)),
            portal_id=a.portal_id,
            destination_venue_id=a.destination_venue_id,
            valid_from_us=to_us(a.valid_from),
            valid_until_us=to_us(a.valid_until),
            uses_left=a.uses_left,
            return_by_us=to_us(a.return_by) if a.return_by else None,
        )
        for a in session.execute(
            select(Approval).where(Approval.state == "approved", Approval.kind.in_(EXIT_KINDS)).order_by(Approval.id)
        ).scalars()
    )
    groups = tuple(session.execute(select(Group.id).order_by(Group.id)).scalars())
    return SiteModel(items=items, venues=venues, portals=portals, people=people, approvals=approvals, groups=groups,
                     pending_returns=pending_returns(session), meetings=meetings(session), presence=presence(session))


def meetings(session: Session) -> tuple[MeetingSpec, ...]:
    """Meetings not over yet (an ended one checks nothing)."""
    now = dt.datetime.now(dt.UTC)
    return tuple(
        MeetingSpec(m.id, m.venue_id, to_us(m.starts_at), to_us(m.ends_at), tuple(sorted(p.id for p in m.participants)))
        for m in session.execute(select(Meeting).where(Meeting.ends_at > now).order_by(Meeting.id)).scalars()
    )


def presence(session: Session) -> tuple[PresenceSpec, ...]:
    """Where people were last known to be: the engine starts from it, so presence survives a restart."""
    return tuple(
        PresenceSpec(e.person_id, e.venue_id, to_us(e.since), e.uncertain)
        for e in session.execute(select(PresenceEntry).order_by(PresenceEntry.person_id)).scalars()
    )


def _person(p: Person) -> PersonSpec:
    """One entry per person, however many badges: the two-person rule counts people, not cards."""
    badges = sorted(p.badges, key=lambda b: b.number)
    first = next((b.number for b in badges if b.active), badges[0].number)
    return PersonSpec(
        person_id=p.id,
        badge=first,
        clearance=p.clearance,
        group_ids=tuple(sorted(g.id for g in p.groups)),
        active=p.status in PRESENT_STATUSES,
        badges=tuple(b.number for b in badges if b.number != first),
        inactive_badges=tuple(b.number for b in badges if not b.active),
        visitor=p.visitor,
    )


def pending_returns(session: Session) -> tuple[PendingReturn, ...]:
    """Items out of the unit under an exit approval with a return time that has been used: they are due back.

    The register moves an item to "outside" (no venue) when the engine records its exit, and back into a
    venue when it returns, so an item still without a venue is not back yet.
    """
    approvals = session.execute(
        select(Approval)
        .where(Approval.kind.in_(EXIT_KINDS), Approval.return_by.is_not(None), Approval.state.in_(("approved", "used")),
               Approval.uses_left < Approval.uses_total)
        .order_by(Approval.id)
    ).scalars()
    due: dict[int, PendingReturn] = {}
    for a in approvals:
        assert a.return_by is not None
        for item in a.items:
            if item.venue_id is None and item.status in ("active", "in_transit"):
                # the latest approval that could have taken it out is the one it must come back by
                due[item.id] = PendingReturn(item.id, a.id, to_us(a.return_by))
    return tuple(due[i] for i in sorted(due))

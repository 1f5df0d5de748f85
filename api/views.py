"""Register rows as public schemas."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from api import schemas
from api.schemas import level_name
from registry.models import Approval, Device, Item, JournalEntry, Meeting, Person, Portal, Venue
from registry.services import lookup
from registry.services.items import SecrecyPeriod


def venue(v: Venue) -> schemas.VenuePublic:
    return schemas.VenuePublic(
        id=v.id,
        code=v.code,
        name=v.name,
        ceiling=level_name(v.ceiling),
        top_secret_designated=v.top_secret_designated,
        storage=v.storage,
        closed=v.closed,
        key_part=v.key_part,
        destruction=v.destruction,
    )


def portal(p: Portal) -> schemas.PortalPublic:
    return schemas.PortalPublic(
        id=p.id,
        code=p.code,
        name=p.name,
        inside=p.inside_venue.code,
        outside=p.outside_venue.code if p.outside_venue else None,
        border=p.border,
    )


def device(d: Device) -> schemas.DevicePublic:
    return schemas.DevicePublic(
        id=d.id,
        name=d.name,
        kind=d.kind,
        portal=d.portal.code if d.portal else None,
        venue=d.venue.code if d.venue else None,
        settings=json.loads(d.settings_json or "{}"),
        antennas=[schemas.AntennaCreate.model_validate({"number": a.number, "side": a.side}) for a in d.antennas],
    )


def person(p: Person) -> schemas.PersonPublic:
    return schemas.PersonPublic(
        username=p.username,
        name=p.name,
        clearance=level_name(p.clearance),
        roles=sorted(p.role_names),
        badges=[b.number for b in p.badges],
        groups=sorted(g.name for g in p.groups),
        status=p.status,
        visitor=p.visitor,
        has_password=bool(p.password_hash),
    )


def item_key(i: Item) -> str:
    return f"{i.register_number}/{i.copy_number}"


def find_item(session: Session, key: str) -> Item:
    """By `register_number/copy` (as `item_key` writes it), register number or EPC; NotFound otherwise."""
    number, _, copy = key.partition("/")
    if copy.isdigit():
        return lookup.item(session, number, int(copy))
    return lookup.item(session, key)


def item(i: Item) -> schemas.ItemPublic:
    return schemas.ItemPublic(
        id=i.id,
        register_number=i.register_number,
        copy_number=i.copy_number,
        title=i.title,
        kind=i.kind,
        level=level_name(i.effective_level),
        period=SecrecyPeriod.of(i).describe(),
        epc=i.epc,
        status=i.status,
        venue=i.venue.code if i.venue else None,
        custodian=i.custodian.username if i.custodian else None,
        label_out_of_date=i.label_out_of_date,
    )


def meeting(m: Meeting, venue_code: str) -> schemas.MeetingPublic:
    return schemas.MeetingPublic(
        id=m.id,
        title=m.title,
        venue=venue_code,
        level=level_name(m.level),
        starts_at=m.starts_at,
        ends_at=m.ends_at,
        participants=sorted(p.username for p in m.participants),
    )


def approval(a: Approval) -> schemas.ApprovalPublic:
    return schemas.ApprovalPublic(
        ref=a.ref,
        kind=a.kind,
        state=a.state,
        requester=a.requester.username,
        items=sorted(item_key(i) for i in a.items),
        people=sorted(p.username for p in a.people),
        groups=sorted(g.name for g in a.groups),
        valid_from=a.valid_from,
        valid_until=a.valid_until,
        uses_left=a.uses_left,
        reason=a.reason,
        decisions=[f"{d.decision} by {d.approver.username}: {d.note}".rstrip(": ") for d in a.decisions],
        portal=a.portal.code if a.portal else None,
        destination_venue=a.destination_venue.code if a.destination_venue else None,
        destination_text=a.destination_text,
        return_by=a.return_by,
        uses_total=a.uses_total,
        originator_consent=a.originator_consent,
    )


def journal_entry(e: JournalEntry) -> schemas.JournalEntryPublic:
    payload = json.loads(e.payload)
    return schemas.JournalEntryPublic(
        seq=e.seq,
        at=e.at,
        actor=e.actor,
        action=e.action,
        subject=e.subject,
        payload=payload if isinstance(payload, dict) else {"value": payload},
    )

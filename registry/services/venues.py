"""Venues, portals, devices and meetings: validated against the register's rules and journaled with the
acting user in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal, rules, validate
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import ANTENNA_SIDES, DEVICE_KINDS, Antenna, Device, Meeting, Portal, Venue
from registry.services import lookup
from registry.sitefile import SECRET_KEYS, VENUE_FLAGS


@dataclass(frozen=True, slots=True)
class VenueData:
    code: str
    name: str
    ceiling: str
    flags: tuple[str, ...] = ()
    fail_secure_level: str = "secret"


@dataclass(frozen=True, slots=True)
class PortalData:
    code: str
    name: str
    inside: str
    outside: str | None
    border: bool = False


@dataclass(frozen=True, slots=True)
class DeviceData:
    name: str
    kind: str
    portal: str | None
    venue: str | None
    settings: tuple[tuple[str, str | int | float | bool], ...] = ()
    antennas: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MeetingData:
    title: str
    venue: str
    level: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    participants: tuple[str, ...]


def create_venue(session: Session, actor: str, data: VenueData) -> Venue:
    if session.execute(select(Venue.id).where(Venue.code == data.code)).first():
        raise RuleViolation("venue.code_unique", f"venue code {data.code} is taken")
    for flag in data.flags:
        validate.choice(flag, VENUE_FLAGS, "flags")
    ceiling = validate.level(data.ceiling, "ceiling")
    if "top_secret_designated" in data.flags and ceiling != Level.TOP_SECRET:
        raise InvalidInput("ceiling", "a venue designated for top secret has a top_secret ceiling")
    venue = Venue(
        code=data.code,
        name=data.name,
        ceiling=int(ceiling),
        fail_secure_level=int(validate.level(data.fail_secure_level, "fail_secure_level")),
        **{flag: flag in data.flags for flag in VENUE_FLAGS},
    )
    session.add(venue)
    session.flush()
    journal.append(
        session,
        actor,
        "venue.created",
        f"venue:{venue.code}",
        {"name": venue.name, "ceiling": ceiling.label, "flags": sorted(data.flags)},
    )
    return venue


def create_portal(session: Session, actor: str, data: PortalData) -> Portal:
    if session.execute(select(Portal.id).where(Portal.code == data.code)).first():
        raise RuleViolation("portal.code_unique", f"portal code {data.code} is taken")
    inside = lookup.venue(session, data.inside)
    outside = lookup.venue(session, data.outside) if data.outside else None
    if outside is not None and outside.id == inside.id:
        raise InvalidInput("outside", "a portal joins two different venues")
    portal = Portal(code=data.code, name=data.name, inside_venue=inside, outside_venue=outside, border=data.border)
    session.add(portal)
    session.flush()
    journal.append(
        session,
        actor,
        "portal.created",
        f"portal:{portal.code}",
        {"inside": inside.code, "outside": outside.code if outside else None, "border": data.border},
    )
    return portal


def create_device(session: Session, actor: str, data: DeviceData) -> Device:
    validate.choice(data.kind, DEVICE_KINDS, "kind")
    if session.execute(select(Device.id).where(Device.name == data.name)).first():
        raise RuleViolation("device.name_unique", f"device name {data.name} is taken")
    if (data.portal is None) == (data.venue is None):
        raise InvalidInput("portal", "a device sits at exactly one place: a portal or a venue")
    for key, _value in data.settings:
        if SECRET_KEYS.search(key):
            raise InvalidInput(f"settings.{key}", "secrets never enter the register; name a variable with _env")
    numbers = [n for n, _side in data.antennas]
    if len(set(numbers)) != len(numbers):
        raise InvalidInput("antennas", "each antenna number appears once")
    for n, (_number, side) in enumerate(data.antennas):
        validate.choice(side, ANTENNA_SIDES, f"antennas.{n}.side")
    device = Device(
        name=data.name,
        kind=data.kind,
        portal_id=lookup.portal(session, data.portal).id if data.portal else None,
        venue_id=lookup.venue(session, data.venue).id if data.venue else None,
        settings_json=json.dumps(dict(data.settings), sort_keys=True),
    )
    device.antennas = [Antenna(number=n, side=s) for n, s in data.antennas]
    session.add(device)
    session.flush()
    journal.append(
        session,
        actor,
        "device.created",
        f"device:{device.name}",
        {"kind": data.kind, "portal": data.portal, "venue": data.venue, "antennas": [list(a) for a in data.antennas]},
    )
    return device


def create_meeting(session: Session, actor: str, data: MeetingData) -> Meeting:
    """Art. 45: a classified meeting runs in a venue that may hold its level, with cleared participants."""
    level = validate.level(data.level)
    if data.ends_at <= data.starts_at:
        raise InvalidInput("ends_at", "the meeting ends before it starts")
    venue = lookup.venue(session, data.venue)
    rules.placement(int(level), venue)
    people = [lookup.person(session, username) for username in data.participants]
    for person in people:
        rules.active_person(person)
    short = sorted(p.username for p in people if p.clearance < level)
    if short:
        raise RuleViolation("meeting.clearance", f"clearance below {level.label}: {', '.join(short)}", details=short)
    meeting = Meeting(
        title=data.title,
        venue_id=venue.id,
        level=int(level),
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        participants=people,
    )
    session.add(meeting)
    session.flush()
    journal.append(
        session,
        actor,
        "meeting.created",
        f"meeting:{meeting.id}",
        {
            "title": data.title,
            "venue": venue.code,
            "level": level.label,
            "starts_at": meeting.starts_at.isoformat(),
            "ends_at": meeting.ends_at.isoformat(),
            "participants": sorted(p.username for p in people),
        },
    )
    return meeting

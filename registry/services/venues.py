"""Venues, portals, devices and meetings: created and changed only through these functions, which check the
register's rules and journal the change with the acting user in the caller's transaction.

The site loader, the administrator's API and pages all write through here, so a rule holds whichever way a
change arrives: a venue's ceiling is never lowered under what it holds, a portal joins two different
venues, a device sits at one place, a door has one panel, an antenna number appears once per reader.

Retiring removes a row from the configuration: a device at any time (its history is in the journal, by
name), a portal or venue only while nothing else in the register refers to it (`portal.in_use`,
`venue.in_use` name what does), since records that name it must keep meaning what they said.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from firmware_bridge import kinds as device_kinds
from firmware_bridge.kinds import Role
from registry import journal, rules, validate
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import (
    ANTENNA_SIDES,
    ANTI_PASSBACK,
    DEVICE_KINDS,
    Antenna,
    Approval,
    Device,
    Incident,
    InventoryCount,
    Item,
    ItemAccess,
    Meeting,
    Portal,
    Seizure,
    Transfer,
    Venue,
    inspection_venues,
    transfer_items,
)
from registry.services import lookup

VENUE_FLAGS = ("top_secret_designated", "storage", "closed", "key_part", "destruction")
# Secrets never enter the register or its exports: a setting names an environment variable instead.
SECRET_KEYS = re.compile(r"(scbk|key|password|secret|token)$", re.IGNORECASE)
# Placement rules follow each kind's role in the one device-kind table (firmware_bridge.kinds).
READER_KINDS = device_kinds.with_role(Role.PORTAL_READER, Role.HANDHELD)
# A panel drives a door strike: it belongs to a portal. Destruction machines are stations in a room.
PORTAL_ONLY_KINDS = device_kinds.with_role(Role.PANEL)
VENUE_ONLY_KINDS = device_kinds.with_role(Role.MACHINE)
# The portal controller drives one strike and reads one people count per door.
ONE_PER_PORTAL = {
    **{name: "portal.one_panel" for name in device_kinds.with_role(Role.PANEL)},
    **{name: "portal.one_camera" for name in device_kinds.with_role(Role.CAMERA)},
}
ANTENNA_NUMBERS = range(1, 65536)  # LLRP antenna ids are 16-bit, 0 meaning "all"
PLAN_LIMIT_M = 1_000_000.0  # a site plan coordinate, metres


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
    outside: str | None  # None: the portal leads out of the unit
    border: bool = False
    x_m: float = 0.0
    y_m: float = 0.0
    anti_passback: str = "off"  # ANTI_PASSBACK


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


def _changes(row: object, values: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (getattr(row, k), v) for k, v in values.items() if getattr(row, k) != v}


# Venues


def _venue_values(data: VenueData) -> dict[str, Any]:
    for flag in data.flags:
        validate.choice(flag, VENUE_FLAGS, "flags")
    ceiling = validate.level(data.ceiling, "ceiling")
    if "top_secret_designated" in data.flags and ceiling != Level.TOP_SECRET:
        raise InvalidInput("ceiling", "a venue designated for top secret has a top_secret ceiling")
    return {
        "name": data.name,
        "ceiling": int(ceiling),
        "fail_secure_level": int(validate.level(data.fail_secure_level, "fail_secure_level")),
        **{flag: flag in data.flags for flag in VENUE_FLAGS},
    }


def create_venue(session: Session, actor: str, data: VenueData) -> Venue:
    if session.execute(select(Venue.id).where(Venue.code == data.code)).first():
        raise RuleViolation("venue.code_unique", f"venue code {data.code} is taken", field="code")
    venue = Venue(code=data.code, **_venue_values(data))
    session.add(venue)
    session.flush()
    journal.append(
        session,
        actor,
        "venue.created",
        f"venue:{venue.code}",
        {"name": venue.name, "ceiling": Level(venue.ceiling).label, "flags": sorted(data.flags)},
    )
    return venue


def held_in(session: Session, venue: Venue) -> list[Item]:
    """Items the venue must be able to hold: those inside it and those on a transfer on its way there."""
    inside = select(Item).where(Item.venue_id == venue.id)
    arriving = (
        select(Item)
        .join(transfer_items, transfer_items.c.item_id == Item.id)
        .join(Transfer, Transfer.id == transfer_items.c.transfer_id)
        .where(Transfer.to_venue_id == venue.id, Transfer.state == "in_transit")
    )
    found = {i.id: i for query in (inside, arriving) for i in session.execute(query).scalars()}
    return sorted(found.values(), key=lambda i: (i.register_number, i.copy_number))


def _still_holds(session: Session, venue: Venue, ceiling: int, designated: bool) -> None:
    """Art. 27(6), 29(3) seen from the venue's side: a change may not leave anything it holds out of place."""
    held = [(f"{i.register_number}/{i.copy_number}", i.effective_level) for i in held_in(session, venue)]
    meetings = session.execute(
        select(Meeting).where(Meeting.venue_id == venue.id, Meeting.ends_at > journal.now_utc())
    ).scalars()
    held += [(f"meeting {m.id} ({m.title})", m.level) for m in meetings]
    over = sorted(name for name, level in held if level > ceiling)
    if over:
        raise RuleViolation(
            "venue.ceiling",
            f"{venue.code} may not go down to {Level(ceiling).label}: it holds {len(over)} thing(s) above it: "
            + ", ".join(over),
            details=over,
            field="ceiling",
        )
    top = sorted(name for name, level in held if level == Level.TOP_SECRET)
    if top and not designated:
        raise RuleViolation(
            "venue.top_secret_designated",
            f"{venue.code} may not lose its top-secret designation while it holds top_secret: " + ", ".join(top),
            details=top,
            field="top_secret_designated",
        )


def update_venue(session: Session, actor: str, venue: Venue, data: VenueData) -> bool:
    """Give a registered venue the values of `data` (same code); False when nothing differs."""
    values = _venue_values(data)
    changes = _changes(venue, values)
    if not changes:
        return False
    _still_holds(session, venue, values["ceiling"], values["top_secret_designated"])
    for key, (_before, after) in changes.items():
        setattr(venue, key, after)
    session.flush()
    shown = {
        k: [Level(a).label, Level(b).label] if k in ("ceiling", "fail_secure_level") else [a, b]
        for k, (a, b) in changes.items()
    }
    journal.append(session, actor, "venue.updated", f"venue:{venue.code}", shown)
    return True


# Portals


def _portal_values(session: Session, data: PortalData) -> dict[str, Any]:
    inside = lookup.venue(session, data.inside)
    outside = lookup.venue(session, data.outside) if data.outside else None
    if outside is not None and outside.id == inside.id:
        raise RuleViolation(
            "portal.distinct_venues", f"portal {data.code} joins {inside.code} to itself", field="outside"
        )
    for name, value in (("x_m", data.x_m), ("y_m", data.y_m)):
        if not (math.isfinite(value) and abs(value) <= PLAN_LIMIT_M):
            raise InvalidInput(name, f"a plan coordinate in metres, within ±{PLAN_LIMIT_M:.0f}")
    validate.choice(data.anti_passback, ANTI_PASSBACK, "anti_passback")
    return {
        "name": data.name,
        "inside_venue_id": inside.id,
        "outside_venue_id": outside.id if outside else None,
        "border": data.border,
        "x_m": float(data.x_m),
        "y_m": float(data.y_m),
        "anti_passback": data.anti_passback,
    }


def _portal_payload(session: Session, portal: Portal) -> dict[str, Any]:
    inside = session.get(Venue, portal.inside_venue_id)
    outside = session.get(Venue, portal.outside_venue_id) if portal.outside_venue_id else None
    return {
        "name": portal.name,
        "inside": inside.code if inside else None,
        "outside": outside.code if outside else None,
        "border": portal.border,
        "x_m": portal.x_m,
        "y_m": portal.y_m,
        "anti_passback": portal.anti_passback,
    }


def create_portal(session: Session, actor: str, data: PortalData) -> Portal:
    if session.execute(select(Portal.id).where(Portal.code == data.code)).first():
        raise RuleViolation("portal.code_unique", f"portal code {data.code} is taken", field="code")
    portal = Portal(code=data.code, **_portal_values(session, data))
    session.add(portal)
    session.flush()
    journal.append(session, actor, "portal.created", f"portal:{portal.code}", _portal_payload(session, portal))
    return portal


def update_portal(session: Session, actor: str, portal: Portal, data: PortalData) -> bool:
    """Give a registered portal the values of `data` (same code); False when nothing differs."""
    changes = _changes(portal, _portal_values(session, data))
    if not changes:
        return False
    before = _portal_payload(session, portal)
    for key, (_before, after) in changes.items():
        setattr(portal, key, after)
    session.flush()
    after = _portal_payload(session, portal)
    journal.append(
        session,
        actor,
        "portal.updated",
        f"portal:{portal.code}",
        {k: [before[k], after[k]] for k in after if before[k] != after[k]},
    )
    return True


# Devices


def _device_values(session: Session, data: DeviceData, device: Device | None) -> dict[str, Any]:
    validate.choice(data.kind, DEVICE_KINDS, "kind")
    if data.portal is not None and data.venue is not None:
        raise RuleViolation(
            "device.one_place", f"{data.name} is given a portal and a venue; a device sits at one place", field="venue"
        )
    if data.portal is None and data.venue is None:
        raise RuleViolation("device.one_place", f"{data.name} needs a place: a portal or a venue", field="portal")
    if data.kind in PORTAL_ONLY_KINDS and data.portal is None:
        raise RuleViolation("device.place_kind", f"an {data.kind} drives a door: it belongs to a portal", field="venue")
    if data.kind in VENUE_ONLY_KINDS and data.venue is None:
        raise RuleViolation(
            "device.place_kind", f"a {data.kind} is a station in a venue, not at a door", field="portal"
        )
    for key, _value in data.settings:
        if SECRET_KEYS.search(key):
            raise InvalidInput(f"settings.{key}", "secrets never enter the register; name a variable with _env")
    portal = lookup.portal(session, data.portal) if data.portal is not None else None
    if portal is not None and data.kind in ONE_PER_PORTAL:
        other = session.execute(
            select(Device.name).where(
                Device.portal_id == portal.id,
                # A camera or a people-counting sensor: either is the door's one people counter.
                Device.kind.in_([k for k, rule in ONE_PER_PORTAL.items() if rule == ONE_PER_PORTAL[data.kind]]),
                Device.id != (device.id if device else -1),
            )
        ).scalar()
        if other is not None:
            raise RuleViolation(
                ONE_PER_PORTAL[data.kind],
                f"portal {portal.code} already has {other} in that role; a door has one",
                field="portal",
            )
    return {
        "kind": data.kind,
        "portal_id": portal.id if portal else None,
        "venue_id": lookup.venue(session, data.venue).id if data.venue is not None else None,
        "settings_json": json.dumps(dict(data.settings), sort_keys=True),
    }


def _antennas(data: DeviceData) -> list[tuple[int, str]]:
    if data.antennas and data.kind not in READER_KINDS:
        raise RuleViolation(
            "device.antenna_kind", f"a {data.kind} has no RFID antennas; only readers do", field="antennas"
        )
    numbers = [number for number, _side in data.antennas]
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    if twice:
        raise RuleViolation(
            "device.antenna_unique",
            f"{data.name}: antenna {', '.join(map(str, twice))} listed more than once",
            field="antennas",
        )
    for n, (number, side) in enumerate(data.antennas):
        if number not in ANTENNA_NUMBERS:
            raise InvalidInput(f"antennas.{n}.number", "an antenna number is 1..65535")
        validate.choice(side, ANTENNA_SIDES, f"antennas.{n}.side")
    return sorted(data.antennas)


def _device_payload(data: DeviceData) -> dict[str, Any]:
    return {
        "kind": data.kind,
        "portal": data.portal,
        "venue": data.venue,
        "settings": dict(data.settings),
        "antennas": [list(a) for a in sorted(data.antennas)],
    }


def create_device(session: Session, actor: str, data: DeviceData) -> Device:
    if session.execute(select(Device.id).where(Device.name == data.name)).first():
        raise RuleViolation("device.name_unique", f"device name {data.name} is taken", field="name")
    values = _device_values(session, data, None)
    antennas = _antennas(data)
    device = Device(name=data.name, **values)
    device.antennas = [Antenna(number=n, side=s) for n, s in antennas]
    session.add(device)
    session.flush()
    journal.append(session, actor, "device.created", f"device:{device.name}", _device_payload(data))
    return device


def update_device(session: Session, actor: str, device: Device, data: DeviceData) -> bool:
    """Give a registered device the values of `data` (same name): place, settings, antennas. False when
    nothing differs."""
    values = _device_values(session, data, device)
    antennas = _antennas(data)
    changes = _changes(device, values)
    before = sorted((a.number, a.side) for a in device.antennas)
    if not changes and before == antennas:
        return False
    for key, (_before, after) in changes.items():
        setattr(device, key, after)
    if before != antennas:
        device.antennas = [Antenna(number=n, side=s) for n, s in antennas]
    session.flush()
    journal.append(session, actor, "device.updated", f"device:{device.name}", _device_payload(data))
    return True


def check_portal_sides(session: Session, portal: Portal) -> None:
    """Rules 1 and 10 of domain-rules 4: direction comes from the two sides' antennas, so a portal with RFID
    antennas has them on both sides; on one side only, an item could leave without ever being seen crossing.

    A portal is wired one device at a time, so this is checked once its devices are all in (the site loader
    calls it at the end of a load)."""
    devices = session.execute(select(Device).where(Device.portal_id == portal.id).order_by(Device.name)).scalars()
    sides = {a.side for d in devices for a in d.antennas} - {"ignore"}
    if sides and sides != {"inside", "outside"}:
        (only,) = sides
        raise RuleViolation(
            "portal.antenna_sides",
            f"portal {portal.code} has RFID antennas on the {only} side only; a crossing needs both sides",
            field="antennas",
        )


# Meetings


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


# Retiring


def _uses(session: Session, row_id: int, references: tuple[tuple[str, Any], ...]) -> list[str]:
    """`what (count)` for every kind of register row that refers to `row_id` through one of `references`."""
    found = []
    for what, column in references:
        count = session.execute(select(func.count()).where(column == row_id)).scalar_one()
        if count:
            found.append(f"{what} ({count})")
    return found


_PORTAL_USES: tuple[tuple[str, Any], ...] = (
    ("devices", Device.portal_id),
    ("approvals", Approval.portal_id),
    ("access records", ItemAccess.portal_id),
    ("incidents", Incident.portal_id),
)
_VENUE_USES: tuple[tuple[str, Any], ...] = (
    ("portals inside it", Portal.inside_venue_id),
    ("portals leading to it", Portal.outside_venue_id),
    ("devices", Device.venue_id),
    ("items", Item.venue_id),
    ("approvals to it", Approval.destination_venue_id),
    ("meetings", Meeting.venue_id),
    ("transfers from it", Transfer.from_venue_id),
    ("transfers to it", Transfer.to_venue_id),
    ("inventory counts", InventoryCount.venue_id),
    ("access records", ItemAccess.venue_id),
    ("seizures", Seizure.venue_id),
    ("inspections", inspection_venues.c.venue_id),
)


def retire_device(session: Session, actor: str, device: Device) -> None:
    """Take a device out of the site (a running site closes its driver); the journal keeps what it was."""
    payload = {
        "kind": device.kind,
        "portal": device.portal.code if device.portal else None,
        "venue": device.venue.code if device.venue else None,
    }
    session.delete(device)
    session.flush()
    journal.append(session, actor, "device.retired", f"device:{device.name}", payload)


def retire_portal(session: Session, actor: str, portal: Portal) -> None:
    uses = _uses(session, portal.id, _PORTAL_USES)
    if uses:
        raise RuleViolation(
            "portal.in_use",
            f"portal {portal.code} is referred to by {', '.join(uses)}; retire its devices first, and a portal "
            "named by approvals, access records or incidents stays",
            details=uses,
            field="code",
        )
    payload = _portal_payload(session, portal)
    session.delete(portal)
    session.flush()
    journal.append(session, actor, "portal.retired", f"portal:{portal.code}", payload)


def retire_venue(session: Session, actor: str, venue: Venue) -> None:
    uses = _uses(session, venue.id, _VENUE_USES)
    if uses:
        raise RuleViolation(
            "venue.in_use",
            f"venue {venue.code} is referred to by {', '.join(uses)}; only a venue nothing refers to is retired",
            details=uses,
            field="code",
        )
    session.delete(venue)
    session.flush()
    journal.append(session, actor, "venue.retired", f"venue:{venue.code}", {"name": venue.name})

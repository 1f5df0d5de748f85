"""Administration: venues, portals, devices, people (and their passwords), items and labels, meetings.

Lists take a search text `q` and filters; changes and retirements go through the register's services, so a
refused one answers 409 naming the rule. The query functions here serve the administrator's pages too."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from api import schemas, views
from api.deps import Administrator, AdminReader, Classifier, ContextDep, ItemReader, LabelPrinter
from firmware_bridge import kinds as device_kinds
from firmware_bridge.errors import BridgeError, SettingsError
from registry import journal
from registry.db import transaction
from registry.errors import InvalidInput
from registry.levels import Level
from registry.models import ROLES, Device, Item, Meeting, Person, PersonRole, Portal, Venue
from registry.passwords import hash_password
from registry.services import items as item_service
from registry.services import lookup, people, venues
from registry.services.items import SecrecyPeriod

router = APIRouter(prefix="/api/admin", tags=["administration"])
Search = Annotated[str, Query(max_length=100, description="text found in codes, names, titles or numbers")]

label_codec: ModuleType | None
try:  # labels are rendered by the vision package when it is installed; without it the routes answer 404
    from vision import labels as label_codec
except ImportError:
    label_codec = None


# ---- searches (the pages use them too) ----


def _like(query: Select[Any], q: str, *columns: Any) -> Select[Any]:
    text = q.strip()
    if not text:
        return query
    literal = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")  # the text as typed, no wildcards
    return query.where(or_(*(c.ilike(f"%{literal}%", escape="\\") for c in columns)))


@dataclass(frozen=True, slots=True)
class VenueFilter:
    q: str = ""
    flag: str = ""  # one of venues.VENUE_FLAGS


def find_venues(session: Session, f: VenueFilter) -> list[Venue]:
    query = _like(select(Venue).order_by(Venue.code), f.q, Venue.code, Venue.name)
    if f.flag in venues.VENUE_FLAGS:
        query = query.where(getattr(Venue, f.flag).is_(True))
    return list(session.execute(query).scalars())


@dataclass(frozen=True, slots=True)
class PortalFilter:
    q: str = ""
    venue: str = ""  # on either side


def find_portals(session: Session, f: PortalFilter) -> list[Portal]:
    query = _like(select(Portal).order_by(Portal.code), f.q, Portal.code, Portal.name)
    if f.venue:
        venue = lookup.venue(session, f.venue)
        query = query.where(or_(Portal.inside_venue_id == venue.id, Portal.outside_venue_id == venue.id))
    return list(session.execute(query).scalars())


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    q: str = ""
    kind: str = ""
    portal: str = ""
    venue: str = ""


def find_devices(session: Session, f: DeviceFilter) -> list[Device]:
    query = _like(select(Device).order_by(Device.name), f.q, Device.name)
    if f.kind:
        query = query.where(Device.kind == f.kind)
    if f.portal:
        query = query.where(Device.portal_id == lookup.portal(session, f.portal).id)
    if f.venue:
        query = query.where(Device.venue_id == lookup.venue(session, f.venue).id)
    return list(session.execute(query).scalars())


@dataclass(frozen=True, slots=True)
class PersonFilter:
    q: str = ""
    role: str = ""
    status: str = ""


def find_people(session: Session, f: PersonFilter) -> list[Person]:
    query = _like(select(Person).order_by(Person.username), f.q, Person.username, Person.name, Person.organisation)
    if f.role:
        query = query.where(Person.id.in_(select(PersonRole.person_id).where(PersonRole.role == f.role)))
    if f.status:
        query = query.where(Person.status == f.status)
    return list(session.execute(query).scalars())


@dataclass(frozen=True, slots=True)
class ItemFilter:
    q: str = ""
    level: str = ""
    status: str = ""
    venue: str = ""
    custodian: str = ""
    label_out_of_date: bool | None = None


def find_items(session: Session, f: ItemFilter) -> list[Item]:
    query = _like(
        select(Item).order_by(Item.register_number, Item.copy_number),
        f.q,
        Item.register_number,
        Item.title,
        Item.epc,
        Item.originating_unit,
    )
    if f.level:
        query = query.where(Item.level == int(Level[f.level.upper()]))
    if f.status:
        query = query.where(Item.status == f.status)
    if f.venue:
        query = query.where(Item.venue_id == lookup.venue(session, f.venue).id)
    if f.custodian:
        query = query.where(Item.custodian_id == lookup.person(session, f.custodian).id)
    if f.label_out_of_date is not None:
        query = query.where(Item.label_out_of_date.is_(f.label_out_of_date))
    return list(session.execute(query).scalars())


# ---- venues ----


def venue_data(code: str, body: schemas.VenueChange) -> venues.VenueData:
    flags = tuple(f for f in venues.VENUE_FLAGS if getattr(body, f))
    return venues.VenueData(code, body.name, body.ceiling, flags, body.fail_secure_level)


@router.get("/venues")
def list_venues(
    ctx: ContextDep,
    _user: AdminReader,
    q: Search = "",
    flag: Annotated[str, Query(pattern="^(|" + "|".join(venues.VENUE_FLAGS) + ")$")] = "",
) -> list[schemas.VenuePublic]:
    with ctx.factory() as session:
        return [views.venue(v) for v in find_venues(session, VenueFilter(q, flag))]


@router.post("/venues", status_code=status.HTTP_201_CREATED)
def create_venue(body: schemas.VenueCreate, ctx: ContextDep, user: Administrator) -> schemas.VenuePublic:
    with transaction(ctx.factory) as session:
        return views.venue(venues.create_venue(session, user.username, venue_data(body.code, body)))


@router.put("/venues/{code}")
def update_venue(code: str, body: schemas.VenueChange, ctx: ContextDep, user: Administrator) -> schemas.VenuePublic:
    """Every rule applies: a ceiling never goes below what the venue holds (`venue.ceiling`)."""
    with transaction(ctx.factory) as session:
        venue = lookup.venue(session, code)
        venues.update_venue(session, user.username, venue, venue_data(code, body))
        return views.venue(venue)


@router.delete("/venues/{code}", status_code=status.HTTP_204_NO_CONTENT)
def retire_venue(code: str, ctx: ContextDep, user: Administrator) -> Response:
    """Only a venue nothing in the register refers to (`venue.in_use` names what does)."""
    with transaction(ctx.factory) as session:
        venues.retire_venue(session, user.username, lookup.venue(session, code))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- portals ----


def portal_data(code: str, body: schemas.PortalChange) -> venues.PortalData:
    return venues.PortalData(code, body.name, body.inside, body.outside, body.border)


@router.get("/portals")
def list_portals(
    ctx: ContextDep, _user: AdminReader, q: Search = "", venue: Annotated[str, Query(max_length=64)] = ""
) -> list[schemas.PortalPublic]:
    with ctx.factory() as session:
        return [views.portal(p) for p in find_portals(session, PortalFilter(q, venue))]


@router.post("/portals", status_code=status.HTTP_201_CREATED)
def create_portal(body: schemas.PortalCreate, ctx: ContextDep, user: Administrator) -> schemas.PortalPublic:
    with transaction(ctx.factory) as session:
        return views.portal(venues.create_portal(session, user.username, portal_data(body.code, body)))


@router.put("/portals/{code}")
def update_portal(
    code: str, body: schemas.PortalChange, ctx: ContextDep, user: Administrator
) -> schemas.PortalPublic:
    with transaction(ctx.factory) as session:
        portal = lookup.portal(session, code)
        venues.update_portal(session, user.username, portal, portal_data(code, body))
        return views.portal(portal)


@router.delete("/portals/{code}", status_code=status.HTTP_204_NO_CONTENT)
def retire_portal(code: str, ctx: ContextDep, user: Administrator) -> Response:
    """Refused while devices sit at it or records name it (`portal.in_use`)."""
    with transaction(ctx.factory) as session:
        venues.retire_portal(session, user.username, lookup.portal(session, code))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- devices ----


def kind_view(name: str) -> schemas.DeviceKindPublic:
    described = device_kinds.KINDS[name]
    try:
        found = device_kinds.setting_fields(name)
    except BridgeError as exc:  # its library is not installed here
        found, problem = (), str(exc)
    else:
        problem = ""
    fields = [
        schemas.SettingFieldPublic(
            name=f.name,
            type=f.type,
            default=f.default,  # type: ignore[arg-type]
            choices=list(f.choices),
            optional=f.optional,
        )
        for f in found
    ]
    return schemas.DeviceKindPublic(
        name=name, role=described.role, summary=described.summary, settings=fields, unavailable=problem
    )


def checked_settings(name: str, kind: str, settings: dict[str, object]) -> tuple[tuple[str, Any], ...]:
    """The settings as the kind's typed dataclass reads them (InvalidInput naming the setting otherwise)."""
    try:
        backend = device_kinds.kind(kind).backend()
        parsed = device_kinds.parse_settings(backend.settings, name, settings)
    except SettingsError as exc:
        raise InvalidInput(f"settings.{exc.setting}", str(exc)) from None
    except BridgeError as exc:
        raise InvalidInput("kind", str(exc)) from None
    return tuple(sorted((key, getattr(parsed, key)) for key in settings))


def device_data(name: str, kind: str, body: schemas.DeviceChange) -> venues.DeviceData:
    return venues.DeviceData(
        name=name,
        kind=kind,
        portal=body.portal,
        venue=body.venue,
        settings=checked_settings(name, kind, dict(body.settings)),
        antennas=tuple((a.number, a.side) for a in body.antennas),
    )


@router.get("/device-kinds")
def list_device_kinds(_user: AdminReader) -> list[schemas.DeviceKindPublic]:
    """Every kind of device with its role and typed settings (what the device form shows)."""
    return [kind_view(name) for name in device_kinds.names()]


@router.get("/devices")
def list_devices(
    ctx: ContextDep,
    _user: AdminReader,
    q: Search = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    portal: Annotated[str, Query(max_length=64)] = "",
    venue: Annotated[str, Query(max_length=64)] = "",
) -> list[schemas.DevicePublic]:
    with ctx.factory() as session:
        return [views.device(d) for d in find_devices(session, DeviceFilter(q, kind, portal, venue))]


@router.post("/devices", status_code=status.HTTP_201_CREATED)
def create_device(body: schemas.DeviceCreate, ctx: ContextDep, user: Administrator) -> schemas.DevicePublic:
    with transaction(ctx.factory) as session:
        return views.device(venues.create_device(session, user.username, device_data(body.name, body.kind, body)))


@router.put("/devices/{name}")
def update_device(
    name: str, body: schemas.DeviceChange, ctx: ContextDep, user: Administrator
) -> schemas.DevicePublic:
    """A running site closes the device's driver and opens it again with the new settings."""
    with transaction(ctx.factory) as session:
        device = lookup.device(session, name)
        venues.update_device(session, user.username, device, device_data(name, device.kind, body))
        return views.device(device)


@router.delete("/devices/{name}", status_code=status.HTTP_204_NO_CONTENT)
def retire_device(name: str, ctx: ContextDep, user: Administrator) -> Response:
    with transaction(ctx.factory) as session:
        venues.retire_device(session, user.username, lookup.device(session, name))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/devices/{name}/probe")
def probe_device(name: str, ctx: ContextDep, _user: Administrator) -> schemas.DeviceProbePublic:
    """Ask the device, through the running site, what it is and how it is (the API never opens a device)."""
    with ctx.factory() as session:
        lookup.device(session, name)
    try:
        found = ctx.require_control().probe(name)
    except KeyError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{name} is not open on the running site yet") from None
    return schemas.DeviceProbePublic(
        name=found.name, kind=found.kind, health=found.health, identity=found.identity, detail=found.detail
    )


# ---- people ----


def person_data(username: str, body: schemas.PersonChange) -> people.PersonData:
    return people.PersonData(
        username=username,
        name=body.name,
        clearance=body.clearance,
        roles=tuple(body.roles),
        badges=tuple(body.badges),
        groups=tuple(body.groups),
        visitor=body.visitor,
        title=body.title,
        organisation=body.organisation,
    )


@router.get("/roles")
def list_roles(_user: AdminReader) -> list[str]:
    """The register's roles, the only names a person's roles may take."""
    return list(ROLES)


@router.get("/people")
def list_people(
    ctx: ContextDep,
    _user: AdminReader,
    q: Search = "",
    role: Annotated[str, Query(max_length=32)] = "",
    status_: Annotated[str, Query(alias="status", max_length=16)] = "",
) -> list[schemas.PersonPublic]:
    with ctx.factory() as session:
        return [views.person(p) for p in find_people(session, PersonFilter(q, role, status_))]


@router.post("/people", status_code=status.HTTP_201_CREATED)
def create_person(body: schemas.PersonCreate, ctx: ContextDep, user: Administrator) -> schemas.PersonPublic:
    with transaction(ctx.factory) as session:
        return views.person(people.create(session, user.username, person_data(body.username, body)))


@router.put("/people/{username}")
def update_person(
    username: str, body: schemas.PersonChange, ctx: ContextDep, user: Administrator
) -> schemas.PersonPublic:
    with transaction(ctx.factory) as session:
        person = lookup.person(session, username)
        people.update(session, user.username, person, person_data(username, body))
        return views.person(person)


def departure_view(person: Person, held: list[Item]) -> schemas.DeparturePublic:
    return schemas.DeparturePublic(
        username=person.username, status=person.status, items_to_return=[views.item(i) for i in held]
    )


@router.post("/people/{username}/departure")
def begin_departure(username: str, ctx: ContextDep, user: Administrator) -> schemas.DeparturePublic:
    """Art. 53: the person is leaving; the answer lists what they must return before sign-off."""
    with transaction(ctx.factory) as session:
        person = lookup.person(session, username)
        return departure_view(person, people.begin_departure(session, user.username, person))


@router.post("/people/{username}/sign-off")
def sign_off(
    username: str, body: schemas.SignOffCreate, ctx: ContextDep, user: Administrator
) -> schemas.DeparturePublic:
    """Refused (409 `person.items_in_custody`, listing them) while anything is in the person's custody; then
    every badge is revoked and their sessions end."""
    with transaction(ctx.factory) as session:
        person = lookup.person(session, username)
        people.sign_off(session, user.username, person, body.separation_until)
        ctx.auth.end_sessions_of(session, username)
        return departure_view(person, [])


@router.put("/people/{username}/password", status_code=status.HTTP_204_NO_CONTENT)
def set_password(username: str, body: schemas.PasswordCreate, ctx: ContextDep, user: Administrator) -> Response:
    """Set a person's password; every session and token they hold ends."""
    try:
        hashed = hash_password(body.password)
    except ValueError as exc:
        raise InvalidInput("password", str(exc)) from None
    with transaction(ctx.factory) as session:
        people.set_password_hash(session, user.username, lookup.person(session, username), hashed)
        # A new password ends every session the old one opened: it may have been stolen.
        ctx.auth.end_sessions_of(session, username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/items")
def list_items(
    ctx: ContextDep,
    _user: ItemReader,
    q: Search = "",
    level: Annotated[str, Query(pattern="^(|unclassified|internal|confidential|secret|top_secret)$")] = "",
    status_: Annotated[str, Query(alias="status", max_length=20)] = "",
    venue: Annotated[str, Query(max_length=64)] = "",
    custodian: Annotated[str, Query(max_length=64)] = "",
    label_out_of_date: bool | None = None,
) -> list[schemas.ItemPublic]:
    with ctx.factory() as session:
        found = find_items(session, ItemFilter(q, level, status_, venue, custodian, label_out_of_date))
        return [views.item(i) for i in found]


@router.get("/items/{item_id}")
def get_item(item_id: schemas.RowId, ctx: ContextDep, _user: ItemReader) -> schemas.ItemPublic:
    with ctx.factory() as session:
        return views.item(lookup.item(session, item_id))


def _period(start: dt.date, months: int | None, until: dt.date | None, condition: str | None) -> SecrecyPeriod:
    return SecrecyPeriod(start, months, until, condition)


def item_data(body: schemas.ItemCreate) -> item_service.ItemData:
    """What the registry service registers, from the API's body or the administration page's form."""
    return item_service.ItemData(
        register_number=body.register_number,
        copy_number=body.copy_number,
        title=body.title,
        kind=body.kind,
        level=body.level,
        period=_period(body.period_start, body.period_months, body.declassify_on, body.declassify_condition),
        originating_unit=body.originating_unit,
        epc=body.epc,
        tid=body.tid,
        venue=body.venue,
        custodian=body.custodian,
        scope_people=tuple(body.scope_people),
        scope_groups=tuple(body.scope_groups),
    )


@router.post("/items", status_code=status.HTTP_201_CREATED)
def register_item(body: schemas.ItemCreate, ctx: ContextDep, user: Administrator) -> schemas.ItemPublic:
    with transaction(ctx.factory) as session:
        return views.item(item_service.register(session, user.username, item_data(body)))


@router.post("/items/{item_id}/relabel")
def relabel_item(
    item_id: schemas.RowId, body: schemas.RelabelCreate, ctx: ContextDep, user: Classifier
) -> schemas.ItemPublic:
    """Art. 21/22: change level and/or period; the item is flagged 'label out of date' until read back."""
    with transaction(ctx.factory) as session:
        item = lookup.item(session, item_id)
        period = None
        if any(v is not None for v in (body.period_months, body.declassify_on, body.declassify_condition)):
            period = _period(
                body.period_start or item.period_start,
                body.period_months,
                body.declassify_on,
                body.declassify_condition,
            )
        if body.level is None and period is None:
            raise InvalidInput("level", "give a new level or a new period")
        return views.item(
            item_service.change_marking(
                session, user.username, item, reason=body.reason, level=body.level, period=period
            )
        )


@router.get("/items/{item_id}/label.{fmt}", responses={200: {"content": {"image/png": {}, "application/pdf": {}}}})
def item_label(item_id: schemas.RowId, fmt: str, ctx: ContextDep, user: LabelPrinter) -> Response:
    """The printable label (level, period, ids and a 2-D code) as PNG or PDF. Every label given out is
    journalled: who, which item, what it said, and the SHA-256 of the file."""
    if label_codec is None or fmt not in ("png", "pdf"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "label rendering is not available in this installation")
    with transaction(ctx.factory) as session:
        item = lookup.item(session, item_id)
        data = label_codec.LabelData(
            item_id=item.epc,
            register_number=views.item_key(item),
            level=Level(item.effective_level).label,
            secrecy_period=SecrecyPeriod.of(item).describe(),
        )
        rendered = label_codec.render_label(data) if fmt == "png" else label_codec.render_label_pdf(data)
        digest = hashlib.sha256(rendered).hexdigest()
        printed = {"format": fmt, "level": data.level, "period": data.secrecy_period, "sha256": digest}
        journal.append(session, user.username, "item.label_printed", f"item:{data.register_number}", printed)
    return Response(rendered, media_type="image/png" if fmt == "png" else "application/pdf")


@router.get("/meetings")
def list_meetings(ctx: ContextDep, _user: AdminReader) -> list[schemas.MeetingPublic]:
    with ctx.factory() as session:
        rows = session.execute(select(Meeting, Venue.code).join(Venue).order_by(Meeting.starts_at)).all()
        return [views.meeting(m, code) for m, code in rows]


@router.post("/meetings", status_code=status.HTTP_201_CREATED)
def create_meeting(body: schemas.MeetingCreate, ctx: ContextDep, user: Administrator) -> schemas.MeetingPublic:
    data = venues.MeetingData(
        body.title, body.venue, body.level, body.starts_at, body.ends_at, tuple(body.participants)
    )
    with transaction(ctx.factory) as session:
        meeting = venues.create_meeting(session, user.username, data)
        return views.meeting(meeting, body.venue)

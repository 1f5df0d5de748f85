"""Administration: venues, portals, devices, people (and their passwords), items and labels, meetings."""

from __future__ import annotations

import datetime as dt
import hashlib
from types import ModuleType

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import schemas, views
from api.deps import Administrator, AdminReader, Classifier, ContextDep, ItemReader, LabelPrinter
from registry import journal
from registry.db import transaction
from registry.errors import InvalidInput, NotFound
from registry.levels import Level
from registry.models import Device, Item, Meeting, Person, Portal, Venue
from registry.passwords import hash_password
from registry.services import items as item_service
from registry.services import lookup, people, venues
from registry.services.items import SecrecyPeriod

router = APIRouter(prefix="/api/admin", tags=["administration"])

label_codec: ModuleType | None
try:  # labels are rendered by the vision package when it is installed; without it the routes answer 404
    from vision import labels as label_codec
except ImportError:
    label_codec = None


@router.get("/venues")
def list_venues(ctx: ContextDep, _user: AdminReader) -> list[schemas.VenuePublic]:
    with ctx.factory() as session:
        return [views.venue(v) for v in session.execute(select(Venue).order_by(Venue.code)).scalars()]


@router.post("/venues", status_code=status.HTTP_201_CREATED)
def create_venue(body: schemas.VenueCreate, ctx: ContextDep, user: Administrator) -> schemas.VenuePublic:
    flags = tuple(
        f for f in ("top_secret_designated", "storage", "closed", "key_part", "destruction") if getattr(body, f)
    )
    data = venues.VenueData(body.code, body.name, body.ceiling, flags, body.fail_secure_level)
    with transaction(ctx.factory) as session:
        return views.venue(venues.create_venue(session, user.username, data))


@router.get("/portals")
def list_portals(ctx: ContextDep, _user: AdminReader) -> list[schemas.PortalPublic]:
    with ctx.factory() as session:
        return [views.portal(p) for p in session.execute(select(Portal).order_by(Portal.code)).scalars()]


@router.post("/portals", status_code=status.HTTP_201_CREATED)
def create_portal(body: schemas.PortalCreate, ctx: ContextDep, user: Administrator) -> schemas.PortalPublic:
    data = venues.PortalData(body.code, body.name, body.inside, body.outside, body.border)
    with transaction(ctx.factory) as session:
        return views.portal(venues.create_portal(session, user.username, data))


@router.get("/devices")
def list_devices(ctx: ContextDep, _user: AdminReader) -> list[schemas.DevicePublic]:
    with ctx.factory() as session:
        return [views.device(d) for d in session.execute(select(Device).order_by(Device.name)).scalars()]


@router.post("/devices", status_code=status.HTTP_201_CREATED)
def create_device(body: schemas.DeviceCreate, ctx: ContextDep, user: Administrator) -> schemas.DevicePublic:
    data = venues.DeviceData(
        name=body.name,
        kind=body.kind,
        portal=body.portal,
        venue=body.venue,
        settings=tuple(sorted(body.settings.items())),
        antennas=tuple((a.number, a.side) for a in body.antennas),
    )
    with transaction(ctx.factory) as session:
        return views.device(venues.create_device(session, user.username, data))


@router.get("/people")
def list_people(ctx: ContextDep, _user: AdminReader) -> list[schemas.PersonPublic]:
    with ctx.factory() as session:
        return [views.person(p) for p in session.execute(select(Person).order_by(Person.username)).scalars()]


@router.post("/people", status_code=status.HTTP_201_CREATED)
def create_person(body: schemas.PersonCreate, ctx: ContextDep, user: Administrator) -> schemas.PersonPublic:
    data = people.PersonData(
        username=body.username,
        name=body.name,
        clearance=body.clearance,
        roles=tuple(body.roles),
        badges=tuple(body.badges),
        groups=tuple(body.groups),
        visitor=body.visitor,
        title=body.title,
        organisation=body.organisation,
    )
    with transaction(ctx.factory) as session:
        return views.person(people.create(session, user.username, data))


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


def _item(session: Session, item_id: int) -> Item:
    found = session.get(Item, item_id)
    if found is None:
        raise NotFound("item", item_id)
    return found


@router.get("/items")
def list_items(ctx: ContextDep, _user: ItemReader) -> list[schemas.ItemPublic]:
    with ctx.factory() as session:
        rows = session.execute(select(Item).order_by(Item.register_number, Item.copy_number)).scalars()
        return [views.item(i) for i in rows]


@router.get("/items/{item_id}")
def get_item(item_id: schemas.RowId, ctx: ContextDep, _user: ItemReader) -> schemas.ItemPublic:
    with ctx.factory() as session:
        return views.item(_item(session, item_id))


def _period(start: dt.date, months: int | None, until: dt.date | None, condition: str | None) -> SecrecyPeriod:
    return SecrecyPeriod(start, months, until, condition)


@router.post("/items", status_code=status.HTTP_201_CREATED)
def register_item(body: schemas.ItemCreate, ctx: ContextDep, user: Administrator) -> schemas.ItemPublic:
    data = item_service.ItemData(
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
    with transaction(ctx.factory) as session:
        return views.item(item_service.register(session, user.username, data))


@router.post("/items/{item_id}/relabel")
def relabel_item(
    item_id: schemas.RowId, body: schemas.RelabelCreate, ctx: ContextDep, user: Classifier
) -> schemas.ItemPublic:
    """Art. 21/22: change level and/or period; the item is flagged 'label out of date' until read back."""
    with transaction(ctx.factory) as session:
        item = _item(session, item_id)
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
        item = _item(session, item_id)
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

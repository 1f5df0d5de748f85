"""The administrator's and approver's pages: lists with search and filters, detail pages, and forms that
change the register through its services.

A refused change comes back as the same form, with the values as typed and the rule's message inside the
form next to the field it names (status 409 for a rule, 422 for a malformed value); a change that is
accepted redirects to the detail page with a confirmation. Device forms are built from the device kind's
typed settings (`firmware_bridge.kinds.setting_fields`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from api import schemas
from api.auth import Principal
from api.deps import Administrator, ApprovalReader, Approver, ContextDep, Requester
from api.limits import accepts_images
from api.pages import TEMPLATES, back, render
from api.routers import admin as admin_api
from api.routers.approvals import covers, find_approvals, request_from, visible
from api.routers.records import MAX_IMAGE_BYTES, decode_label
from controllers.control import DeviceProbe, DeviceState
from firmware_bridge import kinds as device_kinds
from firmware_bridge.errors import BridgeError
from firmware_bridge.kinds import Role, SettingField
from registry.db import transaction
from registry.errors import InvalidInput, NotFound, RegistryError, RuleViolation
from registry.levels import Level
from registry.models import (
    APPROVAL_KINDS,
    APPROVAL_STATES,
    ITEM_KINDS,
    ITEM_STATUSES,
    PERSON_STATUSES,
    ROLES,
    Approval,
    Device,
    Item,
    Person,
    Portal,
    Venue,
)
from registry.passwords import hash_password
from registry.services import approvals, lookup, people, venues
from registry.services import items as item_service
from registry.services.items import SecrecyPeriod
from registry.services.people import departure_checklist

router = APIRouter(include_in_schema=False)
TEMPLATES.env.filters["level"] = lambda value: Level(value).label
M = TypeVar("M", bound=BaseModel)
LEVELS = tuple(level.label for level in Level)
REQUESTING = frozenset({"custodian", "administrator", "classifier", "approver", "destruction_operator"})
ANTENNA_ROWS = 4  # antenna numbers offered on a reader's form (more when the reader has more)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a form was refused: the field it names ("" for the whole form), the message, the rule if any."""

    field: str
    message: str
    rule: str = ""


@dataclass
class FormState:
    """What a form shows: its values (from the register, or as typed when refused) and its problem."""

    values: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None

    def value(self, name: str, default: Any = "") -> Any:
        found = self.values.get(name)
        return default if found is None else found

    def invalid(self, name: str) -> bool:
        return self.problem is not None and self.problem.field == name


def problem_of(exc: Exception) -> Problem:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return Problem(where, f"{where}: {first['msg']}")
    if isinstance(exc, RuleViolation):
        return Problem(exc.field or "", f"Refused by rule {exc.rule}: {exc.message}", exc.rule)
    if isinstance(exc, InvalidInput):
        return Problem(exc.field, f"{exc.field}: {exc.message}")
    return Problem("", str(exc))


def refused_status(problem: Problem) -> int:
    return status.HTTP_409_CONFLICT if problem.rule else status.HTTP_422_UNPROCESSABLE_CONTENT


# A kind whose backend library is missing (BridgeError) is refused in the form like any other problem.
FORM_ERRORS = (ValidationError, RegistryError, ValueError, BridgeError)


def read_form(model: type[M], form: FormData, **fixed: object) -> M:
    """A schema from a posted form: an empty field is absent (spaces only are not: the schema refuses them
    as blank), an unticked box is false, a list field takes
    every value given (ticked boxes) or comma-separated text; `fixed` values come from the URL."""
    values: dict[str, object] = {}
    for name, spec in model.model_fields.items():
        raw = [v for v in form.getlist(name) if isinstance(v, str)]
        annotation = str(spec.annotation)
        if "list" in annotation:
            if raw:
                values[name] = [part.strip() for text in raw for part in text.split(",") if part.strip()]
        elif spec.annotation is bool:
            values[name] = bool(raw) and raw[-1] in ("on", "true", "1")
        elif raw and raw[-1]:
            text = raw[-1]
            if "datetime" in annotation.lower() and len(text) == 16:
                text += ":00+00:00"  # a datetime-local field; the pages state that times are UTC
            values[name] = text
    values.update(fixed)
    return model.model_validate(values)


def typed(form: FormData) -> dict[str, Any]:
    """The form as typed, to show again beside its problem (ticked boxes as lists)."""
    shown: dict[str, Any] = {}
    for key in form:
        found = [v for v in form.getlist(key) if isinstance(v, str)]
        shown[key] = found if len(found) > 1 or key in ("roles",) else (found[0] if found else "")
    return shown


def live_devices(ctx: Any) -> dict[str, DeviceState]:
    """The running site's device states by name (empty when no site is connected to this API)."""
    if ctx.control is None:
        return {}
    return {d.name: d for d in ctx.control.devices()}


# ---------------------------------------------------------------------------------------------- overview


@router.get("/admin")
def admin_page(request: Request, ctx: ContextDep, user: Administrator) -> Response:
    with ctx.factory() as session:
        venue_rows = list(session.execute(select(Venue).order_by(Venue.code)).scalars())
        persons = list(session.execute(select(Person).order_by(Person.username)).scalars())
        stale = len(admin_api.find_items(session, admin_api.ItemFilter(label_out_of_date=True)))
        waiting = session.execute(select(Approval).where(Approval.state == "requested")).scalars().all()
        return render(
            request,
            "admin.html",
            user,
            venues=venue_rows,
            people=persons,
            roles=ROLES,
            item_kinds=ITEM_KINDS,
            stale_labels=stale,
            waiting=len(waiting),
            not_online=sorted(name for name, d in live_devices(ctx).items() if d.health != "online"),
        )


@router.post("/admin/venues")
async def admin_create_venue(request: Request, ctx: ContextDep, user: Administrator) -> Response:
    form = await request.form()
    try:
        body = read_form(schemas.VenueCreate, form)
        with transaction(ctx.factory) as session:
            venues.create_venue(session, user.username, admin_api.venue_data(body.code, body))
    except FORM_ERRORS as exc:
        return back("/admin", error=problem_of(exc).message)
    return back("/admin", ok=f"venue {body.code} created")


@router.post("/admin/people")
async def admin_create_person(request: Request, ctx: ContextDep, user: Administrator) -> Response:
    form = await request.form()
    try:
        body = read_form(schemas.PersonCreate, form)
        password = str(form.get("password") or "")
        with transaction(ctx.factory) as session:
            person = people.create(session, user.username, admin_api.person_data(body.username, body))
            if password:
                people.set_password_hash(session, user.username, person, hash_password(password))
    except FORM_ERRORS as exc:
        return back("/admin", error=problem_of(exc).message)
    return back(f"/admin/people/{body.username}", ok=f"person {body.username} created")


@router.post("/admin/items")
async def admin_register_item(request: Request, ctx: ContextDep, user: Administrator) -> Response:
    form = await request.form()
    try:
        body = read_form(schemas.ItemCreate, form)
        with transaction(ctx.factory) as session:
            item_id = item_service.register(session, user.username, admin_api.item_data(body)).id
    except FORM_ERRORS as exc:
        return back("/admin", error=problem_of(exc).message)
    return back(f"/admin/items/{item_id}", ok=f"item {body.register_number}/{body.copy_number} registered")


# ---------------------------------------------------------------------------------------------- venues


def _venue_values(v: Venue) -> dict[str, Any]:
    return {
        "name": v.name,
        "ceiling": Level(v.ceiling).label,
        "fail_secure_level": Level(v.fail_secure_level).label,
        **{flag: getattr(v, flag) for flag in venues.VENUE_FLAGS},
    }


@router.get("/admin/venues")
def venues_page(
    request: Request,
    ctx: ContextDep,
    user: Administrator,
    q: Annotated[str, Query(max_length=100)] = "",
    flag: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    with ctx.factory() as session:
        rows = admin_api.find_venues(session, admin_api.VenueFilter(q, flag))
        held = {v.id: len(venues.held_in(session, v)) for v in rows}
        return render(
            request, "admin_venues.html", user, rows=rows, held=held, q=q, flag=flag, flags=venues.VENUE_FLAGS
        )


def _venue_page(request: Request, session: Session, user: Principal, venue: Venue, state: FormState) -> HTMLResponse:
    portals = admin_api.find_portals(session, admin_api.PortalFilter(venue=venue.code))
    return render(
        request,
        "admin_venue.html",
        user,
        venue=venue,
        form=state,
        levels=LEVELS,
        flags=venues.VENUE_FLAGS,
        held=venues.held_in(session, venue),
        portals=portals,
        devices=admin_api.find_devices(session, admin_api.DeviceFilter(venue=venue.code)),
    )


@router.get("/admin/venues/{code}")
def venue_page(request: Request, code: str, ctx: ContextDep, user: Administrator) -> Response:
    with ctx.factory() as session:
        venue = lookup.venue(session, code)
        return _venue_page(request, session, user, venue, FormState(_venue_values(venue)))


@router.post("/admin/venues/{code}")
async def venue_update(request: Request, code: str, ctx: ContextDep, user: Administrator) -> Response:
    form = await request.form()
    try:
        body = read_form(schemas.VenueChange, form)
        with transaction(ctx.factory) as session:
            changed = venues.update_venue(
                session, user.username, lookup.venue(session, code), admin_api.venue_data(code, body)
            )
    except NotFound:
        raise
    except FORM_ERRORS as exc:
        problem = problem_of(exc)
        with ctx.factory() as session:
            page = _venue_page(request, session, user, lookup.venue(session, code), FormState(typed(form), problem))
        page.status_code = refused_status(problem)
        return page
    return back(f"/admin/venues/{code}", ok=f"venue {code} saved" if changed else "nothing to change")


@router.post("/admin/venues/{code}/retire")
def venue_retire(request: Request, code: str, ctx: ContextDep, user: Administrator) -> Response:
    try:
        with transaction(ctx.factory) as session:
            venues.retire_venue(session, user.username, lookup.venue(session, code))
    except RuleViolation as exc:
        problem = problem_of(exc)
        with ctx.factory() as session:
            venue = lookup.venue(session, code)
            page = _venue_page(request, session, user, venue, FormState(_venue_values(venue), problem))
        page.status_code = refused_status(problem)
        return page
    return back("/admin/venues", ok=f"venue {code} retired")


# ---------------------------------------------------------------------------------------------- portals


def _portal_values(p: Portal) -> dict[str, Any]:
    return {
        "code": p.code,
        "name": p.name,
        "inside": p.inside_venue.code,
        "outside": p.outside_venue.code if p.outside_venue else "",
        "border": p.border,
    }


def _portal_side_problem(session: Session, portal: Portal) -> str:
    try:
        venues.check_portal_sides(session, portal)
    except RuleViolation as exc:
        return f"rule {exc.rule}: {exc.message}"
    return ""


def _door_kinds() -> list[device_kinds.DeviceKind]:
    return [k for k in device_kinds.KINDS.values() if k.role is not Role.MACHINE]


@router.get("/admin/portals")
def portals_page(
    request: Request,
    ctx: ContextDep,
    user: Administrator,
    q: Annotated[str, Query(max_length=100)] = "",
    venue: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    with ctx.factory() as session:
        rows = admin_api.find_portals(session, admin_api.PortalFilter(q, venue))
        counts = {p.id: len(admin_api.find_devices(session, admin_api.DeviceFilter(portal=p.code))) for p in rows}
        venue_codes = list(session.execute(select(Venue.code).order_by(Venue.code)).scalars())
        return render(
            request,
            "admin_portals.html",
            user,
            rows=rows,
            counts=counts,
            q=q,
            venue=venue,
            venue_codes=venue_codes,
            form=FormState(),
        )


@router.post("/admin/portals")
async def portal_create(request: Request, ctx: ContextDep, user: Administrator) -> Response:
    form = await request.form()
    try:
        body = read_form(schemas.PortalCreate, form)
        with transaction(ctx.factory) as session:
            venues.create_portal(session, user.username, admin_api.portal_data(body.code, body))
    except FORM_ERRORS as exc:
        problem = problem_of(exc)
        with ctx.factory() as session:
            rows = admin_api.find_portals(session, admin_api.PortalFilter())
            page = render(
                request,
                "admin_portals.html",
                user,
                rows=rows,
                counts={},
                q="",
                venue="",
                venue_codes=list(session.execute(select(Venue.code).order_by(Venue.code)).scalars()),
                form=FormState(typed(form), problem),
            )
        page.status_code = refused_status(problem)
        return page
    return back(f"/admin/portals/{body.code}", ok=f"portal {body.code} created: now give it its devices")


def _portal_page(
    request: Request, ctx: Any, session: Session, user: Principal, portal: Portal, state: FormState
) -> HTMLResponse:
    return render(
        request,
        "admin_portal.html",
        user,
        portal=portal,
        form=state,
        devices=admin_api.find_devices(session, admin_api.DeviceFilter(portal=portal.code)),
        live=live_devices(ctx),
        venue_codes=list(session.execute(select(Venue.code).order_by(Venue.code)).scalars()),
        kinds=_door_kinds(),
        sides=_portal_side_problem(session, portal),
    )


@router.get("/admin/portals/{code}")
def portal_page(request: Request, code: str, ctx: ContextDep, user: Administrator) -> Response:
    with ctx.factory() as session:
        portal = lookup.portal(session, code)
        return _portal_page(request, ctx, session, user, portal, FormState(_portal_values(portal)))


@router.post("/admin/portals/{code}")
async def portal_update(request: Request, code: str, ctx: ContextDep, user: Administrator) -> Response:
    form = await request.form()
    try:
        body = read_form(schemas.PortalChange, form)
        with transaction(ctx.factory) as session:
            changed = venues.update_portal(
                session, user.username, lookup.portal(session, code), admin_api.portal_data(code, body)
            )
    except NotFound as exc:
        if exc.kind == "portal":
            raise
        changed, problem = False, problem_of(exc)
    except FORM_ERRORS as exc:
        changed, problem = False, problem_of(exc)
    else:
        return back(f"/admin/portals/{code}", ok=f"portal {code} saved" if changed else "nothing to change")
    with ctx.factory() as session:
        portal = lookup.portal(session, code)
        page = _portal_page(request, ctx, session, user, portal, FormState(typed(form), problem))
    page.status_code = refused_status(problem)
    return page


@router.post("/admin/portals/{code}/retire")
def portal_retire(request: Request, code: str, ctx: ContextDep, user: Administrator) -> Response:
    try:
        with transaction(ctx.factory) as session:
            venues.retire_portal(session, user.username, lookup.portal(session, code))
    except RuleViolation as exc:
        problem = problem_of(exc)
        with ctx.factory() as session:
            portal = lookup.portal(session, code)
            page = _portal_page(request, ctx, session, user, portal, FormState(_portal_values(portal), problem))
        page.status_code = refused_status(problem)
        return page
    return back("/admin/portals", ok=f"portal {code} retired")


# ---------------------------------------------------------------------------------------------- devices


@dataclass(frozen=True, slots=True)
class SettingInput:
    """One typed setting as a form field: its description and the value to show."""

    spec: SettingField
    value: Any

    @property
    def input_name(self) -> str:
        return f"setting.{self.spec.name}"


def setting_inputs(kind: str, values: dict[str, Any]) -> list[SettingInput]:
    return [SettingInput(f, values.get(f.name, f.default)) for f in device_kinds.setting_fields(kind)]


def settings_from_form(kind: str, form: FormData) -> dict[str, object]:
    """The settings a device form gives: each field of the kind, left out where it is the default (so a site
    follows the kind's defaults), parsed and checked by `admin_api.checked_settings` afterwards."""
    given: dict[str, object] = {}
    for spec in device_kinds.setting_fields(kind):
        raw = form.get(f"setting.{spec.name}")
        if spec.type == "bool":
            ticked = raw is not None and raw in ("on", "true", "1")
            if ticked != spec.default:
                given[spec.name] = ticked
        elif isinstance(raw, str) and raw.strip() and raw.strip() != str(spec.default):
            given[spec.name] = raw.strip()
    return given


def antennas_from_form(form: FormData) -> list[schemas.AntennaCreate]:
    found = []
    for key in form:
        if key.startswith("antenna.") and key.removeprefix("antenna.").isdigit():
            side = form.get(key)
            if isinstance(side, str) and side:
                found.append(schemas.AntennaCreate(number=int(key.removeprefix("antenna.")), side=side))  # type: ignore[arg-type]
    return sorted(found, key=lambda a: a.number)


def _device_form_values(d: Device) -> dict[str, Any]:
    shown = admin_api.views.device(d)
    return {
        "name": d.name,
        "kind": d.kind,
        "portal": shown.portal or "",
        "venue": shown.venue or "",
        "settings": shown.settings,
        "antennas": {a.number: a.side for a in shown.antennas},
    }


def _typed_device(form: FormData, kind: str, name: str) -> dict[str, Any]:
    antennas = {}
    for key in form:
        if key.startswith("antenna."):
            value = form.get(key)
            antennas[key.removeprefix("antenna.")] = value if isinstance(value, str) else ""
    settings = {}
    for spec in device_kinds.setting_fields(kind):
        raw = form.get(f"setting.{spec.name}")
        settings[spec.name] = (raw is not None) if spec.type == "bool" else (raw if isinstance(raw, str) else "")
    return {
        "name": name,
        "kind": kind,
        "portal": str(form.get("portal") or ""),
        "venue": str(form.get("venue") or ""),
        "settings": settings,
        "antennas": {int(k): v for k, v in antennas.items() if k.isdigit()},
    }


def _device_page(
    request: Request,
    ctx: Any,
    session: Session,
    user: Principal,
    kind: str,
    state: FormState,
    device: Device | None = None,
    probe: DeviceProbe | None = None,
) -> HTMLResponse:
    described = device_kinds.KINDS[kind]
    try:
        settings = setting_inputs(kind, state.value("settings", {}))
    except BridgeError as exc:  # the kind's library is not installed here: say so instead of a form
        settings, state.problem = [], state.problem or Problem("kind", str(exc))
    antennas = state.value("antennas", {})
    rows = max(ANTENNA_ROWS, *antennas) if antennas else ANTENNA_ROWS
    live = live_devices(ctx)
    return render(
        request,
        "admin_device.html",
        user,
        device=device,
        kind=described,
        form=state,
        settings=settings,
        antenna_rows=range(1, rows + 1) if described.role in (Role.PORTAL_READER, Role.HANDHELD) else range(0),
        portal_codes=list(session.execute(select(Portal.code).order_by(Portal.code)).scalars()),
        venue_codes=list(session.execute(select(Venue.code).order_by(Venue.code)).scalars()),
        live=live.get(device.name) if device is not None else None,
        probe=probe,
    )


def _kind_or_404(kind: str) -> str:
    if kind not in device_kinds.KINDS:
        raise NotFound("device kind", kind)
    return kind


@router.get("/admin/devices")
def devices_page(
    request: Request,
    ctx: ContextDep,
    user: Administrator,
    q: Annotated[str, Query(max_length=100)] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    with ctx.factory() as session:
        rows = admin_api.find_devices(session, admin_api.DeviceFilter(q, kind))
        return render(
            request,
            "admin_devices.html",
            user,
            rows=rows,
            q=q,
            kind=kind,
            kinds=device_kinds.KINDS,
            live=live_devices(ctx),
        )


@router.get("/admin/devices/new")
def device_new_page(
    request: Request,
    ctx: ContextDep,
    user: Administrator,
    kind: Annotated[str, Query(max_length=32)],
    portal: Annotated[str, Query(max_length=64)] = "",
    venue: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    _kind_or_404(kind)
    with ctx.factory() as session:
        values = {"kind": kind, "portal": portal, "venue": venue, "name": f"{portal or venue}-{kind}".strip("-")}
        return _device_page(request, ctx, session, user, kind, FormState(values))


@router.post("/admin/devices")
async def device_create(request: Request, ctx: ContextDep, user: Administrator) -> Response:
    form = await request.form()
    kind = _kind_or_404(str(form.get("kind") or ""))
    name = str(form.get("name") or "")
    try:
        body = schemas.DeviceCreate(
            name=name,
            kind=kind,
            portal=str(form.get("portal") or "") or None,
            venue=str(form.get("venue") or "") or None,
            settings=settings_from_form(kind, form),  # type: ignore[arg-type]
            antennas=antennas_from_form(form),
        )
        with transaction(ctx.factory) as session:
            venues.create_device(session, user.username, admin_api.device_data(body.name, kind, body))
    except FORM_ERRORS as exc:
        problem = problem_of(exc)
        with ctx.factory() as session:
            page = _device_page(request, ctx, session, user, kind, FormState(_typed_device(form, kind, name), problem))
        page.status_code = refused_status(problem)
        return page
    where = f"/admin/portals/{body.portal}" if body.portal else f"/admin/devices/{body.name}"
    return back(where, ok=f"device {body.name} added")


@router.get("/admin/devices/{name}")
def device_page(request: Request, name: str, ctx: ContextDep, user: Administrator) -> Response:
    with ctx.factory() as session:
        device = lookup.device(session, name)
        return _device_page(request, ctx, session, user, device.kind, FormState(_device_form_values(device)), device)


@router.post("/admin/devices/{name}")
async def device_update(request: Request, name: str, ctx: ContextDep, user: Administrator) -> Response:
    form = await request.form()
    with ctx.factory() as session:
        kind = lookup.device(session, name).kind
    try:
        body = schemas.DeviceChange(
            portal=str(form.get("portal") or "") or None,
            venue=str(form.get("venue") or "") or None,
            settings=settings_from_form(kind, form),  # type: ignore[arg-type]
            antennas=antennas_from_form(form),
        )
        with transaction(ctx.factory) as session:
            changed = venues.update_device(
                session, user.username, lookup.device(session, name), admin_api.device_data(name, kind, body)
            )
    except FORM_ERRORS as exc:
        problem = problem_of(exc)
        with ctx.factory() as session:
            device = lookup.device(session, name)
            state = FormState(_typed_device(form, kind, name), problem)
            page = _device_page(request, ctx, session, user, kind, state, device)
        page.status_code = refused_status(problem)
        return page
    return back(f"/admin/devices/{name}", ok=f"device {name} saved" if changed else "nothing to change")


@router.post("/admin/devices/{name}/probe")
def device_probe(request: Request, name: str, ctx: ContextDep, user: Administrator) -> Response:
    """Ask the device through the running site what it is and how it is; the answer is shown on its page."""
    with ctx.factory() as session:
        device = lookup.device(session, name)
        if ctx.control is None:
            probe = DeviceProbe(name, device.kind, "unknown", "", "no running site is connected to this server")
        else:
            try:
                probe = ctx.control.probe(name)
            except KeyError:
                probe = DeviceProbe(name, device.kind, "unknown", "", "not open on the running site yet")
        state = FormState(_device_form_values(device))
        return _device_page(request, ctx, session, user, device.kind, state, device, probe)


@router.post("/admin/devices/{name}/retire")
def device_retire(name: str, ctx: ContextDep, user: Administrator) -> Response:
    with transaction(ctx.factory) as session:
        device = lookup.device(session, name)
        portal = device.portal.code if device.portal else None
        venues.retire_device(session, user.username, device)
    return back(f"/admin/portals/{portal}" if portal else "/admin/devices", ok=f"device {name} retired")


# ---------------------------------------------------------------------------------------------- people


def _person_values(p: Person) -> dict[str, Any]:
    return {
        "name": p.name,
        "clearance": Level(p.clearance).label,
        "roles": sorted(p.role_names),
        "badges": ", ".join(b.number for b in p.badges),
        "groups": ", ".join(sorted(g.name for g in p.groups)),
        "visitor": p.visitor,
        "title": p.title,
        "organisation": p.organisation,
    }


@router.get("/admin/people")
def people_page(
    request: Request,
    ctx: ContextDep,
    user: Administrator,
    q: Annotated[str, Query(max_length=100)] = "",
    role: Annotated[str, Query(max_length=32)] = "",
    status_: Annotated[str, Query(alias="status", max_length=16)] = "",
) -> Response:
    with ctx.factory() as session:
        rows = admin_api.find_people(session, admin_api.PersonFilter(q, role, status_))
        return render(
            request,
            "admin_people.html",
            user,
            rows=rows,
            q=q,
            role=role,
            status=status_,
            roles=ROLES,
            statuses=PERSON_STATUSES,
        )


def _person_page(
    request: Request,
    session: Session,
    user: Principal,
    person: Person,
    state: FormState,
    departure_problem: Problem | None = None,
) -> HTMLResponse:
    return render(
        request,
        "admin_person.html",
        user,
        person=person,
        form=state,
        levels=LEVELS,
        roles=ROLES,
        held=departure_checklist(session, person),
        departure_problem=departure_problem,
    )


@router.get("/admin/people/{username}")
def person_page(request: Request, username: str, ctx: ContextDep, user: Administrator) -> Response:
    with ctx.factory() as session:
        person = lookup.person(session, username)
        return _person_page(request, session, user, person, FormState(_person_values(person)))


async def _person_action(request: Request, ctx: Any, user: Principal, username: str, action: str) -> Response:
    form = await request.form()
    try:
        with transaction(ctx.factory) as session:
            person = lookup.person(session, username)
            if action == "update":
                body = read_form(schemas.PersonChange, form)
                done = people.update(session, user.username, person, admin_api.person_data(username, body))
                message = f"{username} saved" if done else "nothing to change"
            elif action == "departure":
                held = people.begin_departure(session, user.username, person)
                message = f"{username} is departing: {len(held)} item(s) to return before sign-off"
            else:
                raw = str(form.get("separation_until") or "")
                until = dt.date.fromisoformat(raw) if raw else None
                people.sign_off(session, user.username, person, until)
                ctx.auth.end_sessions_of(session, username)
                message = f"{username} signed off; badges revoked"
    except NotFound as exc:
        if exc.kind == "person" and exc.key == username:
            raise
        problem = problem_of(exc)
    except FORM_ERRORS as exc:
        problem = problem_of(exc)
    else:
        return back(f"/admin/people/{username}", ok=message)
    with ctx.factory() as session:
        person = lookup.person(session, username)
        if action == "update":
            state = FormState({"roles": [], **typed(form)}, problem)
            page = _person_page(request, session, user, person, state)
        else:
            page = _person_page(request, session, user, person, FormState(_person_values(person)), problem)
    page.status_code = refused_status(problem)
    return page


@router.post("/admin/people/{username}")
async def person_update(request: Request, username: str, ctx: ContextDep, user: Administrator) -> Response:
    return await _person_action(request, ctx, user, username, "update")


@router.post("/admin/people/{username}/departure")
async def person_departure(request: Request, username: str, ctx: ContextDep, user: Administrator) -> Response:
    return await _person_action(request, ctx, user, username, "departure")


@router.post("/admin/people/{username}/sign-off")
async def person_sign_off(request: Request, username: str, ctx: ContextDep, user: Administrator) -> Response:
    return await _person_action(request, ctx, user, username, "sign-off")


# ---------------------------------------------------------------------------------------------- items


@router.get("/admin/items")
def items_page(
    request: Request,
    ctx: ContextDep,
    user: Administrator,
    q: Annotated[str, Query(max_length=100)] = "",
    level: Annotated[str, Query(pattern="^(|unclassified|internal|confidential|secret|top_secret)$")] = "",
    status_: Annotated[str, Query(alias="status", max_length=20)] = "",
    venue: Annotated[str, Query(max_length=64)] = "",
    label: Annotated[str, Query(pattern="^(|out_of_date|current)$")] = "",
) -> Response:
    stale = {"out_of_date": True, "current": False}.get(label)
    with ctx.factory() as session:
        rows = admin_api.find_items(session, admin_api.ItemFilter(q, level, status_, venue, "", stale))
        return render(
            request,
            "admin_items.html",
            user,
            rows=rows,
            q=q,
            level=level,
            status=status_,
            venue=venue,
            label=label,
            levels=LEVELS,
            statuses=ITEM_STATUSES,
            venue_codes=list(session.execute(select(Venue.code).order_by(Venue.code)).scalars()),
        )


def _item_page(
    request: Request, session: Session, user: Principal, item: Item, problem: Problem | None = None
) -> HTMLResponse:
    return render(
        request,
        "admin_item.html",
        user,
        item=item,
        level=Level(item.effective_level).label,
        period=SecrecyPeriod.of(item).describe(),
        problem=problem,
        venue_codes=list(session.execute(select(Venue.code).order_by(Venue.code)).scalars()),
        usernames=list(
            session.execute(
                select(Person.username).where(Person.status == "active").order_by(Person.username)
            ).scalars()
        ),
        can_check="administrator" in user.roles,
    )


@router.get("/admin/items/{item_id}")
def item_page(request: Request, item_id: schemas.RowId, ctx: ContextDep, user: Administrator) -> Response:
    with ctx.factory() as session:
        return _item_page(request, session, user, lookup.item(session, item_id))


@router.post("/admin/items/{item_id}/place")
def item_place(
    request: Request,
    item_id: schemas.RowId,
    ctx: ContextDep,
    user: Administrator,
    venue: Annotated[str, Form(max_length=64)] = "",
    custodian: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Where the item is kept and who answers for it, through the register's rules (ceiling, clearance)."""
    try:
        with transaction(ctx.factory) as session:
            item = lookup.item(session, item_id)
            if venue and (item.venue is None or item.venue.code != venue):
                item_service.place(session, user.username, item, venue)
            held_by = item.custodian.username if item.custodian else ""
            if custodian != held_by:
                item_service.hand_to(session, user.username, item, custodian or None)
    except RegistryError as exc:
        if isinstance(exc, NotFound) and exc.kind == "item":
            raise
        problem = problem_of(exc)
        with ctx.factory() as session:
            page = _item_page(request, session, user, lookup.item(session, item_id), problem)
        page.status_code = refused_status(problem)
        return page
    return back(f"/admin/items/{item_id}", ok="item saved")


@router.post("/admin/items/{item_id}/label-check")
@accepts_images
async def item_label_check(request: Request, item_id: schemas.RowId, ctx: ContextDep, user: Administrator) -> Response:
    """Art. 21: a photo of the printed label; "label out of date" is cleared only if it agrees with the register
    (the same read-back as `POST /api/records/items/{id}/label-check`)."""
    form = await request.form()
    photo = form.get("image")
    problem: Problem | None = None
    if not isinstance(photo, UploadFile):
        problem = Problem("image", "image: choose or take a photo of the label")
    else:
        data = await photo.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            problem = Problem("image", f"image: a label photo is at most {MAX_IMAGE_BYTES} bytes")
        else:
            reading = decode_label(data)
            try:
                with transaction(ctx.factory) as session:
                    outcome = item_service.verify_label(session, user.username, lookup.item(session, item_id), reading)
            except RuleViolation as exc:
                problem = problem_of(exc)
            else:
                if outcome.refusal is not None:
                    problem = problem_of(outcome.refusal)
    if problem is None:
        return back(f"/admin/items/{item_id}", ok="the label agrees with the register: label out of date cleared")
    with ctx.factory() as session:
        page = _item_page(request, session, user, lookup.item(session, item_id), problem)
    page.status_code = refused_status(problem)
    return page


# ---------------------------------------------------------------------------------------------- approvals


def _decision_blocker(approval: Approval, user: Principal) -> str:
    """Why this user may not approve this request ("" when they may)."""
    if "approver" not in user.roles or approval.state != "requested":
        return "not for you to decide"
    if approval.requester.username == user.username:
        return "you requested it (rule approval.self_approval)"
    if covers(approval, user.username):
        return "you are named on it (rule approval.approver_named)"
    return ""


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    approval: Approval
    blocker: str  # "" when the signed-in approver may approve it


def _approvals(session: Session, user: Principal, state: str, kind: str, q: str) -> list[ApprovalRow]:
    found = find_approvals(session, user, state=state, kind=kind, q=q)
    return [ApprovalRow(a, _decision_blocker(a, user)) for a in found]


@router.get("/approvals")
def approvals_page(
    request: Request,
    ctx: ContextDep,
    user: ApprovalReader,
    q: Annotated[str, Query(max_length=100)] = "",
    state: Annotated[str, Query(max_length=16)] = "",
    kind: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    with ctx.factory() as session:
        rows = _approvals(session, user, state, kind, q)
        return render(
            request,
            "approvals.html",
            user,
            rows=rows,
            q=q,
            state=state,
            kind=kind,
            states=APPROVAL_STATES,
            kinds=APPROVAL_KINDS,
            can_request=bool(user.roles & REQUESTING),
        )


@router.post("/approvals")
async def request_page(request: Request, ctx: ContextDep, user: Requester) -> Response:
    form = await request.form()
    try:
        data = request_from(read_form(schemas.ApprovalCreate, form))
        with transaction(ctx.factory) as session:
            approvals.request(session, user.username, data)
    except FORM_ERRORS as exc:
        return back("/approvals", error=problem_of(exc).message)
    return back("/approvals", ok=f"approval {data.ref} requested")


@router.get("/approvals/{ref}")
def approval_page(request: Request, ref: str, ctx: ContextDep, user: ApprovalReader) -> Response:
    """The whole request as the approver decides on it: reason, items (titles, levels, where they are), the
    people and groups named, the window, the portal or destination, the uses."""
    with ctx.factory() as session:
        approval = session.execute(select(Approval).where(Approval.ref == ref)).scalar()
        if approval is None or not visible(approval, user):
            # Whoever may not see other people's approvals cannot tell a missing one from a hidden one.
            page = render(request, "approval.html", user, approval=None, ref=ref)
            page.status_code = status.HTTP_404_NOT_FOUND
            return page
        return render(
            request,
            "approval.html",
            user,
            approval=approval,
            ref=ref,
            levels={i.id: Level(i.effective_level).label for i in approval.items},
            people_levels={p.id: Level(p.clearance).label for p in approval.people},
            blocker=_decision_blocker(approval, user),
            can_refuse="approver" in user.roles
            and approval.state == "requested"
            and approval.requester.username != user.username,
        )


@router.post("/approvals/{ref}/decide")
def decide_page(
    ref: str,
    ctx: ContextDep,
    user: Approver,
    decision: Annotated[str, Form(pattern="^(approve|refuse)$")],
    note: Annotated[str, Form(max_length=2000)] = "",
    back_to: Annotated[str, Form(pattern="^(list|detail)$")] = "list",
) -> Response:
    where = f"/approvals/{ref}" if back_to == "detail" else "/approvals"
    try:
        with transaction(ctx.factory) as session:
            approval = lookup.approval(session, ref)
            if decision == "approve":
                approvals.approve(session, user.username, approval, note)
            else:
                approvals.refuse(session, user.username, approval, note)
    except RegistryError as exc:
        return back(where, error=problem_of(exc).message)
    return back(where, ok=f"approval {ref} {decision}d")

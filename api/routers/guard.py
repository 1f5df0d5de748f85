"""Guard station: the live feed (SSE, with history replay), the site's alarm book (acknowledge, resolve,
operating steps), overrides with the guard's own password, door and device states. Commands go to the
running site through `SiteControl`; the API never opens a device. Errors the site gives (unknown alarm,
no fresh block, a refused override) are translated to HTTP in api/errors.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, StreamingResponse

from api import schemas, sse
from api.auth import client_address
from api.context import AppContext
from api.deps import Administrator, ContextDep, Guard, SiteWatcher
from controllers.alarms import KINDS, AlarmView
from controllers.control import BlockState, OverrideOutcome, PasswordRefused
from registry import journal
from registry.db import transaction
from tracking.vocabulary import ALARMS, reason_sentence

router = APIRouter(tags=["guard station"])

@router.get("/api/live", response_class=StreamingResponse, responses=sse.RESPONSES)
async def live(request: Request, ctx: ContextDep, _user: SiteWatcher, after: int = 0) -> StreamingResponse:
    """Decisions, alarms, door states and device health as server-sent events; replays history after `after`
    (or the browser's Last-Event-ID on reconnect)."""
    return sse.stream(request, ctx.require_bus(), after)


# ---- the alarm book ----
def site_time(ctx: AppContext, time_us: int | None) -> dt.datetime | None:
    """A site timestamp as an aware datetime in the site's time zone."""
    if time_us is None:
        return None
    return dt.datetime.fromtimestamp(time_us / 1_000_000, ZoneInfo(ctx.settings.time_zone))


def reasons_public(reasons: tuple[str, ...]) -> list[schemas.ReasonPublic]:
    return [schemas.ReasonPublic(id=r, sentence=reason_sentence(r)) for r in reasons]


def alarm_public(ctx: AppContext, alarm: AlarmView, procedure: tuple[str, ...] | None = None) -> schemas.AlarmPublic:
    """`procedure`: the steps to show (default: the connected site's for the alarm's kind)."""
    ev = alarm.evidence
    return schemas.AlarmPublic(
        id=alarm.alarm_id, kind=alarm.kind, sentence=alarm.sentence, category=alarm.category.value,
        severity=alarm.severity.value, source=alarm.source, venue=alarm.venue,
        raised_at=site_time(ctx, alarm.time_us), last_at=site_time(ctx, alarm.last_us),  # type: ignore[arg-type]
        repeats=alarm.repeats, person=ev.person, badge=ev.badge, items=list(ev.items),
        reasons=reasons_public(ev.reasons), detail=ev.detail, has_frame=bool(alarm.frame_ref), state=alarm.state,  # type: ignore[arg-type]
        escalated_at=site_time(ctx, alarm.escalated_us), acknowledged_by=alarm.acknowledged_by,
        acknowledged_at=site_time(ctx, alarm.acknowledged_us), acknowledge_note=alarm.acknowledge_note,
        resolved_by=alarm.resolved_by, resolved_at=site_time(ctx, alarm.resolved_us), resolve_note=alarm.resolve_note,
        procedure=list(procedure if procedure is not None else ctx.require_control().procedure(alarm.kind)),
    )


@router.get("/api/guard/alarms")
def alarms(ctx: ContextDep, _user: SiteWatcher, resolved: bool = False) -> schemas.AlarmBookPublic:
    """The alarm book: open and acknowledged alarms (and, with `resolved`, those resolved since the site started)."""
    found = [alarm_public(ctx, a) for a in ctx.require_control().alarms(resolved=resolved)]
    return schemas.AlarmBookPublic(
        time_zone=ctx.settings.time_zone,
        security=[a for a in found if a.category == "security"],
        technical=[a for a in found if a.category == "technical"],
    )


@router.post("/api/guard/alarms/{alarm_id}/ack")
def acknowledge(
    alarm_id: schemas.RowId, ctx: ContextDep, user: Guard, body: schemas.AlarmNote | None = None
) -> schemas.AlarmPublic:
    """Acknowledge an open alarm (404 for an alarm the book does not hold, 409 once it was acknowledged)."""
    alarm = ctx.require_control().acknowledge(alarm_id, user.username, body.note.strip() if body else "")
    return alarm_public(ctx, alarm)


@router.post("/api/guard/alarms/{alarm_id}/resolve")
def resolve(alarm_id: schemas.RowId, body: schemas.AlarmResolve, ctx: ContextDep, user: Guard) -> schemas.AlarmPublic:
    """Close an acknowledged alarm with a note saying what was done."""
    return alarm_public(ctx, ctx.require_control().resolve(alarm_id, user.username, body.note))


@router.get("/api/guard/alarms/{alarm_id}/frame.png", response_class=FileResponse)
def alarm_frame(alarm_id: schemas.RowId, ctx: ContextDep, _user: SiteWatcher) -> FileResponse:
    path = ctx.require_control().alarm_frame(alarm_id)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alarm {alarm_id} has no camera frame")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/guard/procedures")
def procedures(ctx: ContextDep, _user: SiteWatcher) -> dict[str, list[str]]:
    """The standard operating steps for every alarm kind (the site's own where set, else the defaults)."""
    control = ctx.require_control()
    return {kind: list(control.procedure(kind)) for kind in sorted(set(KINDS) | set(ALARMS))}


@router.put("/api/guard/procedures/{kind}")
def set_procedure(kind: str, body: schemas.ProcedureUpdate, ctx: ContextDep, user: Administrator) -> list[str]:
    """Replace the site's steps for an alarm kind (an empty list goes back to the default); journalled."""
    if kind not in KINDS and kind not in ALARMS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no alarm kind {kind}")
    return list(ctx.require_control().set_procedure(kind, list(body.steps), user.username))


# ---- doors ----
@router.post("/api/guard/portals/{portal}/override")
def override(
    portal: str, body: schemas.OverrideCreate, request: Request, ctx: ContextDep, user: Guard
) -> schemas.OverridePublic:
    """Let the current, fresh block at a door through, on the guard's own password (entered now) and a written
    reason. The engine decides it; it is journalled with the guard and the blocked person and opens an incident.
    404 unknown door; 409 no fresh block, or refused (top secret at a border, the guard's own block); 403 a wrong
    password (counted like a refused sign-in); 503 while the register cannot check the password."""
    control = ctx.require_control()
    outcome = with_password_throttle(
        ctx, request, user.username, f"portal:{portal}",
        lambda: control.override(portal, user.username, body.password, body.reason, alarm_id=body.alarm),
    )
    return override_public(ctx, outcome)


def with_password_throttle(
    ctx: AppContext, request: Request, username: str, subject: str, override: Callable[[], OverrideOutcome]
) -> OverrideOutcome:
    """An override on the guard's password, counted like a sign-in: refused while throttled, and a wrong
    password is a failure of the throttle and a journal entry."""
    address = client_address(request)
    with ctx.factory() as session:
        ctx.auth.throttle.check(session, username, address)
    try:
        return override()
    except PasswordRefused:
        with transaction(ctx.factory) as session:
            ctx.auth.throttle.failed(session, username, address)
            journal.append(session, username, "exit.override_password_refused", subject, {})
        raise


def override_public(ctx: AppContext, outcome: OverrideOutcome) -> schemas.OverridePublic:
    return schemas.OverridePublic(
        portal=outcome.portal, guard=outcome.guard, person=outcome.person, items=list(outcome.items),
        overridden=reasons_public(outcome.overridden), at=site_time(ctx, outcome.time_us),  # type: ignore[arg-type]
    )


def block_public(ctx: AppContext, block: BlockState | None) -> schemas.BlockPublic | None:
    if block is None:
        return None
    return schemas.BlockPublic(
        alarm_id=block.alarm_id, person=block.person, direction=block.direction,  # type: ignore[arg-type]
        items=list(block.items), reasons=reasons_public(block.reasons), kept_shut=list(block.kept_shut),
        at=site_time(ctx, block.time_us), fresh_until=site_time(ctx, block.fresh_until_us),  # type: ignore[arg-type]
    )


@router.get("/api/guard/doors")
def doors(ctx: ContextDep, _user: SiteWatcher) -> list[schemas.DoorPublic]:
    """Every equipped door: lock, contact, links, and the block a guard may override while it is fresh."""
    return [
        schemas.DoorPublic(
            portal=d.portal, locked=d.locked, open=d.open, released_by_fire_alarm=d.released_by_fire_alarm,
            panel_online=d.panel_online, readers_online=d.readers_online, block=block_public(ctx, d.block),
            links=d.links,  # type: ignore[arg-type]
        )
        for d in ctx.require_control().doors()
    ]


@router.get("/api/guard/devices")
def devices(ctx: ContextDep, _user: SiteWatcher) -> list[schemas.DevicePublicHealth]:
    return [schemas.DevicePublicHealth.model_validate(d, from_attributes=True) for d in ctx.require_control().devices()]

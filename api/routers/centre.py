"""The centre's guard stations: every site's alarm book (ids qualified by the site), acknowledgements and
resolutions sent to the site that owns the alarm, overrides decided by that site's edge over a live path (503
with the reason when there is none: nothing is queued). Served only by `custodian centre` (503 elsewhere)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api import schemas
from api.context import AppContext
from api.deps import ContextDep, Guard, SiteWatcher
from api.routers.guard import alarm_public, override_public, with_password_throttle
from controllers.control import SiteAlarm

router = APIRouter(tags=["centre guard station"])


def site_alarm_public(ctx: AppContext, found: SiteAlarm) -> schemas.SiteAlarmPublic:
    shown = alarm_public(ctx, found.alarm, ctx.require_desk().procedure(found.alarm.kind))
    return schemas.SiteAlarmPublic(**shown.model_dump(), site=found.site, ack_sent_by=found.ack_sent_by,
                                   resolve_sent_by=found.resolve_sent_by, refused=found.refused)


@router.get("/api/centre/alarms")
def alarms(ctx: ContextDep, _user: SiteWatcher, resolved: bool = False) -> list[schemas.SiteAlarmPublic]:
    """Every site's open and acknowledged alarms, newest first (with `resolved`, the latest resolved too)."""
    return [site_alarm_public(ctx, a) for a in ctx.require_desk().alarms(resolved=resolved)]


@router.post("/api/centre/sites/{site}/alarms/{alarm_id}/ack")
def acknowledge(
    site: str, alarm_id: schemas.RowId, ctx: ContextDep, user: Guard, body: schemas.AlarmNote | None = None
) -> schemas.SiteAlarmPublic:
    """Acknowledge a site's open alarm: sent to the site (never lost), answered once the site confirmed it or
    after a few seconds with `ack_sent_by` set. 404 unknown alarm, 409 no longer open."""
    found = ctx.require_desk().acknowledge(site, alarm_id, user.username, body.note.strip() if body else "")
    return site_alarm_public(ctx, found)


@router.post("/api/centre/sites/{site}/alarms/{alarm_id}/resolve")
def resolve(
    site: str, alarm_id: schemas.RowId, body: schemas.AlarmResolve, ctx: ContextDep, user: Guard
) -> schemas.SiteAlarmPublic:
    """Resolve a site's acknowledged alarm with a note saying what was done: sent to the site like an
    acknowledgement (`resolve_sent_by` set until the site confirmed it). 404 unknown alarm, 409 open or resolved."""
    return site_alarm_public(ctx, ctx.require_desk().resolve(site, alarm_id, user.username, body.note))


@router.post("/api/centre/sites/{site}/portals/{portal}/override")
def override(
    site: str, portal: str, body: schemas.OverrideCreate, request: Request, ctx: ContextDep, user: Guard
) -> schemas.OverridePublic:
    """As the site's own override, decided by its edge (password checked there, its engine takes it for the
    fresh block); 503 when the centre has no live path to the edge."""
    desk = ctx.require_desk()
    outcome = with_password_throttle(
        ctx, request, user.username, f"portal:{site}/{portal}",
        lambda: desk.override(site, portal, user.username, body.password, body.reason, alarm_id=body.alarm),
    )
    return override_public(ctx, outcome)

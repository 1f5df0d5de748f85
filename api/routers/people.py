"""People in venues: the fire muster list (and its journaled export), a guard's anti-passback forgive, and a
meeting's report. The muster list is read from the register: the places the site's recorder keeps from the
engine's badge decisions, and the items last known in each venue."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import schemas
from api.deps import AdminReader, ContextDep, Guard, SiteWatcher
from api.pages import render
from registry.db import transaction
from registry.models import JournalEntry
from registry.services import lookup, presence

router = APIRouter(tags=["people in venues"])
FIRE_ACTIONS = ("site.fire_release", "site.fire_relock")


def _fire_release(session: Session) -> bool:
    latest = session.execute(
        select(JournalEntry.action).where(JournalEntry.action.in_(FIRE_ACTIONS)).order_by(JournalEntry.seq.desc())
        .limit(1)
    ).scalar()
    return latest == "site.fire_release"


def _public(found: presence.Muster, fire: bool) -> schemas.MusterPublic:
    return schemas.MusterPublic(
        at=found.at,
        fire_release=fire,
        venues=[
            schemas.MusterVenuePublic(
                venue=v.code,
                name=v.name,
                people=[schemas.MusterPersonPublic(username=p.username, name=p.name, visitor=p.visitor, since=p.since,
                                                   uncertain=p.uncertain) for p in v.people],
                items=[schemas.MusterItemPublic(item=i.item, title=i.title, level=schemas.level_name(i.level))
                       for i in v.items],
            )
            for v in found.venues
        ],
    )


@router.get("/api/guard/muster")
def muster(ctx: ContextDep, _user: SiteWatcher) -> schemas.MusterPublic:
    """Per venue, the people and items last known inside (during a fire release: who may still be in)."""
    with ctx.factory() as session:
        return _public(presence.muster(session), _fire_release(session))


@router.post("/api/guard/muster/export", status_code=status.HTTP_201_CREATED)
def export_muster(body: schemas.MusterExportCreate, ctx: ContextDep, user: Guard) -> schemas.MusterExportPublic:
    """The muster list as a journaled record (at the end of a fire release)."""
    with transaction(ctx.factory) as session:
        fire = _fire_release(session)
        found, seq = presence.export_muster(session, user.username, body.note)
        return schemas.MusterExportPublic(journal_seq=seq, muster=_public(found, fire))


@router.post("/api/guard/people/{username}/forgive", status_code=status.HTTP_204_NO_CONTENT)
def forgive(username: str, body: schemas.ForgiveCreate, ctx: ContextDep, user: Guard) -> None:
    """Forgive a person's anti-passback state on the guard's own credentials (journaled by the site)."""
    with ctx.factory() as session:
        lookup.person(session, username)  # 404 for nobody
    try:
        ctx.require_control().forgive(username, user.username, body.reason)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the site does not know {username}") from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/api/admin/meetings/{meeting_id}/report")
def meeting_report(meeting_id: schemas.RowId, ctx: ContextDep, _user: AdminReader) -> schemas.MeetingReportPublic:
    """Art. 45: a meeting's participants and the items brought into and out of it."""
    with ctx.factory() as session:
        report = presence.meeting_report(session, meeting_id)
    return schemas.MeetingReportPublic(
        id=report.meeting_id, title=report.title, venue=report.venue, level=schemas.level_name(report.level),
        starts_at=report.starts_at, ends_at=report.ends_at, participants=list(report.participants),
        items=[schemas.MeetingItemPublic(item=i.item, title=i.title, level=schemas.level_name(i.level),
                                         person=i.person, direction=i.direction, at=i.at, portal=i.portal)
               for i in report.items],
    )


@router.get("/guard/muster", include_in_schema=False)
def muster_page(request: Request, ctx: ContextDep, user: SiteWatcher) -> Response:
    with ctx.factory() as session:
        found = _public(presence.muster(session), _fire_release(session))
    return render(request, "guard_muster.html", user, muster=found, can_act="guard" in user.roles)

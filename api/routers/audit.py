"""Auditor: journal verification and browsing with the head hash and the anchors' verdict, an item's custody
trail, inventory sweeps and their results, incidents with their clock and evidence packages, the annual
report (page and PDF), and movements and destructions as GS1 EPCIS 2.0. Also the auditor's pages."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, epcis, schemas, views
from api.deps import Auditor, ContextDep, MovementExporter
from api.pages import render
from firmware_bridge import kinds
from registry import anchors, journal
from registry.db import transaction
from registry.errors import InvalidInput, NotFound, RuleViolation
from registry.models import Device, Incident, InventoryCount, Venue
from registry.services import incidents

router = APIRouter(prefix="/api/audit", tags=["auditor"])
pages_router = APIRouter(include_in_schema=False)


class JournalRowPublic(schemas.JournalEntryPublic):
    prev_hash: str
    hash: str


class JournalPagePublic(BaseModel):
    entries: list[JournalRowPublic]
    matched: int  # entries matching the filter, on every page
    next_before: int | None  # pass as `before` for the next (older) page; None on the last


class AnchorStatusPublic(BaseModel):
    """The journal's head now, and whether the anchors written outside the database still agree with it."""

    head_seq: int
    head_hash: str
    head_at: str | None
    state: str  # anchored | not_anchored | broken | not_configured
    anchors: int
    newest_seq: int | None
    newest_hash: str | None
    newest_taken_at: str | None
    problem: str
    folder: str | None


class SweepCreate(schemas.Strict):
    venue: schemas.Ref


class SweepPublic(BaseModel):
    venue: str
    clean: bool
    present: list[str]
    missing: list[str]
    elsewhere: list[str]
    unregistered: list[str]
    destroyed_seen: list[str]


def _aware(name: str, value: dt.datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(name, "give a time with its UTC offset")


@router.get("/journal/entries")
def journal_entries(
    ctx: ContextDep,
    _user: Auditor,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JournalPagePublic:
    """The journal newest first: actor exactly, action by prefix, subject by substring, time in [since, until)."""
    _aware("since", since)
    _aware("until", until)
    with ctx.factory() as session:
        rows, next_before, matched = audit.journal_page(
            session, actor=actor, action=action, subject=subject, since=since, until=until, before=before, limit=limit
        )
        entries = [
            JournalRowPublic(**views.journal_entry(e).model_dump(), prev_hash=e.prev_hash, hash=e.hash) for e in rows
        ]
    return JournalPagePublic(entries=entries, matched=matched, next_before=next_before)


@router.get("/anchors")
def anchor_status(ctx: ContextDep, _user: Auditor) -> AnchorStatusPublic:
    folder = ctx.settings.anchors_dir
    with ctx.factory() as session:
        found = anchors.status(session, folder)
    newest = found.newest
    return AnchorStatusPublic(
        head_seq=found.head.seq,
        head_hash=found.head.hash,
        head_at=found.head.at,
        state=found.state if folder is not None else "not_configured",
        anchors=found.anchors,
        newest_seq=newest.seq if newest else None,
        newest_hash=newest.hash if newest else None,
        newest_taken_at=newest.taken_at if newest else None,
        problem=found.problem if folder is not None else "this site writes no anchors (no anchor folder is set)",
        folder=str(folder) if folder is not None else None,
    )


@router.get("/journal")
def verify_journal(ctx: ContextDep, _user: Auditor) -> schemas.JournalStatusPublic:
    with ctx.factory() as session:
        result = journal.verify(session)
    return schemas.JournalStatusPublic(
        ok=result.ok,
        entries=result.entries,
        first_bad_seq=result.first_bad_seq,
        problem=result.problem,
        head_hash=result.head_hash,
    )


@router.get("/items/{key}/trail")
def item_trail(key: str, ctx: ContextDep, _user: Auditor) -> schemas.TrailPublic:
    """`key` is a register number, an EPC, or `register_number/copy`."""
    with ctx.factory() as session:
        return audit.trail(session, views.find_item(session, key))


@router.get("/inventory")
def inventory(ctx: ContextDep, _user: Auditor) -> list[schemas.InventoryPublic]:
    with ctx.factory() as session:
        rows = session.execute(select(InventoryCount, Venue.code).join(Venue).order_by(InventoryCount.at.desc())).all()
        return [
            schemas.InventoryPublic(
                id=c.id,
                venue=code,
                at=c.at,
                counted_by=c.counted_by,
                method=c.method,
                present=c.present,
                result=json.loads(c.result_json or "{}"),
            )
            for c, code in rows
        ]


def sweep_venues(session: Session) -> list[str]:
    """Venues with a handheld reader assigned: the ones a sweep can be started for."""
    rows = session.execute(select(Venue.code, Device.kind).join(Device, Device.venue_id == Venue.id)).all()
    return sorted({code for code, kind in rows if kinds.kind(kind).role is kinds.Role.HANDHELD})


@router.post("/inventory/sweep")
def start_sweep(body: SweepCreate, ctx: ContextDep, user: Auditor) -> SweepPublic:
    """Sweep a venue with its handheld reader now; the count and its discrepancies are recorded and journalled
    (a destroyed item seen opens an incident)."""
    with ctx.factory() as session:
        venue = session.execute(select(Venue).where(Venue.code == body.venue)).scalar()
        if venue is None:
            raise NotFound("venue", body.venue)
        if body.venue not in sweep_venues(session):
            raise RuleViolation("inventory.no_reader", f"no handheld reader is assigned to {body.venue}")
    try:
        result = ctx.require_control().sweep(body.venue, user.username)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return SweepPublic(
        venue=body.venue,
        clean=result.clean,
        present=list(result.present),
        missing=list(result.missing),
        elsewhere=list(result.elsewhere),
        unregistered=list(result.unregistered),
        destroyed_seen=list(result.destroyed_seen),
    )


def _incident(session: Session, incident_id: int) -> Incident:
    found = session.get(Incident, incident_id)
    if found is None:
        raise NotFound("incident", incident_id)
    return found


@router.get("/incidents")
def list_incidents(ctx: ContextDep, _user: Auditor) -> list[schemas.IncidentPublic]:
    with ctx.factory() as session:
        rows = session.execute(select(Incident).order_by(Incident.opened_at.desc())).scalars()
        return [audit.incident(i) for i in rows]


@router.post("/incidents/{incident_id}/actions", status_code=status.HTTP_201_CREATED)
def add_action(
    incident_id: schemas.RowId, body: schemas.IncidentActionCreate, ctx: ContextDep, user: Auditor
) -> schemas.IncidentPublic:
    with transaction(ctx.factory) as session:
        incident = _incident(session, incident_id)
        incidents.add_action(session, user.username, incident, body.text)
        return audit.incident(incident)


@router.post("/incidents/{incident_id}/reported")
def mark_reported(incident_id: schemas.RowId, ctx: ContextDep, user: Auditor) -> schemas.IncidentPublic:
    with transaction(ctx.factory) as session:
        return audit.incident(incidents.mark_reported(session, user.username, _incident(session, incident_id)))


@router.get(
    "/incidents/{incident_id}/evidence.zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def evidence(incident_id: schemas.RowId, ctx: ContextDep, user: Auditor) -> Response:
    with transaction(ctx.factory) as session:
        incident = _incident(session, incident_id)
        data = audit.evidence_package(session, incident, user.username)
        # Who took the evidence out, and which bytes, is itself part of the record.
        exported = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        journal.append(session, user.username, "incident.evidence_exported", f"incident:{incident_id}", exported)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}-evidence.zip"'},
    )


def _exported_report(
    ctx: ContextDep, user: str, start: dt.date, end: dt.date, fmt: str
) -> tuple[audit.AnnualReportPublic, bytes]:
    """The report and its bytes in `fmt` (json | pdf | html); who took it out, in which form, and the SHA-256
    of the bytes are journalled in the same transaction."""
    if end < start:
        raise InvalidInput("end", "the period ends before it starts")
    with transaction(ctx.factory) as session:
        report = audit.annual_report(session, start, end)
        body = (
            audit.report_pdf(report, ctx.settings.site_name, user)
            if fmt == "pdf"
            else report.model_dump_json().encode()
        )
        exported = {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "format": fmt,
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        journal.append(session, user, "audit.report_exported", f"report:{start}..{end}", exported)
    return report, body


@router.get("/report", response_model=audit.AnnualReportPublic)
def annual_report(start: dt.date, end: dt.date, ctx: ContextDep, user: Auditor) -> Response:
    """The annual report (Art. 56/58) for a period; who took it out, and the SHA-256 of the bytes, is journalled."""
    _report, body = _exported_report(ctx, user.username, start, end, "json")
    return Response(body, media_type="application/json")


@router.get("/report.pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def annual_report_pdf(start: dt.date, end: dt.date, ctx: ContextDep, user: Auditor) -> Response:
    """The annual report as a PDF (journalled like every export)."""
    _report, body = _exported_report(ctx, user.username, start, end, "pdf")
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="annual-report-{start}-{end}.pdf"'},
    )


epcis_router = APIRouter(prefix="/api/epcis", tags=["auditor"])


@epcis_router.get("/movements", responses={200: {"content": {"application/ld+json": {}}}})
def movements(
    ctx: ContextDep,
    user: MovementExporter,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> JSONResponse:
    """Journalled crossings (shipping, receiving, departing, arriving) and verified destructions (destroying) as
    a GS1 EPCIS 2.0 document of ObjectEvents. The export itself is journalled (who, the window, how many events,
    the SHA-256 of the document)."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(name, "give a time with its UTC offset")
    with transaction(ctx.factory) as session:
        base = ctx.settings.epcis_location_base
        entries = audit.journal_in_window(session, since, until)
        events = [e for e in (epcis.event_of(entry, base) for entry in entries) if e is not None]
        doc = epcis.document(events, journal.now_utc())
        response = JSONResponse(doc, media_type="application/ld+json")
        exported = {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "events": len(events),
            "sha256": hashlib.sha256(response.body).hexdigest(),
        }
        journal.append(session, user.username, "epcis.exported", "epcis:movements", exported)
    return response


# ---- pages ----
AUDIT_TABS = (
    ("/audit", "Journal"),
    ("/audit/incidents", "Incidents"),
    ("/audit/inventory", "Inventory"),
    ("/audit/report", "Annual report"),
)


@pages_router.get("/audit")
def journal_page(request: Request, user: Auditor) -> Response:
    return render(request, "audit.html", user, tabs=AUDIT_TABS)


@pages_router.get("/audit/incidents")
def incidents_page(request: Request, user: Auditor) -> Response:
    return render(request, "audit_incidents.html", user, tabs=AUDIT_TABS)


@pages_router.get("/audit/inventory")
def inventory_page(request: Request, ctx: ContextDep, user: Auditor) -> Response:
    with ctx.factory() as session:
        venues = sweep_venues(session)
    return render(request, "audit_inventory.html", user, tabs=AUDIT_TABS, venues=venues)


@pages_router.get("/audit/report")
def report_page(
    request: Request, ctx: ContextDep, user: Auditor, start: dt.date | None = None, end: dt.date | None = None
) -> Response:
    """The annual report as a page (shown, so journalled as an export too), with its PDF download."""
    today = dt.datetime.now(dt.UTC).date()
    start = start or today.replace(month=1, day=1)
    end = end or today
    report = None
    error = ""
    try:
        report, _body = _exported_report(ctx, user.username, start, end, "html")
    except InvalidInput as exc:
        error = f"{exc.field}: {exc.message}"
    return render(
        request, "audit_report.html", user, tabs=AUDIT_TABS, report=report, start=start, end=end, report_error=error
    )

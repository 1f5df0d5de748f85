"""Auditor: journal verification, an item's custody trail, inventory results, incidents with their clock and
evidence packages, the annual report, and movements as GS1 EPCIS 2.0."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, epcis, schemas, views
from api.deps import Auditor, ContextDep, MovementExporter
from registry import journal
from registry.db import transaction
from registry.errors import InvalidInput, NotFound
from registry.models import Incident, InventoryCount, Venue
from registry.services import incidents

router = APIRouter(prefix="/api/audit", tags=["auditor"])


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


@router.get("/report", response_model=audit.AnnualReportPublic)
def annual_report(start: dt.date, end: dt.date, ctx: ContextDep, user: Auditor) -> Response:
    """The annual report (Art. 56/58) for a period; who took it out, and the SHA-256 of the bytes, is journalled."""
    if end < start:
        raise InvalidInput("end", "the period ends before it starts")
    with transaction(ctx.factory) as session:
        body = audit.annual_report(session, start, end).model_dump_json().encode()
        exported = {"start": start.isoformat(), "end": end.isoformat(), "sha256": hashlib.sha256(body).hexdigest()}
        journal.append(session, user.username, "audit.report_exported", f"report:{start}..{end}", exported)
    return Response(body, media_type="application/json")


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

"""Destruction centre: the queue of items with an approved destruction, running a station, the records,
and certificate downloads."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from api import schemas, views
from api.deps import ContextDep, DestructionOperator, DestructionReader
from api.schemas import level_name
from registry import journal, rules
from registry.errors import NotFound, RuleViolation
from registry.models import Approval, DestructionRecord, Device, Item, Person, approval_items
from registry.services import lookup

router = APIRouter(prefix="/api/destruction", tags=["destruction centre"])

STATION_KINDS = ("modbus_shredder", "modbus_degausser")
QUEUED_STATUSES = ("active", "destruction_failed")


def queue(session: Session) -> list[schemas.QueueEntryPublic]:
    """Items covered by an approved destroy approval that is in its window and has a use left."""
    now = journal.now_utc()
    rows = session.execute(
        select(Item, Approval.ref)
        .join(approval_items, approval_items.c.item_id == Item.id)
        .join(Approval, Approval.id == approval_items.c.approval_id)
        .where(
            Approval.kind == "destroy",
            Approval.state == "approved",
            Approval.uses_left > 0,
            Approval.valid_from <= now,
            Approval.valid_until >= now,
            Item.status.in_(QUEUED_STATUSES),
        )
        .order_by(Item.register_number, Item.copy_number)
    ).all()
    return [
        schemas.QueueEntryPublic(
            item=views.item_key(item),
            item_id=item.id,
            title=item.title,
            kind=item.kind,
            level=level_name(item.effective_level),
            status=item.status,
            approval=ref,
        )
        for item, ref in rows
    ]


@router.get("/queue")
def get_queue(ctx: ContextDep, _user: DestructionReader) -> list[schemas.QueueEntryPublic]:
    with ctx.factory() as session:
        return queue(session)


@router.get("/stations")
def stations(ctx: ContextDep, _user: DestructionReader) -> list[str]:
    with ctx.factory() as session:
        return list(
            session.execute(select(Device.name).where(Device.kind.in_(STATION_KINDS)).order_by(Device.name)).scalars()
        )


@router.post("/run")
def run(
    body: schemas.DestructionCreate, ctx: ContextDep, user: DestructionOperator
) -> list[schemas.DestructionOutcomePublic]:
    """Checks station, witness and queue here (clear 404/409 answers), then the site runs the cycle."""
    control = ctx.require_control()
    with ctx.factory() as session:
        station = lookup.device(session, body.station)
        if station.kind not in STATION_KINDS:
            raise RuleViolation("destruction.station", f"{station.name} is not a destruction device")
        witness = lookup.person(session, body.witness)
        if witness.username == user.username:
            raise RuleViolation("destruction.witness", "a destruction is never witnessed by its operator alone")
        rules.has_role(witness, "witness")
        rules.active_person(witness)
        queued = {entry.item: entry for entry in queue(session)}
        keys = []
        for key in body.items:
            item = views.find_item(session, key)
            if views.item_key(item) not in queued:
                raise RuleViolation("destruction.not_approved", f"{views.item_key(item)} has no approved destruction")
            keys.append(views.item_key(item))
    try:
        outcomes = control.run_destruction(station.name, keys, user.username, witness.username)
    except LookupError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"station {station.name} is not running on this site") from None
    return [schemas.DestructionOutcomePublic.model_validate(o, from_attributes=True) for o in outcomes]


@router.get("/records")
def records(ctx: ContextDep, _user: DestructionReader) -> list[schemas.DestructionRecordPublic]:
    with ctx.factory() as session:
        operator, witness = aliased(Person), aliased(Person)
        rows = session.execute(
            select(DestructionRecord, Item, operator.username, witness.username)
            .join(Item, Item.id == DestructionRecord.item_id)
            .join(operator, operator.id == DestructionRecord.operator_id)
            .outerjoin(witness, witness.id == DestructionRecord.witness_id)
            .order_by(DestructionRecord.id.desc())
        ).all()
        return [
            schemas.DestructionRecordPublic(
                id=r.id,
                item=views.item_key(item),
                operator=op,
                witness=wit,
                device_name=r.device_name,
                method=r.method,
                outcome=r.outcome,
                reason=r.reason,
                started_at=r.started_at,
                completed_at=r.completed_at,
                certificate_sha256=r.certificate_sha256,
            )
            for r, item, op, wit in rows
        ]


def certificate_file(directory: Path | None, sha256: str | None) -> Path | None:
    """The PDF in the certificates folder whose SHA-256 is the one the register recorded, newest first.

    Matching on content rather than on a file name also means an altered certificate is never served."""
    if directory is None or not sha256 or not directory.is_dir():
        return None
    candidates = sorted(directory.glob("*.pdf"), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((p for p in candidates if hashlib.sha256(p.read_bytes()).hexdigest() == sha256), None)


@router.get(
    "/records/{record_id}/certificate",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def certificate(record_id: schemas.RowId, ctx: ContextDep, _user: DestructionReader) -> Response:
    with ctx.factory() as session:
        record = session.get(DestructionRecord, record_id)
        if record is None:
            raise NotFound("destruction record", record_id)
    path = certificate_file(ctx.settings.certificates_dir, record.certificate_sha256)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no certificate file for destruction record {record_id}")
    return Response(
        path.read_bytes(),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="destruction-{record_id}.pdf"'},
    )

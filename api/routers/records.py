"""The register's records: seizures (Art. 62), inspections (CE Art. 25), disputed levels (Art. 26), label
read-back from a photo (Art. 21) and who read an item in a venue (Art. 20). Each route names its roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, UploadFile, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import schemas, views
from api.auth import Allow, Principal
from api.deps import ContextDep
from registry.db import transaction
from registry.errors import NotFound
from registry.models import Inspection, Item, ItemAccess, LevelDispute, Person, Portal, Seizure, Venue
from registry.services import disputes, inspections, items, lookup, seizures
from registry.services.officials import Official, label
from vision import labels as label_reader

router = APIRouter(prefix="/api/records", tags=["records"])

RecordsKeeper = Annotated[Principal, Depends(Allow("administrator"))]
RecordsReader = Annotated[Principal, Depends(Allow("administrator", "auditor"))]
Inspector = Annotated[Principal, Depends(Allow("administrator", "auditor"))]
DisputeRecorder = Annotated[Principal, Depends(Allow("classifier", "administrator"))]
DisputeReader = Annotated[Principal, Depends(Allow("classifier", "administrator", "auditor"))]
Classifier = Annotated[Principal, Depends(Allow("classifier"))]
LabelChecker = Annotated[Principal, Depends(Allow("administrator", "classifier", "destruction_operator"))]
ReadingRecorder = Annotated[Principal, Depends(Allow("guard", "administrator", "custodian"))]

MAX_IMAGE_BYTES = 20 * 1024 * 1024


def decode_label(image: bytes) -> items.LabelReading:
    """The one place the register meets the label reader: a photo in, what its label says (or why not) out."""
    read = label_reader.read_label(image, second_opinion=True)
    if read.status != "decoded" or read.data is None:
        return items.LabelReading(None, read.reason or "no label decoded")
    data = read.data
    return items.LabelReading(items.LabelText(data.item_id, data.register_number, data.level, data.secrecy_period))


def _officials(given: list[schemas.OfficialCreate]) -> tuple[Official, ...]:
    return tuple(Official(o.username, o.name, o.organisation, o.identification) for o in given)


def _item(session: Session, item_id: int) -> Item:
    found = session.get(Item, item_id)
    if found is None:
        raise NotFound("item", item_id)
    return found


def _dispute(session: Session, dispute_id: int) -> LevelDispute:
    found = session.get(LevelDispute, dispute_id)
    if found is None:
        raise NotFound("dispute", dispute_id)
    return found


def _level(value: int | None) -> schemas.LevelName | None:
    return None if value is None else schemas.level_name(value)


def seizure_view(s: Seizure) -> schemas.SeizurePublic:
    return schemas.SeizurePublic(
        id=s.id,
        description=s.description,
        level=schemas.level_name(s.level),
        quantity=s.quantity,
        source=s.source,
        spread=s.spread,
        seized_by=[label(o) for o in s.officials],
        seized_at=s.seized_at,
        venue=s.venue.code if s.venue else None,
        items=[views.item_key(i) for i in s.items],
        recorded_by=s.recorded_by,
        recorded_at=s.recorded_at,
    )


def inspection_view(i: Inspection) -> schemas.InspectionPublic:
    return schemas.InspectionPublic(
        id=i.id,
        kind=i.kind,
        subject=i.subject,
        started_at=i.started_at,
        ended_at=i.ended_at,
        inspectors=[label(o) for o in i.inspectors],
        findings=[f.text for f in i.findings],
        actions=[a.text for a in i.actions],
        venues=[v.code for v in i.venues],
        recorded_by=i.recorded_by,
        recorded_at=i.recorded_at,
    )


def dispute_view(session: Session, d: LevelDispute) -> schemas.DisputePublic:
    return schemas.DisputePublic(
        id=d.id,
        register_number=d.register_number,
        raised_on=views.item_key(d.item),
        state=d.state,
        register_level=schemas.level_name(d.register_level),
        protected_at=schemas.level_name(d.highest_proposed) if d.state == "open" else None,
        reason=d.reason,
        proposals=[
            schemas.ProposalPublic(
                level=schemas.level_name(p.level), proposed_by=p.proposed_by, recorded_by=p.recorded_by, at=p.at
            )
            for p in d.proposals
        ],
        opened_by=d.opened_by,
        opened_at=d.opened_at,
        decided_level=_level(d.decided_level),
        decided_by=d.decided_by,
        decided_at=d.decided_at,
        decision_note=d.decision_note,
        conflicts=disputes.conflicts(session, d),
    )


@router.get("/seizures")
def list_seizures(ctx: ContextDep, _user: RecordsReader) -> list[schemas.SeizurePublic]:
    with ctx.factory() as session:
        return [seizure_view(s) for s in session.execute(select(Seizure).order_by(Seizure.id)).scalars()]


@router.post("/seizures", status_code=status.HTTP_201_CREATED)
def record_seizure(body: schemas.SeizureCreate, ctx: ContextDep, user: RecordsKeeper) -> schemas.SeizurePublic:
    data = seizures.SeizureData(
        description=body.description,
        level=body.level,
        quantity=body.quantity,
        source=body.source,
        spread=body.spread,
        seized_by=_officials(body.seized_by),
        seized_at=body.seized_at,
        venue=body.venue,
        items=tuple(body.items),
    )
    with transaction(ctx.factory) as session:
        return seizure_view(seizures.record_seizure(session, user.username, data))


@router.get("/inspections")
def list_inspections(ctx: ContextDep, _user: RecordsReader) -> list[schemas.InspectionPublic]:
    with ctx.factory() as session:
        rows = session.execute(select(Inspection).order_by(Inspection.started_at, Inspection.id)).scalars()
        return [inspection_view(i) for i in rows]


@router.post("/inspections", status_code=status.HTTP_201_CREATED)
def record_inspection(body: schemas.InspectionCreate, ctx: ContextDep, user: Inspector) -> schemas.InspectionPublic:
    data = inspections.InspectionData(
        kind=body.kind,
        subject=body.subject,
        started_at=body.started_at,
        ended_at=body.ended_at,
        inspectors=_officials(body.inspectors),
        findings=tuple(body.findings),
        actions=tuple(body.actions),
        venues=tuple(body.venues),
    )
    with transaction(ctx.factory) as session:
        return inspection_view(inspections.record_inspection(session, user.username, data))


@router.get("/disputes")
def list_disputes(ctx: ContextDep, _user: DisputeReader) -> list[schemas.DisputePublic]:
    with ctx.factory() as session:
        rows = session.execute(select(LevelDispute).order_by(LevelDispute.id)).scalars()
        return [dispute_view(session, d) for d in rows]


@router.post("/items/{item_id}/disputes", status_code=status.HTTP_201_CREATED)
def open_dispute(
    item_id: schemas.RowId, body: schemas.DisputeCreate, ctx: ContextDep, user: DisputeRecorder
) -> schemas.DisputePublic:
    """Art. 26: every copy is protected at the highest level proposed until the dispute is decided."""
    proposals = [disputes.Proposal(p.level, p.proposed_by) for p in body.proposals]
    with transaction(ctx.factory) as session:
        dispute = disputes.open_dispute(session, user.username, _item(session, item_id), proposals, body.reason)
        return dispute_view(session, dispute)


@router.post("/disputes/{dispute_id}/proposals")
def add_proposal(
    dispute_id: schemas.RowId, body: schemas.ProposalCreate, ctx: ContextDep, user: DisputeRecorder
) -> schemas.DisputePublic:
    with transaction(ctx.factory) as session:
        proposal = disputes.Proposal(body.level, body.proposed_by)
        return dispute_view(
            session, disputes.add_proposal(session, user.username, _dispute(session, dispute_id), proposal)
        )


@router.post("/disputes/{dispute_id}/decision")
def decide_dispute(
    dispute_id: schemas.RowId, body: schemas.DisputeDecisionCreate, ctx: ContextDep, user: Classifier
) -> schemas.DisputePublic:
    with transaction(ctx.factory) as session:
        dispute = disputes.decide(session, user.username, _dispute(session, dispute_id), body.level, body.note)
        return dispute_view(session, dispute)


@router.post("/items/{item_id}/label-check")
def check_label(
    item_id: schemas.RowId,
    image: Annotated[UploadFile, File(description="a photo (PNG, JPEG, ...) of the item's printed label")],
    ctx: ContextDep,
    user: LabelChecker,
) -> schemas.LabelCheckPublic:
    """Art. 21: 'label out of date' is cleared only when the photographed label agrees with the register.

    A label that disagrees flags the item out of date (journaled) and answers 409 `label.disagrees`; an
    unreadable photo changes nothing and answers 409 `label.unreadable`."""
    photo = image.file.read(MAX_IMAGE_BYTES + 1)
    if len(photo) > MAX_IMAGE_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"a label photo is at most {MAX_IMAGE_BYTES} bytes")
    reading = decode_label(photo)
    with transaction(ctx.factory) as session:
        item = _item(session, item_id)
        outcome = items.verify_label(session, user.username, item, reading)
        answer = schemas.LabelCheckPublic(
            item=views.item_key(item),
            level=schemas.level_name(item.effective_level),
            label_out_of_date=item.label_out_of_date,
        )
    if outcome.refusal is not None:
        raise outcome.refusal  # after the commit: the mismatch stays journaled
    return answer


@router.post("/readings")
def record_reading(body: schemas.ReadingCreate, ctx: ContextDep, user: ReadingRecorder) -> schemas.ReadingPublic:
    """Art. 20: a person given an item to read in a venue (refused where the register would not allow it)."""
    context = items.AccessContext(venue=body.venue, reference=body.reference)
    with transaction(ctx.factory) as session:
        item = views.find_item(session, body.item)
        reader = lookup.person(session, body.person)
        kept = items.record_access(session, user.username, item, reader, "read", context)
        return schemas.ReadingPublic(
            item=views.item_key(item), person=reader.username, venue=body.venue, recorded=kept is not None
        )


@router.get("/items/{item_id}/access")
def list_access(item_id: schemas.RowId, ctx: ContextDep, _user: RecordsReader) -> list[schemas.AccessRecordPublic]:
    """Who knew (Art. 20): every custody, reading and carry-out of the item, oldest first."""
    with ctx.factory() as session:
        _item(session, item_id)
        rows = session.execute(
            select(ItemAccess, Person.username, Venue.code, Portal.code)
            .join(Person, Person.id == ItemAccess.person_id)
            .outerjoin(Venue, Venue.id == ItemAccess.venue_id)
            .outerjoin(Portal, Portal.id == ItemAccess.portal_id)
            .where(ItemAccess.item_id == item_id)
            .order_by(ItemAccess.at, ItemAccess.id)
        ).all()
        return [
            schemas.AccessRecordPublic(
                person=username,
                kind=access.how,
                at=access.at,
                venue=venue,
                portal=portal,
                context=access.context,
                recorded_by=access.recorded_by,
            )
            for access, username, venue, portal in rows
        ]

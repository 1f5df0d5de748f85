"""Destruction centre: the queue of items with an approved destruction, the stations and their machines,
running a station with each step live, the records with their witness, machines and evidence image, and
certificate downloads. In the demo, an item's tag can be put on the simulated intake from the page."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from api import schemas, sse, views
from api.auth import client_address
from api.context import AppContext
from api.deps import ContextDep, DestructionOperator, DestructionReader
from api.schemas import level_name
from controllers.bus import LiveKind
from controllers.destruction import POLICY
from registry import journal, rules
from registry.db import transaction
from registry.errors import NotFound, RuleViolation
from registry.models import Approval, DestructionRecord, Device, Item, Person, PersonRole, Venue, approval_items
from registry.services import lookup

router = APIRouter(prefix="/api/destruction", tags=["destruction centre"])

STATION_KINDS = ("modbus_shredder", "modbus_degausser")
STEP_OF_KIND = {"modbus_degausser": "degauss", "modbus_shredder": "shred"}
QUEUED_STATUSES = ("active", "destruction_failed")
Sha256 = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")]


class MachinePublic(BaseModel):
    name: str
    kind: str


class StationPublic(BaseModel):
    """A destruction centre and its machines; a run names the station (or one of its machines)."""

    name: str
    machines: list[MachinePublic]
    simulated_intake: bool  # the demo's page may put a tag on the intake


class IntakeCreate(schemas.Strict):
    station: schemas.Ref
    items: list[schemas.ItemRef] = Field(min_length=1, max_length=100)


class IntakePlacedPublic(BaseModel):
    item: str
    epc: str


def method_of(kind: str) -> str:
    return " then ".join(POLICY.get(kind, POLICY["other"]).steps)


def queue(session: Session) -> list[schemas.QueueEntryPublic]:
    """One row per item covered by an approved destroy approval that is in its window and has a use left. An
    item approved twice is listed once, with the approval a run will use first (the oldest, as the register's
    `destroy_approval_for` picks it) and the others beside it."""
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
        .order_by(Item.register_number, Item.copy_number, Approval.id)
    ).all()
    entries: dict[int, schemas.QueueEntryPublic] = {}
    for item, ref in rows:
        if item.id in entries:
            entries[item.id].other_approvals.append(ref)
            continue
        entries[item.id] = schemas.QueueEntryPublic(
            item=views.item_key(item),
            item_id=item.id,
            title=item.title,
            kind=item.kind,
            level=level_name(item.effective_level),
            status=item.status,
            approval=ref,
            other_approvals=[],
            method=method_of(item.kind),
        )
    return list(entries.values())


@router.get("/queue")
def get_queue(ctx: ContextDep, _user: DestructionReader) -> list[schemas.QueueEntryPublic]:
    with ctx.factory() as session:
        return queue(session)


@router.get("/stations")
def stations(ctx: ContextDep, _user: DestructionReader) -> list[StationPublic]:
    with ctx.factory() as session:
        rows = session.execute(
            select(Venue.code, Device.name, Device.kind)
            .join(Device, Device.venue_id == Venue.id)
            .where(Venue.destruction.is_(True), Device.kind.in_(STATION_KINDS))
            .order_by(Venue.code, Device.name)
        ).all()
    found: dict[str, list[MachinePublic]] = {}
    for code, name, kind in rows:
        found.setdefault(code, []).append(MachinePublic(name=name, kind=kind))
    return [StationPublic(name=c, machines=m, simulated_intake=ctx.settings.demo) for c, m in found.items()]


class WitnessPublic(BaseModel):
    username: str
    name: str


@router.get("/witnesses")
def witnesses(ctx: ContextDep, user: DestructionReader) -> list[WitnessPublic]:
    """Who may witness a run (the witness role, active), the caller excepted: never the operator alone."""
    with ctx.factory() as session:
        people = session.execute(
            select(Person)
            .join(PersonRole)
            .where(PersonRole.role == "witness", Person.status.in_(("active", "departing")))
            .order_by(Person.username)
        ).scalars()
        return [WitnessPublic(username=p.username, name=p.name) for p in people if p.username != user.username]


def _chosen_step(session: Session, station: str) -> str | None:
    """None when `station` names a destruction centre (its machines do what each medium needs); the machine's
    step ("degauss", "shred") when it names one machine, which the run must then actually use."""
    venue = session.execute(select(Venue).where(Venue.code == station, Venue.destruction.is_(True))).scalar()
    if venue is not None:
        return None
    device = lookup.device(session, station)
    if device.kind not in STATION_KINDS:
        raise RuleViolation("destruction.station", f"{device.name} is not a destruction device")
    return STEP_OF_KIND[device.kind]


def confirm_witness(ctx: AppContext, request: Request, operator: str, username: str, password: str) -> None:
    """The witness is a second person, with the witness role, present: their own password, throttled as a
    sign-in is (so the station is no password oracle). A refusal is journalled (never the password)."""
    with transaction(ctx.factory) as session:
        witness = lookup.person(session, username)
        if witness.username == operator:
            raise RuleViolation("destruction.witness", "a destruction is never witnessed by its operator alone")
        rules.has_role(witness, "witness")
        rules.active_person(witness)
        address = client_address(request)
        ctx.auth.throttle.check(session, witness.username, address)
        if ctx.auth.verify_password(witness, password):
            ctx.auth.throttle.succeeded(session, witness.username, address)
            return
        ctx.auth.throttle.failed(session, witness.username, address)
        journal.append(session, operator, "destruction.witness_refused", f"person:{witness.username}", {"ip": address})
    raise RuleViolation("destruction.witness_unconfirmed", f"{username} did not confirm: wrong password")


@router.post("/run")
def run(
    body: schemas.DestructionCreate, request: Request, ctx: ContextDep, user: DestructionOperator
) -> list[schemas.DestructionOutcomePublic]:
    """Checks the witness (present, by their password), station and queue here (clear 404/409 answers), then
    the site runs the cycle; each step is published live (`/api/destruction/live`)."""
    control = ctx.require_control()
    confirm_witness(ctx, request, user.username, body.witness, body.witness_password)
    with ctx.factory() as session:
        step = _chosen_step(session, body.station)
        witness = lookup.person(session, body.witness)
        queued = {entry.item: entry for entry in queue(session)}
        keys = []
        for key in body.items:
            item = views.find_item(session, key)
            name = views.item_key(item)
            if name not in queued:
                raise RuleViolation("destruction.not_approved", f"{name} has no approved destruction")
            needs = POLICY.get(item.kind, POLICY["other"]).steps
            if step is not None and step not in needs:
                # Otherwise the record would name another machine than the one the operator chose.
                raise RuleViolation(
                    "destruction.device",
                    f"{name} ({item.kind}) needs {' then '.join(needs)}; {body.station} can only {step}",
                )
            keys.append(name)
    try:
        outcomes = control.run_destruction(body.station, keys, user.username, witness.username)
    except LookupError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"station {body.station} is not running on this site") from None
    return [schemas.DestructionOutcomePublic.model_validate(o, from_attributes=True) for o in outcomes]


class ReimageCreate(schemas.Strict):
    """Another image of the lot the station could not verify: its run's witness confirms being here again."""

    station: schemas.Ref
    witness: schemas.Ref
    witness_password: str = Field(min_length=1, max_length=256)


class GiveUpCreate(schemas.Strict):
    station: schemas.Ref


class PendingPublic(BaseModel):
    """A lot waiting at a station for another image, with why and its latest evidence image."""

    station: str
    item: str
    operator: str
    witness: str
    frames: int
    max_frames: int
    reason: str
    evidence_image_sha256: str


@router.get("/pending")
def pending(ctx: ContextDep, _user: DestructionReader) -> list[PendingPublic]:
    return [
        PendingPublic.model_validate(p, from_attributes=True) for p in ctx.require_control().pending_verifications()
    ]


@router.post("/reimage")
def reimage(
    body: ReimageCreate, request: Request, ctx: ContextDep, user: DestructionOperator
) -> schemas.DestructionOutcomePublic:
    """The station photographs the lot in its tray again and judges it from all the frames of its run; only the
    run's operator, with the run's witness present (their password), may ask (the station checks who)."""
    control = ctx.require_control()
    confirm_witness(ctx, request, user.username, body.witness, body.witness_password)
    try:
        outcome = control.reimage_destruction(body.station, user.username, body.witness)
    except LookupError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"station {body.station} is not running on this site") from None
    return schemas.DestructionOutcomePublic.model_validate(outcome, from_attributes=True)


@router.post("/give-up")
def give_up(body: GiveUpCreate, ctx: ContextDep, user: DestructionOperator) -> schemas.DestructionOutcomePublic:
    """The run's operator takes no more images: the item stays "destruction failed" with the reason."""
    control = ctx.require_control()
    try:
        outcome = control.give_up_destruction(body.station, user.username)
    except LookupError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"station {body.station} is not running on this site") from None
    return schemas.DestructionOutcomePublic.model_validate(outcome, from_attributes=True)


@router.post("/intake")
def load_intake(body: IntakeCreate, ctx: ContextDep, user: DestructionOperator) -> list[IntakePlacedPublic]:
    """Demo only: put the items' tags on the station's simulated intake reader, as the operator would put the
    items in the hopper. Journalled, so the register says the intake was simulated."""
    if not ctx.settings.demo:
        raise RuleViolation("destruction.demo_only", "the intake is simulated only in `custodian demo`")
    control = ctx.require_control()
    with transaction(ctx.factory) as session:
        found = [views.find_item(session, key) for key in body.items]
        placed = [IntakePlacedPublic(item=views.item_key(i), epc=i.epc) for i in found]
        try:
            for entry in placed:
                control.place_on_intake(body.station, entry.epc)
        except LookupError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{body.station} has no simulated intake") from None
        journal.append(
            session, user.username, "demo.intake_loaded", f"station:{body.station}", {"items": [p.item for p in placed]}
        )
    return placed


@router.get("/live", response_class=StreamingResponse, responses=sse.RESPONSES)
async def live(request: Request, ctx: ContextDep, _user: DestructionReader, after: int = 0) -> StreamingResponse:
    """Each step of the stations' runs as it happens (SSE events called `step`): intake read, cycle telemetry,
    particle analysis with its evidence image, witness, outcome."""
    return sse.stream(
        request, ctx.require_bus(), after, shown=lambda e: e.kind is LiveKind.DESTRUCTION, name=lambda _e: "step"
    )


@router.get("/records")
def records(ctx: ContextDep, _user: DestructionReader) -> list[schemas.DestructionRecordPublic]:
    with ctx.factory() as session:
        operator, witness = aliased(Person), aliased(Person)
        rows = session.execute(
            select(DestructionRecord, Item, operator.username, witness.username, Approval.ref)
            .join(Item, Item.id == DestructionRecord.item_id)
            .join(operator, operator.id == DestructionRecord.operator_id)
            .outerjoin(witness, witness.id == DestructionRecord.witness_id)
            .outerjoin(Approval, Approval.id == DestructionRecord.approval_id)
            .order_by(DestructionRecord.id.desc())
        ).all()
        result = []
        for r, item, op, wit, ref in rows:
            parameters = {str(k): str(v) for k, v in json.loads(r.parameters_json or "{}").items()}
            result.append(
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
                    approval=ref,
                    parameters=parameters,
                    evidence_image_sha256=parameters.get("evidence_image_sha256"),
                    journal_seq=r.journal_seq,
                )
            )
        return result


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
def certificate(record_id: schemas.RowId, ctx: ContextDep, user: DestructionReader) -> Response:
    """The certificate PDF; who took it out is journalled, like every export."""
    with transaction(ctx.factory) as session:
        record = session.get(DestructionRecord, record_id)
        if record is None:
            raise NotFound("destruction record", record_id)
        path = certificate_file(ctx.settings.certificates_dir, record.certificate_sha256)
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no certificate file for destruction record {record_id}")
        journal.append(
            session,
            user.username,
            "destruction.certificate_exported",
            f"destruction:{record_id}",
            {"sha256": record.certificate_sha256},
        )
    return Response(
        path.read_bytes(),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="destruction-{record_id}.pdf"'},
    )


@router.get(
    "/evidence/{sha256}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def evidence_image(sha256: Sha256, ctx: ContextDep, _user: DestructionReader) -> Response:
    """The particle analysis's evidence image (offenders outlined), served only if its bytes have that hash.

    Shown on the live page as each run reaches its analysis, so it is a view, not journalled per request (a
    write on every image the page loads would contend with the station's own records); what vouches for it is
    its SHA-256 in the destruction record, the journal and the certificate, which is journalled when taken."""
    directory = ctx.settings.certificates_dir
    path = directory / f"evidence-{sha256[:16]}.png" if directory is not None else None
    data = path.read_bytes() if path is not None and path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no evidence image {sha256}")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

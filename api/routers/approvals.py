"""Requests and approvals: anyone who holds items may request; an approver other than the requester decides."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import schemas, views
from api.auth import Principal
from api.deps import ApprovalReader, Approver, ContextDep, Requester
from registry import journal
from registry.db import transaction
from registry.errors import NotFound
from registry.models import Approval
from registry.services import approvals, lookup

router = APIRouter(prefix="/api/approvals", tags=["approvals"])

# Roles that see every approval; others see only the approvals they requested or are named on.
SEE_ALL = frozenset({"approver", "administrator", "auditor"})


def covers(approval: Approval, username: str) -> bool:
    """Whether the request names this person, directly or through a group (rule approval.approver_named)."""
    return any(p.username == username for p in approval.people) or any(
        m.username == username for g in approval.groups for m in g.members
    )


def visible(approval: Approval, user: Principal) -> bool:
    if user.roles & SEE_ALL:
        return True
    return approval.requester.username == user.username or covers(approval, user.username)


def find_approvals(
    session: Session, user: Principal, *, state: str = "", kind: str = "", q: str = ""
) -> list[Approval]:
    """The approvals this user may see, newest first, by state and kind, with `q` found in the ref, reason,
    requester, items or people named."""
    query = select(Approval).order_by(Approval.created_at.desc(), Approval.id.desc())
    if state:
        query = query.where(Approval.state == state)
    if kind:
        query = query.where(Approval.kind == kind)
    text = q.strip().lower()
    found = []
    for a in session.execute(query).scalars():
        words = [a.ref, a.reason, a.requester.username, *(i.register_number for i in a.items)]
        if visible(a, user) and text in " ".join([*words, *(p.username for p in a.people)]).lower():
            found.append(a)
    return found


@router.get("")
def list_approvals(
    ctx: ContextDep,
    user: ApprovalReader,
    state: Annotated[str, Query(max_length=16)] = "",
    kind: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
) -> list[schemas.ApprovalPublic]:
    with ctx.factory() as session:
        return [views.approval(a) for a in find_approvals(session, user, state=state, kind=kind, q=q)]


@router.get("/{ref}")
def get_approval(ref: str, ctx: ContextDep, user: ApprovalReader) -> schemas.ApprovalPublic:
    with ctx.factory() as session:
        found = session.execute(select(Approval).where(Approval.ref == ref)).scalar()
        if found is not None and visible(found, user):
            return views.approval(found)
        if found is None and user.roles & SEE_ALL:
            raise NotFound("approval", ref)
        # Whoever may not see other people's approvals cannot tell a missing one from a hidden one.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "you may not see this approval")


def new_ref() -> str:
    return f"A-{journal.now_utc():%Y%m%d}-{secrets.token_hex(3).upper()}"


def request_from(body: schemas.ApprovalCreate) -> approvals.ApprovalRequest:
    """The service's request from the API's (or the page's) body; a new reference when none is given."""
    return approvals.ApprovalRequest(
        ref=body.ref or new_ref(),
        kind=body.kind,
        items=tuple(body.items),
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        people=tuple(body.people),
        groups=tuple(body.groups),
        portal=body.portal,
        destination_venue=body.destination_venue,
        destination_text=body.destination_text,
        uses=body.uses,
        return_by=body.return_by,
        reason=body.reason,
        originator_consent=body.originator_consent,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def request_approval(body: schemas.ApprovalCreate, ctx: ContextDep, user: Requester) -> schemas.ApprovalPublic:
    data = request_from(body)
    with transaction(ctx.factory) as session:
        if session.execute(select(Approval.id).where(Approval.ref == data.ref)).first():
            raise HTTPException(status.HTTP_409_CONFLICT, f"approval {data.ref} already exists")
        return views.approval(approvals.request(session, user.username, data))


@router.post("/{ref}/approve")
def approve(ref: str, body: schemas.DecisionCreate, ctx: ContextDep, user: Approver) -> schemas.ApprovalPublic:
    with transaction(ctx.factory) as session:
        return views.approval(approvals.approve(session, user.username, lookup.approval(session, ref), body.note))


@router.post("/{ref}/refuse")
def refuse(ref: str, body: schemas.DecisionCreate, ctx: ContextDep, user: Approver) -> schemas.ApprovalPublic:
    with transaction(ctx.factory) as session:
        return views.approval(approvals.refuse(session, user.username, lookup.approval(session, ref), body.note))

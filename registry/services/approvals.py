"""Requests and approvals: request -> approve or refuse by someone else -> uses consumed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry import journal, rules, validate
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import APPROVAL_KINDS, Approval, ApprovalDecision, Item
from registry.services import lookup


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    ref: str
    kind: str
    items: tuple[str, ...]  # register numbers or EPCs
    valid_from: dt.datetime
    valid_until: dt.datetime
    people: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    portal: str | None = None
    destination_venue: str | None = None
    destination_text: str = ""
    uses: int = 1
    return_by: dt.datetime | None = None
    reason: str = ""
    originator_consent: str | None = None


def _subject(approval: Approval) -> str:
    return f"approval:{approval.ref}"


def describe(approval: Approval) -> dict[str, object]:
    return {
        "ref": approval.ref,
        "kind": approval.kind,
        "state": approval.state,
        "requester": approval.requester.username,
        "items": sorted(f"{i.register_number}/{i.copy_number}" for i in approval.items),
        "people": sorted(p.username for p in approval.people),
        "groups": sorted(g.name for g in approval.groups),
        "valid_from": approval.valid_from.isoformat(),
        "valid_until": approval.valid_until.isoformat(),
        "uses_left": approval.uses_left,
        "return_by": approval.return_by.isoformat() if approval.return_by else None,
        "originator_consent": approval.originator_consent,
    }


def request(session: Session, actor: str, data: ApprovalRequest) -> Approval:
    validate.choice(data.kind, APPROVAL_KINDS, "kind")
    if data.valid_until <= data.valid_from:
        raise InvalidInput("valid_until", "the window ends before it starts")
    if data.uses < 1:
        raise InvalidInput("uses", "must be 1 or more")
    if not data.items:
        raise InvalidInput("items", "an approval covers at least one item")
    requester = lookup.person(session, actor)
    rules.active_person(requester)
    items: list[Item] = [lookup.item(session, key) for key in data.items]
    people = [lookup.person(session, u) for u in data.people]
    for person in people:
        rules.active_person(person)
    rules.clearance(people, items)
    top = max(i.effective_level for i in items)
    if data.kind == "abroad" and top == Level.TOP_SECRET:
        raise RuleViolation("exit.border_top_secret", "a top_secret item never goes abroad (Art. 29(5))")
    if data.kind == "reproduce" and top == Level.TOP_SECRET and not data.originator_consent:
        raise RuleViolation(
            "approval.originator_consent",
            "a top_secret reproduction needs the originating unit's consent (Art. 29(4))",
        )
    approval = Approval(
        ref=data.ref,
        kind=data.kind,
        state="requested",
        reason=data.reason,
        requester=requester,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        return_by=data.return_by,
        uses_total=data.uses,
        uses_left=data.uses,
        originator_consent=data.originator_consent,
        destination_text=data.destination_text,
        created_at=journal.now_utc(),
    )
    if data.portal:
        approval.portal_id = lookup.portal(session, data.portal).id
    if data.destination_venue:
        destination = lookup.venue(session, data.destination_venue)
        for item in items:
            rules.placement(item.effective_level, destination)
        approval.destination_venue_id = destination.id
    approval.items = items
    approval.people = people
    approval.groups = [lookup.group(session, g) for g in data.groups]
    session.add(approval)
    session.flush()
    journal.append(session, actor, "approval.requested", _subject(approval), describe(approval))
    return approval


def _decide(session: Session, actor: str, approval: Approval, decision: str, note: str) -> Approval:
    approver = lookup.person(session, actor)
    rules.has_role(approver, "approver")
    rules.active_person(approver)
    rules.distinct_approver(approval.requester, approver)
    if approval.state != "requested":
        raise RuleViolation("approval.state", f"approval {approval.ref} is already {approval.state}")
    rules.clearance([approver], approval.items, rule="approval.approver_clearance")
    if decision == "approved":  # refusing a request that covers oneself grants nothing, so it stays open
        rules.approver_not_covered(approver, approval.people, approval.groups)
    approval.state = decision
    approval.decisions.append(ApprovalDecision(approver=approver, decision=decision, at=journal.now_utc(), note=note))
    session.flush()
    journal.append(session, actor, f"approval.{decision}", _subject(approval), {"note": note})
    return approval


def approve(session: Session, actor: str, approval: Approval, note: str = "") -> Approval:
    return _decide(session, actor, approval, "approved", note)


def refuse(session: Session, actor: str, approval: Approval, note: str) -> Approval:
    if not note.strip():
        raise InvalidInput("note", "a refusal needs a reason")
    return _decide(session, actor, approval, "refused", note)


def consume(session: Session, actor: str, approval: Approval, context: str = "") -> Approval:
    """One use of an approval was spent (an exit passed, a copy made, an item destroyed)."""
    if approval.state != "approved" or approval.uses_left <= 0:
        raise RuleViolation("approval.used_up", f"approval {approval.ref} has no uses left")
    approval.uses_left -= 1
    if approval.uses_left == 0:
        approval.state = "used"
    session.flush()
    journal.append(
        session,
        actor,
        "approval.used",
        _subject(approval),
        {"uses_left": approval.uses_left, "context": context},
    )
    return approval

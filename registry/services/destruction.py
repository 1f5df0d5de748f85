"""Destruction records (Art. 28): verified destruction retires the tag; a failed cycle leaves the item in the
operator's custody, never "destroyed"."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal, rules
from registry.errors import RuleViolation
from registry.models import Approval, DestructionRecord, Item, approval_items
from registry.services import lookup
from registry.services.items import AccessContext, record_access


@dataclass(frozen=True, slots=True)
class DestructionEvidence:
    """What the station measured. Parameters are plain (name, value) pairs for the certificate."""

    device_name: str
    method: str
    started_at: dt.datetime
    completed_at: dt.datetime
    parameters: dict[str, str] = field(default_factory=dict)


def destroy_approval_for(session: Session, item: Item) -> Approval | None:
    """The approved, unexpired destroy approval that covers the item and still has a use left."""
    now = journal.now_utc()
    candidates = session.execute(
        select(Approval)
        .join(approval_items, approval_items.c.approval_id == Approval.id)
        .where(
            approval_items.c.item_id == item.id,
            Approval.kind == "destroy",
            Approval.state == "approved",
            Approval.uses_left > 0,
        )
        .order_by(Approval.id)
    ).scalars()
    return next((a for a in candidates if a.valid_from <= now <= a.valid_until), None)


def check_people(session: Session, operator: str, witness: str) -> None:
    """An operator and a second person who witnesses: never the operator alone (domain-rules 6, 7)."""
    op = lookup.person(session, operator)
    wit = lookup.person(session, witness)
    rules.has_role(op, "destruction_operator")
    rules.has_role(wit, "witness")
    rules.active_person(op)
    rules.active_person(wit)
    if op.id == wit.id:
        raise RuleViolation("destruction.two_persons", "the witness must be a different person from the operator")


def record_destroyed(
    session: Session,
    operator: str,
    witness: str,
    item: Item,
    evidence: DestructionEvidence,
    certificate_sha256: str,
) -> DestructionRecord:
    check_people(session, operator, witness)
    if item.status == "destroyed":
        raise RuleViolation("destruction.already", f"{item.register_number}/{item.copy_number} is already destroyed")
    approval = destroy_approval_for(session, item)
    if approval is None:
        raise RuleViolation("destruction.approval", f"no approved destruction request for {item.register_number}")
    op = lookup.person(session, operator)
    record = DestructionRecord(
        item_id=item.id,
        approval_id=approval.id,
        operator_id=op.id,
        witness_id=lookup.person(session, witness).id,
        device_name=evidence.device_name,
        method=evidence.method,
        outcome="destroyed",
        started_at=evidence.started_at,
        completed_at=evidence.completed_at,
        parameters_json=json.dumps(evidence.parameters, sort_keys=True),
        certificate_sha256=certificate_sha256,
    )
    session.add(record)
    item.status = "destroyed"
    item.custodian_id = None
    item.venue_id = None
    approval.uses_left -= 1
    if approval.uses_left == 0:
        approval.state = "used"
    session.flush()
    entry = journal.append(
        session,
        operator,
        "item.destroyed",
        f"item:{item.register_number}/{item.copy_number}",
        {
            "record": record.id,
            "witness": witness,
            "device": evidence.device_name,
            "method": evidence.method,
            "parameters": evidence.parameters,
            "certificate_sha256": certificate_sha256,
            "tag_retired": item.epc,
            "approval": approval.ref,
        },
    )
    record.journal_seq = entry.seq
    session.flush()
    return record


def record_failed(
    session: Session,
    operator: str,
    item: Item,
    evidence: DestructionEvidence,
    reason: str,
    *,
    witness: str | None = None,
) -> DestructionRecord:
    """The cycle did not prove destruction: the item stays registered, in the operator's custody. The witness
    who stood by is recorded as on a successful run: a failure is witnessed too."""
    op = lookup.person(session, operator)
    record = DestructionRecord(
        item_id=item.id,
        approval_id=None,
        operator_id=op.id,
        witness_id=lookup.person(session, witness).id if witness else None,
        device_name=evidence.device_name,
        method=evidence.method,
        outcome="failed",
        reason=reason,
        started_at=evidence.started_at,
        completed_at=evidence.completed_at,
        parameters_json=json.dumps(evidence.parameters, sort_keys=True),
    )
    session.add(record)
    item.status = "destruction_failed"
    item.custodian_id = op.id
    session.flush()
    record_access(session, operator, item, op, "custody", AccessContext(reference="destruction failed"))
    entry = journal.append(
        session,
        operator,
        "item.destruction_failed",
        f"item:{item.register_number}/{item.copy_number}",
        {
            "record": record.id,
            "reason": reason,
            "witness": witness,
            "device": evidence.device_name,
            "method": evidence.method,
            "parameters": evidence.parameters,
        },
    )
    record.journal_seq = entry.seq
    session.flush()
    return record


def record_reimage(
    session: Session,
    operator: str,
    witness: str,
    item: Item,
    record_id: int,
    frame: int,
    frame_sha256: str,
    verdict: str,
) -> None:
    """Another frame of a lot whose analysis could not verify it, taken for the operator of that run with its
    witness present. Refused unless the lot still stands under that run's "destruction failed" record (the
    item untouched since), so a re-image never turns another run, or another item, into a destruction."""
    check_people(session, operator, witness)
    latest = session.execute(
        select(DestructionRecord).where(DestructionRecord.item_id == item.id).order_by(DestructionRecord.id.desc())
    ).scalar()
    if item.status != "destruction_failed" or latest is None or latest.id != record_id:
        raise RuleViolation(
            "destruction.reimage_stale",
            f"{item.register_number}/{item.copy_number} has changed since the run: its tray cannot be re-imaged",
        )
    op, wit = lookup.person(session, operator), lookup.person(session, witness)
    if latest.operator_id != op.id or latest.witness_id != wit.id:
        raise RuleViolation(
            "destruction.reimage_people", "only the run's own operator, with its own witness, may re-image its tray"
        )
    journal.append(
        session,
        operator,
        "item.destruction_reimaged",
        f"item:{item.register_number}/{item.copy_number}",
        {"record": record_id, "witness": witness, "frame": frame, "frame_sha256": frame_sha256, "verdict": verdict},
    )

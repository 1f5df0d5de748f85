"""Transfers (Art. 27(3), 29(1)): hand-over by the sender, receipt by the receiver, counts reconciled."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry import journal, rules
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import Approval, Item, Person, Transfer
from registry.services import incidents, lookup
from registry.services.items import AccessContext, record_access


@dataclass(frozen=True, slots=True)
class Receipt:
    transfer: Transfer
    missing: list[str]
    unexpected: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.unexpected


def _key(item: Item) -> str:
    return f"{item.register_number}/{item.copy_number}"


def hand_over(
    session: Session,
    actor: str,
    *,
    receiver: str,
    items: tuple[str, ...],
    to_venue: str | None = None,
    to_unit: str = "",
    approval_ref: str | None = None,
) -> Transfer:
    if not items:
        raise InvalidInput("items", "a transfer carries at least one item")
    if (to_venue is None) == (not to_unit):
        raise InvalidInput("to_venue", "name exactly one destination: a venue or an outside unit")
    sender = lookup.person(session, actor)
    recipient = lookup.person(session, receiver)
    for person in (sender, recipient):
        rules.active_person(person)
    moved = [lookup.item(session, key) for key in items]
    for item in moved:
        if item.status != "active":
            raise RuleViolation("transfer.item_status", f"{_key(item)} is {item.status}")
    rules.clearance([sender, recipient], moved, rule="transfer.clearance")
    destination = lookup.venue(session, to_venue) if to_venue else None
    if destination is not None:
        for item in moved:
            rules.placement(item.effective_level, destination)
    approval = lookup.approval(session, approval_ref) if approval_ref else None
    if approval is not None:
        # A cited approval must allow this transfer of these very items now, whatever their level.
        rules.usable_approval(approval, "transfer", moved, journal.now_utc())
        if approval.destination_venue_id is not None and (
            destination is None or destination.id != approval.destination_venue_id
        ):
            raise rules.refuse("transfer.destination", f"{approval.ref} is for another destination.")
    if any(i.effective_level == Level.TOP_SECRET for i in moved):
        _designated(approval, sender, recipient)
    transfer = Transfer(
        approval_id=approval.id if approval else None,
        from_venue_id=moved[0].venue_id,
        to_venue_id=destination.id if destination else None,
        to_unit=to_unit,
        sender_id=sender.id,
        receiver_id=recipient.id,
        state="in_transit",
        sent_at=journal.now_utc(),
        sent_count=len(moved),
    )
    transfer.items = moved
    for item in moved:
        item.status = "in_transit"
    session.add(transfer)
    session.flush()
    journal.append(
        session,
        actor,
        "transfer.sent",
        f"transfer:{transfer.id}",
        {
            "receiver": receiver,
            "items": sorted(_key(i) for i in moved),
            "count": len(moved),
            "to_venue": to_venue,
            "to_unit": to_unit,
        },
    )
    return transfer


def _designated(approval: Approval | None, sender: Person, receiver: Person) -> None:
    """Art. 29(1): a top-secret transfer goes by an approval (found usable for its items by the caller) that
    names both the designated sender and the designated receiver."""
    if approval is None:
        raise rules.refuse("transfer.top_secret_designated", "No approval was given.")
    named = {p.id for p in approval.people}
    missing = sorted(p.username for p in (sender, receiver) if p.id not in named)
    if missing:
        raise rules.refuse(
            "transfer.top_secret_designated",
            f"{approval.ref} names {', '.join(sorted(p.username for p in approval.people)) or 'nobody'}, "
            f"not {' or '.join(missing)}.",
            details=missing,
        )


def receive(session: Session, actor: str, transfer: Transfer, received: tuple[str, ...]) -> Receipt:
    """The receiver counts what arrived. A short or wrong count opens an incident; nothing goes silent."""
    recipient = lookup.person(session, actor)
    if recipient.id != transfer.receiver_id:
        raise RuleViolation("transfer.receiver", f"{actor} is not the designated receiver")
    if transfer.state != "in_transit":
        raise RuleViolation("transfer.state", f"transfer {transfer.id} is already {transfer.state}")
    sent = {_key(i): i for i in transfer.items}
    arrived = {_key(lookup.item(session, key)) for key in received}
    missing = sorted(set(sent) - arrived)
    unexpected = sorted(arrived - set(sent))
    for key in arrived & set(sent):
        item = sent[key]
        item.status = "active"
        item.venue_id = transfer.to_venue_id
        item.custodian_id = recipient.id
        record_access(session, actor, item, recipient, "custody", AccessContext(reference=f"transfer:{transfer.id}"))
    transfer.received_count = len(arrived & set(sent))
    transfer.received_at = journal.now_utc()
    transfer.state = "received" if not missing and not unexpected else "discrepancy"
    session.flush()
    journal.append(
        session,
        actor,
        "transfer.received",
        f"transfer:{transfer.id}",
        {"received": sorted(arrived), "missing": missing, "unexpected": unexpected},
    )
    if missing or unexpected:
        incidents.open_incident(
            session,
            actor,
            "transfer_discrepancy",
            f"transfer {transfer.id}: missing {missing or 'none'}, unexpected {unexpected or 'none'}",
        )
    return Receipt(transfer, missing, unexpected)

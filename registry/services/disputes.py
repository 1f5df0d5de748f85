"""Disputed levels (Art. 26): differing opinions on a register number's level, and the decision.

A dispute concerns the matter, so it covers every copy of the register number, including copies made
while it is open. Until it is decided, each copy is protected at the highest level proposed
(`Item.disputed_level`, which `Item.effective_level` and so every placement, custody, approval and exit
check uses); the decision sets the level of every copy and ends that protection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal, rules, validate
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import Item, LevelDispute, LevelProposal
from registry.services import lookup
from registry.services.items import open_dispute_for


@dataclass(frozen=True, slots=True)
class Proposal:
    level: Level | str
    proposed_by: str  # the unit or person of this opinion


def _key(item: Item) -> str:
    return f"{item.register_number}/{item.copy_number}"


def copies(session: Session, register_number: str) -> list[Item]:
    return list(
        session.execute(
            select(Item).where(Item.register_number == register_number).order_by(Item.copy_number)
        ).scalars()
    )


def _proposal(actor: str, proposal: Proposal) -> LevelProposal:
    level = validate.level(proposal.level)
    if not proposal.proposed_by.strip():
        raise InvalidInput("proposed_by", "name the unit or person who proposes this level")
    return LevelProposal(level=int(level), proposed_by=proposal.proposed_by, recorded_by=actor, at=journal.now_utc())


def _conflicts(item: Item) -> list[str]:
    """Where an item now stands against its protection level: venue ceiling, custodian's clearance."""
    level = item.effective_level
    found = []
    if item.venue is not None:
        try:
            rules.placement(level, item.venue)
        except RuleViolation as misplaced:
            found.append(f"{_key(item)}: {misplaced.message}")
    if item.custodian is not None and item.custodian.clearance < level:
        found.append(
            f"{_key(item)} is held by {item.custodian.username}, cleared only to "
            f"{Level(item.custodian.clearance).label}"
        )
    return found


def conflicts(session: Session, dispute: LevelDispute) -> list[str]:
    """What the protection of an open dispute conflicts with now, to be put right at once."""
    if dispute.state != "open":
        return []
    return [found for item in copies(session, dispute.register_number) for found in _conflicts(item)]


def _protect(session: Session, actor: str, dispute: LevelDispute, action: str) -> None:
    """Raise every copy to the highest level proposed; journal each with what that conflicts with."""
    highest = dispute.highest_proposed
    for item in copies(session, dispute.register_number):
        before = item.effective_level
        item.disputed_level = highest
        if item.effective_level != before:
            item.label_out_of_date = True  # Art. 21: the label shows the level the item is protected at
        found = _conflicts(item)
        session.flush()
        journal.append(
            session,
            actor,
            action,
            f"item:{_key(item)}",
            {
                "dispute": dispute.id,
                "proposals": [[Level(p.level).label, p.proposed_by] for p in dispute.proposals],
                "protected_at": Level(item.effective_level).label,
                "conflicts": found,
            },
        )


def open_dispute(session: Session, actor: str, item: Item, proposals: Sequence[Proposal], reason: str) -> LevelDispute:
    """Record a disagreement on the item's level; protection rises at once to the highest level proposed.

    Recording is never refused for where the copies are: the conflicts are journaled (and `conflicts` lists
    them) so the copies can be moved or handed over; exit decisions already use the higher level."""
    if not reason.strip():
        raise InvalidInput("reason", "say what the dispute is about")
    if not proposals:
        raise InvalidInput("proposals", "a dispute records at least one proposed level")
    if open_dispute_for(session, item.register_number) is not None:
        raise rules.refuse("dispute.already_open", f"{item.register_number} already has an open dispute.")
    recorded = [_proposal(actor, p) for p in proposals]
    if all(p.level == item.level for p in recorded):
        raise rules.refuse("dispute.no_difference", f"every proposal is {Level(item.level).label}, as registered.")
    dispute = LevelDispute(
        register_number=item.register_number,
        item_id=item.id,
        state="open",
        register_level=item.level,
        reason=reason,
        opened_by=actor,
        opened_at=journal.now_utc(),
        proposals=recorded,
    )
    session.add(dispute)
    session.flush()
    _protect(session, actor, dispute, "item.level_disputed")
    return dispute


def add_proposal(session: Session, actor: str, dispute: LevelDispute, proposal: Proposal) -> LevelDispute:
    """Another opinion on an open dispute; protection follows the highest level proposed so far."""
    if dispute.state != "open":
        raise rules.refuse("dispute.state", f"dispute {dispute.id} was decided.")
    dispute.proposals.append(_proposal(actor, proposal))
    session.flush()
    _protect(session, actor, dispute, "item.level_proposed")
    return dispute


def decide(session: Session, actor: str, dispute: LevelDispute, level: Level | str, note: str) -> LevelDispute:
    """The deciding authority's level becomes every copy's level; the protection of the dispute ends.

    A classifier records it, never the person who recorded the dispute; every copy must already be where
    the decided level may be (as any change of level, Art. 27(6))."""
    decider = lookup.person(session, actor)
    rules.has_role(decider, "classifier")
    rules.active_person(decider)
    if dispute.state != "open":
        raise rules.refuse("dispute.state", f"dispute {dispute.id} was decided.")
    if dispute.opened_by == actor:
        raise rules.refuse("dispute.self_decision", f"{actor} recorded dispute {dispute.id}.")
    if not note.strip():
        raise InvalidInput("note", "a decision gives its grounds")
    decided = validate.level(level)
    members = copies(session, dispute.register_number)
    for item in members:
        if item.venue is not None:
            rules.placement(int(decided), item.venue)
    dispute.state = "decided"
    dispute.decided_level = int(decided)
    dispute.decided_by = actor
    dispute.decided_at = journal.now_utc()
    dispute.decision_note = note
    for item in members:
        before = Level(item.level).label
        protected = item.effective_level
        item.level = int(decided)
        item.disputed_level = None
        if item.effective_level != protected:
            item.label_out_of_date = True
        session.flush()
        journal.append(
            session,
            actor,
            "item.dispute_decided",
            f"item:{_key(item)}",
            {
                "dispute": dispute.id,
                "before": before,
                "protected_at": Level(protected).label,
                "level": decided.label,
                "note": note,
            },
        )
    return dispute

"""The register's rules as small checks that raise RuleViolation. Article numbers: 2024 regulations.

`CATALOGUE` names each rule of the register's records (seizures, inspections, disputes, labels, access,
transfers, registration) once: a stable id, where it comes from, and the sentence a guard console or
an error shows. `refuse` builds the RuleViolation for one of them with the specifics of the case.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from registry.errors import RuleViolation
from registry.levels import Level
from registry.models import Approval, Group, Item, Person, Venue


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    source: str  # article of the 2024 regulations ("Art."), the counter-espionage provisions ("CE Art.")
    sentence: str


CATALOGUE: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("item.title_required", "Art. 27(2)", "An item is registered with a title."),
        Rule("item.originating_unit_required", "Art. 27(2)", "An item is registered with its originating unit."),
        Rule("approval.kind", "Art. 27(3)(5), 29", "The approval is for another kind of action."),
        Rule("approval.state", "Art. 27(3)(5), 29", "Only an approved approval allows the action."),
        Rule("approval.item", "Art. 27(3)(5), 29", "The approval does not cover this item."),
        Rule("approval.window", "Art. 27(3)(5), 29", "The approval is outside its time window."),
        Rule("approval.used_up", "Art. 27(3)(5), 29", "The approval has no uses left."),
        Rule(
            "transfer.top_secret_designated",
            "Art. 29(1)",
            "A top-secret transfer needs an approved transfer approval naming its designated sender and receiver.",
        ),
        Rule("transfer.destination", "Art. 29(1)", "The transfer goes elsewhere than its approval names."),
        Rule("seizure.quantity", "Art. 62", "A seizure records how many media were seized."),
        Rule("seizure.source", "Art. 62", "A seizure records where the media came from."),
        Rule("seizure.spread", "Art. 62", "A seizure records how far the secrets may have spread."),
        Rule("seizure.seized_by", "Art. 62", "A seizure records who seized the media."),
        Rule("seizure.level", "Art. 62", "A seizure is recorded at the level of the highest item it covers."),
        Rule("seizure.item_status", "Art. 62", "Only an item still held by the unit can be recorded as seized."),
        Rule("official.identification", "CE Art. 25", "An outside official is recorded by name and identification."),
        Rule("official.listed_twice", "CE Art. 25", "Each official is listed once."),
        Rule("inspection.two_inspectors", "CE Art. 25", "An inspection is carried out by at least two inspectors."),
        Rule("inspection.subject", "CE Art. 25", "An inspection record says what was inspected."),
        Rule("dispute.already_open", "Art. 26", "This item's level is already in dispute; add a proposal to it."),
        Rule("dispute.no_difference", "Art. 26", "A dispute proposes a level other than the one registered."),
        Rule("dispute.state", "Art. 26", "This dispute has already been decided."),
        Rule(
            "dispute.open",
            "Art. 26",
            "While its level is disputed an item's level changes only by deciding the dispute.",
        ),
        Rule("dispute.self_decision", "Art. 26", "A dispute is decided by someone other than who recorded it."),
        Rule("label.unreadable", "Art. 21", "The label could not be read from the image; take another photo."),
        Rule("label.disagrees", "Art. 21", "The label does not agree with the register; print a new label."),
        Rule("access.clearance", "Art. 20", "The reader's clearance is below the item's level."),
        Rule("access.scope", "Art. 20", "The reader is outside the item's knowledge scope."),
    )
}


def refuse(rule_id: str, detail: str = "", details: list[str] | None = None) -> RuleViolation:
    """The violation of a catalogued rule: its sentence, then what happened in this case."""
    rule = CATALOGUE[rule_id]
    message = f"{rule.sentence} {detail}".strip()
    return RuleViolation(rule.id, message, details=details)


def placement(level: int, venue: Venue) -> None:
    """Art. 27(6), 29(3): only in a venue whose ceiling covers the item; top secret only where designated."""
    if level > venue.ceiling:
        raise RuleViolation(
            "venue.ceiling",
            f"a {Level(level).label} item may not be placed in {venue.code} (ceiling {Level(venue.ceiling).label})",
        )
    if level == Level.TOP_SECRET and not venue.top_secret_designated:
        raise RuleViolation(
            "venue.top_secret_designated",
            f"a top_secret item may only be in a venue designated for top secret; {venue.code} is not",
        )


def clearance(people: Iterable[Person], items: Iterable[Item], rule: str = "approval.clearance") -> None:
    """Art. 20: whoever is named for an item holds clearance at least the item's level."""
    needed = max((i.effective_level for i in items), default=0)
    short = [p.username for p in people if p.clearance < needed]
    if short:
        raise RuleViolation(
            rule,
            f"clearance below {Level(needed).label}: {', '.join(sorted(short))}",
            details=sorted(short),
        )


def distinct_approver(requester: Person, approver: Person, what: str = "request") -> None:
    """A request is never approved by its requester (domain-rules 7)."""
    if requester.id == approver.id:
        raise RuleViolation("approval.self_approval", f"{approver.username} may not approve their own {what}")


def approver_not_covered(approver: Person, people: Iterable[Person], groups: Iterable[Group]) -> None:
    """Nobody grants an approval that covers himself: not when he is named on it, nor when a group named on it
    includes him (domain-rules 7, issue 15). Group membership is taken as it stands at the decision."""
    if any(p.id == approver.id for p in people):
        raise RuleViolation("approval.approver_named", f"{approver.username} is named on this request")
    via = sorted(g.name for g in groups if any(m.id == approver.id for m in g.members))
    if via:
        raise RuleViolation(
            "approval.approver_named",
            f"{approver.username} is a member of {', '.join(via)}, named on this request",
            details=via,
        )


def has_role(person: Person, role: str) -> None:
    if role not in person.role_names:
        raise RuleViolation("person.role", f"{person.username} does not hold the {role} role")


def active_person(person: Person) -> None:
    if person.status not in ("active", "departing"):
        raise RuleViolation("person.status", f"{person.username} is {person.status}")


def usable_approval(approval: Approval, kind: str, items: Iterable[Item], now: dt.datetime) -> None:
    """The approval allows `kind` for every one of `items` at `now`: approved, covering, in window, not used up."""
    if approval.kind != kind:
        raise refuse("approval.kind", f"{approval.ref} is for {approval.kind}, not {kind}.")
    if approval.state != "approved":
        raise refuse("approval.state", f"{approval.ref} is {approval.state}.")
    covered = {i.id for i in approval.items}
    outside = sorted(f"{i.register_number}/{i.copy_number}" for i in items if i.id not in covered)
    if outside:
        raise refuse("approval.item", f"{approval.ref} does not cover {', '.join(outside)}.", details=outside)
    if not approval.valid_from <= now <= approval.valid_until:
        window = f"{approval.valid_from.isoformat()} to {approval.valid_until.isoformat()}"
        raise refuse("approval.window", f"{approval.ref} is valid from {window}.")
    if approval.uses_left <= 0:
        raise refuse("approval.used_up", f"{approval.ref} has been used up.")

"""The register's rules as small checks that raise RuleViolation. Article numbers: 2024 regulations."""

from __future__ import annotations

from collections.abc import Iterable

from registry.errors import RuleViolation
from registry.levels import Level
from registry.models import Group, Item, Person, Venue


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

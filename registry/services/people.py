"""People: creation and changes (roles, badges, clearance), and the departure checklist (Art. 53)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import journal, validate
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import ROLES, Badge, Group, Item, Person, PersonRole

HELD_STATUSES = ("active", "in_transit", "destruction_failed")


@dataclass(frozen=True, slots=True)
class PersonData:
    username: str
    name: str
    clearance: Level | str
    roles: tuple[str, ...] = ("custodian",)
    badges: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    visitor: bool = False
    title: str = ""
    organisation: str = ""


def _group(session: Session, name: str) -> Group:
    found = session.execute(select(Group).where(Group.name == name)).scalar()
    if found is None:
        found = Group(name=name)
        session.add(found)
    return found


def _badge_free(session: Session, number: str, person_id: int | None) -> None:
    owner = session.execute(select(Badge).where(Badge.number == number)).scalar()
    if owner is not None and owner.person_id != person_id:
        holder = owner.person.username
        raise RuleViolation("person.badge_unique", f"badge {number} already belongs to {holder}")


def create(session: Session, actor: str, data: PersonData) -> Person:
    if not data.username.strip():
        raise InvalidInput("username", "must not be empty")
    if session.execute(select(Person.id).where(Person.username == data.username)).first():
        raise RuleViolation("person.username_unique", f"username {data.username} is taken")
    for role in data.roles:
        validate.choice(role, ROLES, "roles")
    if len(set(data.badges)) != len(data.badges):
        raise RuleViolation("person.badge_unique", "the same badge number is listed twice")
    for number in data.badges:
        _badge_free(session, number, None)
    person = Person(
        username=data.username,
        name=data.name,
        title=data.title,
        organisation=data.organisation,
        clearance=int(validate.level(data.clearance, "clearance")),
        visitor=data.visitor,
        status="active",
    )
    person.roles = [PersonRole(role=r) for r in sorted(set(data.roles))]
    person.badges = [Badge(number=b, active=True) for b in data.badges]
    person.groups = [_group(session, g) for g in data.groups]
    session.add(person)
    session.flush()
    journal.append(session, actor, "person.created", f"person:{person.username}", describe(person))
    return person


def update(session: Session, actor: str, person: Person, data: PersonData) -> bool:
    """Give a registered person the values of `data` (same username); False when nothing differs.

    Refused when the new clearance is below an item the person holds (`custody.clearance`), when it would
    leave the site without an active administrator (`person.last_administrator`), or for a badge that is
    someone else's (`person.badge_unique`). Badges taken away are deleted: a badge is a card number."""
    if data.username != person.username:
        raise InvalidInput("username", "a username does not change; register a new person instead")
    for role in data.roles:
        validate.choice(role, ROLES, "roles")
    if len(set(data.badges)) != len(data.badges):
        raise RuleViolation("person.badge_unique", "the same badge number is listed twice")
    for number in data.badges:
        _badge_free(session, number, person.id)
    clearance = int(validate.level(data.clearance, "clearance"))
    above = [i for i in departure_checklist(session, person) if i.effective_level > clearance]
    if above:
        listed = sorted(f"{i.register_number}/{i.copy_number}" for i in above)
        raise RuleViolation(
            "custody.clearance",
            f"{person.username} holds {', '.join(listed)} above {Level(clearance).label}; hand them over first",
            details=listed,
        )
    if "administrator" in person.role_names and "administrator" not in data.roles:
        others = session.execute(
            select(func.count())
            .select_from(PersonRole)
            .join(Person)
            .where(PersonRole.role == "administrator", Person.id != person.id, Person.status == "active")
        ).scalar_one()
        if not others:
            raise RuleViolation(
                "person.last_administrator", f"{person.username} is the only active administrator", field="roles"
            )
    before = {**describe(person), "title": person.title, "organisation": person.organisation}
    person.name = data.name
    person.title = data.title
    person.organisation = data.organisation
    person.clearance = clearance
    person.visitor = data.visitor
    if person.role_names != set(data.roles):
        person.roles = [PersonRole(role=r) for r in sorted(set(data.roles))]
    kept = {b.number: b for b in person.badges}
    if set(kept) != set(data.badges):
        person.badges = [kept.get(n) or Badge(number=n, active=person.status == "active") for n in data.badges]
    if {g.name for g in person.groups} != set(data.groups):
        person.groups = [_group(session, g) for g in data.groups]
    session.flush()
    after = {**describe(person), "title": person.title, "organisation": person.organisation}
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not changed:
        return False
    journal.append(session, actor, "person.updated", f"person:{person.username}", changed)
    return True


def describe(person: Person) -> dict[str, object]:
    """No secrets here: the password hash is never part of a description."""
    return {
        "username": person.username,
        "name": person.name,
        "clearance": Level(person.clearance).label,
        "roles": sorted(person.role_names),
        "badges": [b.number for b in person.badges],
        "groups": sorted(g.name for g in person.groups),
        "status": person.status,
        "visitor": person.visitor,
    }


def departure_checklist(session: Session, person: Person) -> list[Item]:
    """Everything that must be returned before the person may be signed off."""
    return list(
        session.execute(
            select(Item)
            .where(Item.custodian_id == person.id, Item.status.in_(HELD_STATUSES))
            .order_by(Item.register_number, Item.copy_number)
        ).scalars()
    )


def begin_departure(session: Session, actor: str, person: Person) -> list[Item]:
    person.status = "departing"
    session.flush()
    held = departure_checklist(session, person)
    journal.append(
        session,
        actor,
        "person.departing",
        f"person:{person.username}",
        {"items_to_return": [f"{i.register_number}/{i.copy_number}" for i in held]},
    )
    return held


def sign_off(session: Session, actor: str, person: Person, separation_until: dt.date | None = None) -> Person:
    """Art. 53: refused while anything is in the person's custody; then badges are revoked."""
    held = departure_checklist(session, person)
    if held:
        listed = [f"{i.register_number}/{i.copy_number} {i.title}" for i in held]
        raise RuleViolation(
            "person.items_in_custody",
            f"{person.username} still holds {len(held)} item(s): {'; '.join(listed)}",
            details=listed,
        )
    person.status = "separation" if separation_until else "departed"
    person.separation_until = separation_until
    for badge in person.badges:
        badge.active = False
    session.flush()
    journal.append(
        session,
        actor,
        "person.departed",
        f"person:{person.username}",
        {"separation_until": separation_until.isoformat() if separation_until else None},
    )
    return person


def set_password_hash(session: Session, actor: str, person: Person, password_hash: str) -> None:
    person.password_hash = password_hash
    session.flush()
    # The journal records that the credential changed, never the credential.
    journal.append(session, actor, "person.password_set", f"person:{person.username}", {})

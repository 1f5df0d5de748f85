"""Find register objects by their natural keys, raising NotFound with the key that named nothing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import NotFound
from registry.models import Approval, Badge, Device, Group, Item, Person, Portal, Venue


def person(session: Session, username: str) -> Person:
    found = session.execute(select(Person).where(Person.username == username)).scalar()
    if found is None:
        raise NotFound("person", username)
    return found


def person_by_badge(session: Session, number: str) -> Person:
    badge = session.execute(select(Badge).where(Badge.number == number)).scalar()
    if badge is None:
        raise NotFound("badge", number)
    return badge.person


def venue(session: Session, code: str) -> Venue:
    found = session.execute(select(Venue).where(Venue.code == code)).scalar()
    if found is None:
        raise NotFound("venue", code)
    return found


def portal(session: Session, code: str) -> Portal:
    found = session.execute(select(Portal).where(Portal.code == code)).scalar()
    if found is None:
        raise NotFound("portal", code)
    return found


def device(session: Session, name: str) -> Device:
    found = session.execute(select(Device).where(Device.name == name)).scalar()
    if found is None:
        raise NotFound("device", name)
    return found


def group(session: Session, name: str) -> Group:
    found = session.execute(select(Group).where(Group.name == name)).scalar()
    if found is None:
        raise NotFound("group", name)
    return found


def item(session: Session, key: str | int, copy_number: int | None = None) -> Item:
    """By database id (int), by EPC, by "register/copy", or by register number (and copy number, default the
    first copy)."""
    if isinstance(key, str) and copy_number is None:
        number, _, copy = key.rpartition("/")
        if number and copy.isdigit():
            key, copy_number = number, int(copy)
    if isinstance(key, int):
        found = session.get(Item, key)
    else:
        query = select(Item).where((Item.register_number == key) | (Item.epc == key.upper()))
        if copy_number is not None:
            query = query.where(Item.copy_number == copy_number)
        found = session.execute(query.order_by(Item.copy_number).limit(1)).scalar()
    if found is None:
        raise NotFound("item", key)
    return found


def approval(session: Session, ref: str) -> Approval:
    found = session.execute(select(Approval).where(Approval.ref == ref)).scalar()
    if found is None:
        raise NotFound("approval", ref)
    return found

"""Find register objects by their natural keys, raising NotFound with the key that named nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from registry.errors import NotFound
from registry.models import Approval, Device, Group, Item, Person, Portal, Venue


def _one(session: Session, column: InstrumentedAttribute[str], key: str, kind: str) -> Any:
    found = session.execute(select(column.class_).where(column == key)).scalar()
    if found is None:
        raise NotFound(kind, key)
    return found


def person(session: Session, username: str) -> Person:
    return _one(session, Person.username, username, "person")


def venue(session: Session, code: str) -> Venue:
    return _one(session, Venue.code, code, "venue")


def portal(session: Session, code: str) -> Portal:
    return _one(session, Portal.code, code, "portal")


def device(session: Session, name: str) -> Device:
    return _one(session, Device.name, name, "device")


def group(session: Session, name: str) -> Group:
    return _one(session, Group.name, name, "group")


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
    return _one(session, Approval.ref, ref, "approval")

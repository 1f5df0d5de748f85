"""Seized media (Art. 62): registered with level, quantity, source, spread and who seized them.

A seizure may cover items of the register (the unit's own media recovered from whoever held them): those
become `seized`, and the seizure is recorded at least at the highest level among them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry import journal, rules, validate
from registry.errors import InvalidInput
from registry.levels import Level
from registry.models import Seizure, SeizureOfficial
from registry.services import lookup, officials
from registry.services.officials import Official

# An item the unit still answers for; anything else (destroyed, declassified, already seized) cannot be seized.
SEIZABLE = ("active", "in_transit", "destruction_failed")


@dataclass(frozen=True, slots=True)
class SeizureData:
    description: str
    level: Level | str
    quantity: int
    source: str  # from whom and where the media were obtained
    spread: str  # how far their contents may have spread ("none known" is an answer; blank is not)
    seized_by: tuple[Official, ...]
    seized_at: dt.datetime
    venue: str | None = None  # where the seized media are now held
    items: tuple[str, ...] = ()  # register items among them


def record_seizure(session: Session, actor: str, data: SeizureData) -> Seizure:
    level = validate.level(data.level)
    if not data.description.strip():
        raise InvalidInput("description", "say what was seized")
    if data.quantity < 1:
        raise rules.refuse("seizure.quantity", f"{data.quantity} is not a number of media.")
    if not data.source.strip():
        raise rules.refuse("seizure.source")
    if not data.spread.strip():
        raise rules.refuse("seizure.spread")
    if not data.seized_by:
        raise rules.refuse("seizure.seized_by")
    seizers = officials.resolve(session, data.seized_by, "seized_by")
    officials.distinct(seizers, "seized_by")
    covered = [lookup.item(session, key) for key in data.items]
    if len({i.id for i in covered}) != len(covered):
        raise InvalidInput("items", "an item is listed twice")
    if len(covered) > data.quantity:
        raise rules.refuse("seizure.quantity", f"{len(covered)} register items cannot be among {data.quantity}.")
    for item in covered:
        if item.status not in SEIZABLE:
            raise rules.refuse("seizure.item_status", f"{item.register_number}/{item.copy_number} is {item.status}.")
    highest = max((i.effective_level for i in covered), default=Level.UNCLASSIFIED)
    if level < highest:
        raise rules.refuse("seizure.level", f"{Level(highest).label} items cannot be seized as {level.label}.")
    venue = lookup.venue(session, data.venue) if data.venue else None
    if venue is not None:
        rules.placement(int(level), venue)
    seizure = Seizure(
        description=data.description,
        level=int(level),
        quantity=data.quantity,
        source=data.source,
        spread=data.spread,
        seized_at=data.seized_at,
        venue=venue,
        recorded_by=actor,
        recorded_at=journal.now_utc(),
        officials=[
            SeizureOfficial(
                person=o.person,
                name=o.name,
                organisation=o.organisation,
                identification=o.identification,
            )
            for o in seizers
        ],
        items=covered,
    )
    session.add(seizure)
    session.flush()
    journal.append(session, actor, "seizure.recorded", f"seizure:{seizure.id}", describe(seizure))
    for item in covered:
        before = item.status
        item.status = "seized"
        if venue is not None:
            item.venue = venue
        session.flush()
        journal.append(
            session,
            actor,
            "item.seized",
            f"item:{item.register_number}/{item.copy_number}",
            {"seizure": seizure.id, "status_before": before, "venue": venue.code if venue else None},
        )
    return seizure


def describe(seizure: Seizure) -> dict[str, object]:
    return {
        "description": seizure.description,
        "level": Level(seizure.level).label,
        "quantity": seizure.quantity,
        "source": seizure.source,
        "spread": seizure.spread,
        "seized_at": seizure.seized_at.isoformat(),
        "seized_by": [officials.label(o) for o in seizure.officials],
        "venue": seizure.venue.code if seizure.venue else None,
        "items": [f"{i.register_number}/{i.copy_number}" for i in seizure.items],
    }

"""Movements: an item seen crossing a portal, as the tracking engine decided it from the RFID reads.

The register records where the item now is and journals the crossing (action `movement.crossed`, the
payload `api/epcis.py` exports). A crossing is a physical fact: it is journaled even when the register
cannot follow it (unknown item or venue, a destroyed item's tag), and a crossing into a venue whose
ceiling the item exceeds still moves it there, with the breached rule named in the entry (the engine
raised the alarm when it happened).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from registry import journal, rules
from registry.errors import RuleViolation
from registry.models import Item, JournalEntry, Venue


@dataclass(frozen=True, slots=True)
class Crossing:
    item_id: int
    item: str  # "register/copy" as the engine's snapshot named it
    epc: str
    portal: str
    from_venue: str  # venue code, or "outside" (outside the unit)
    to_venue: str
    to_venue_id: int | None  # None: outside the unit
    direction: str
    time_us: int
    emergency_release: bool  # the doors were released by a fire alarm


def record_crossing(session: Session, actor: str, crossing: Crossing, *, record: str = "") -> JournalEntry:
    """Move the item to the venue it entered (rules permitting) and journal the crossing; `record` is the
    id of the site record it came from."""
    notes: dict[str, str] = {}
    item = session.get(Item, crossing.item_id)
    venue = session.get(Venue, crossing.to_venue_id) if crossing.to_venue_id is not None else None
    if item is None:
        notes["refused"] = f"item.unknown: no item {crossing.item_id} in the register"
    elif item.status == "destroyed":
        notes["refused"] = f"item.destroyed: {crossing.item} is destroyed; a destroyed item does not move"
    elif crossing.to_venue_id is not None and venue is None:
        notes["refused"] = f"venue.unknown: no venue {crossing.to_venue_id} in the register"
    else:
        if venue is not None:
            try:
                rules.placement(item.effective_level, venue)
            except RuleViolation as exc:
                notes["breach"] = str(exc)
        item.venue_id = crossing.to_venue_id
        session.flush()
    payload: dict[str, object] = {**asdict(crossing), **notes}
    if record:
        payload["record"] = record
    return journal.append(session, actor, "movement.crossed", f"item:{crossing.item}", payload)

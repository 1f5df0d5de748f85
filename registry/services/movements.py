"""Movements: an item seen crossing a portal, as the tracking engine decided it from the RFID reads.

The register records where the item now is and journals the crossing (action `movement.crossed`, the
payload `api/epcis.py` exports). A crossing is a physical fact: it is journaled even when the register
cannot follow it (unknown item or venue, a destroyed item's tag), and a crossing into a venue whose
ceiling the item exceeds still moves it there, with the breached rule named in the entry (the engine
raised the alarm when it happened).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from sqlalchemy import select
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


_FIELDS = tuple(f.name for f in fields(Crossing))


def record_crossing(session: Session, actor: str, crossing: Crossing, *, record: str = "") -> JournalEntry:
    """Move the item to the venue it entered (rules permitting) and journal the crossing; `record` is the
    id of the site record it came from."""
    entry = session.get(JournalEntry, record_crossings(session, actor, [(crossing, record)]))
    assert entry is not None
    return entry


def record_crossings(session: Session, actor: str, crossings: Sequence[tuple[Crossing, str]]) -> int:
    """`record_crossing` for each (crossing, record id) in order, with the same rules and entries: their
    items and venues read in one query each, one flush and one append for all (the recorder's batches).
    Returns the last entry's sequence number; the entries are consecutive, in the crossings' order."""
    item_ids = {c.item_id for c, _ in crossings}
    venue_ids = {c.to_venue_id for c, _ in crossings if c.to_venue_id is not None}
    items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(item_ids)))}
    venues = {v.id: v for v in session.scalars(select(Venue).where(Venue.id.in_(venue_ids)))} if venue_ids else {}
    entries = []
    for crossing, record in crossings:
        payload: dict[str, object] = {name: getattr(crossing, name) for name in _FIELDS}  # asdict, less its deep copies
        payload.update(_move(crossing, items, venues))
        if record:
            payload["record"] = record
        entries.append((actor, "movement.crossed", f"item:{crossing.item}", payload))
    session.flush()
    return journal.append_many(session, entries)


def _move(crossing: Crossing, items: dict[int, Item], venues: dict[int, Venue]) -> dict[str, str]:
    """Follow the crossing in the register if it can; the notes its entry carries (refused, breach)."""
    item = items.get(crossing.item_id)
    venue = venues.get(crossing.to_venue_id) if crossing.to_venue_id is not None else None
    if item is None:
        return {"refused": f"item.unknown: no item {crossing.item_id} in the register"}
    if item.status == "destroyed":
        return {"refused": f"item.destroyed: {crossing.item} is destroyed; a destroyed item does not move"}
    if crossing.to_venue_id is not None and venue is None:
        return {"refused": f"venue.unknown: no venue {crossing.to_venue_id} in the register"}
    notes = {}
    if venue is not None:
        try:
            rules.placement(item.effective_level, venue)
        except RuleViolation as exc:
            notes["breach"] = str(exc)
    item.venue_id = crossing.to_venue_id
    return notes

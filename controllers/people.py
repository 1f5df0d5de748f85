"""People in venues at a running site: the engine's presence changes and items brought in, as the typed
records the recorder makes durable once (controllers.records), and a guard's anti-passback forgive.

The portal controller calls `records` in each tick, so these records share the tick's fsync with the
decisions they came from; the register keeps the places, the access records and a meeting's items.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controllers.records import ItemBroughtIn, PassbackForgiven, PersonMoved, Record
from tracking.events import ForgiveRequest
from tracking.results import Output

if TYPE_CHECKING:
    from controllers.portal import Names, PortalController

# An access panel's reader 1 is the one outside the door (an entry); reader 0, inside, asks for an exit.
ENTRY_READER = 1


def direction(reader: int) -> str:
    """The way a badge at a panel's reader goes through its portal."""
    return "entry" if reader == ENTRY_READER else "exit"


def records(out: Output, names: Names) -> list[Record]:
    """The tick's people records: who went through which portal, and which items they brought in."""
    found: list[Record] = [
        PersonMoved(
            person_id=c.person_id,
            person=names.people.get(c.person_id, str(c.person_id)),
            portal_id=c.portal_id,
            portal=names.portals.get(c.portal_id, str(c.portal_id)),
            from_venue_id=c.from_venue_id,
            to_venue_id=c.to_venue_id,
            time_us=c.time_us,
            cause=c.cause,
            uncertain=c.uncertain,
            item_ids=c.item_ids,
        )
        for c in out.presence
    ]
    found += [
        ItemBroughtIn(
            person_id=b.person_id,
            person=names.people.get(b.person_id, str(b.person_id)),
            item_id=b.item_id,
            item=names.items.get(b.item_id, str(b.item_id)),
            portal_id=b.portal_id,
            venue_id=b.venue_id,
            time_us=b.time_us,
        )
        for b in out.brought
    ]
    return found


def forgive(portals: PortalController, person: str, guard: str, reason: str) -> None:
    """A guard forgives a person's anti-passback state: journaled (durable) before the engine applies it.

    KeyError for a person or guard the site does not know; ValueError without a reason or for oneself."""
    if not reason.strip():
        raise ValueError("a forgive needs a written reason")
    ids = {name: person_id for person_id, name in portals.names.people.items()}
    if person not in ids or guard not in ids:
        raise KeyError(person if person not in ids else guard)
    if person == guard:
        raise ValueError("a guard does not forgive their own anti-passback state")
    now = portals.clock()
    with portals.engine_lock:
        portals.recorder.accept([PassbackForgiven(guard=guard, person=person, reason=reason.strip(), time_us=now)])
        portals.engine.on_forgive(ForgiveRequest(ids[person], ids[guard], now, reason.strip()))

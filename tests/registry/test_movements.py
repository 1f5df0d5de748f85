"""The movement service, on SQLite and PostgreSQL, with rules from domain-rules 3-4: a crossing is a physical
fact and is always journaled; the register follows the item unless it cannot (unknown item or venue, a
destroyed item), and a crossing into a venue the item may not rest in moves it there with the rule named."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import db, journal
from registry.models import Item, Venue
from registry.services import lookup
from registry.services.movements import Crossing, record_crossing


def _crossing(session: Session, item_key: str, to_venue: str | None, **changes: object) -> Crossing:
    item = lookup.item(session, item_key)
    venue = session.execute(select(Venue).where(Venue.code == to_venue)).scalar() if to_venue else None
    values: dict[str, object] = {
        "item_id": item.id, "item": f"{item.register_number}/{item.copy_number}", "epc": item.epc,
        "portal": "archive-door", "from_venue": item.venue.code if item.venue else "outside",
        "to_venue": to_venue or "outside", "to_venue_id": venue.id if venue else None, "direction": "exit",
        "time_us": 1, "emergency_release": False,
    }
    return Crossing(**{**values, **changes})  # type: ignore[arg-type]


def _venue(factory: sessionmaker[Session], key: str) -> str | None:
    with factory() as session:
        item = lookup.item(session, key)
        return item.venue.code if item.venue else None


def test_a_crossing_moves_the_item_and_is_journaled(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        entry = record_crossing(session, "system", _crossing(session, "S-2026-001", "corridor"), record="s/n/1")
    assert entry.action == "movement.crossed" and entry.subject == "item:S-2026-001/1"
    payload = json.loads(entry.payload)
    assert payload["record"] == "s/n/1" and payload["to_venue"] == "corridor" and "refused" not in payload
    assert _venue(site, "S-2026-001") == "corridor"
    with db.transaction(site) as session:
        record_crossing(session, "system", _crossing(session, "S-2026-001", None))
    assert _venue(site, "S-2026-001") is None  # out of the unit


def test_a_secret_item_carried_into_a_confidential_room_is_there_with_the_rule_named(
    site: sessionmaker[Session],
) -> None:
    with db.transaction(site) as session:
        entry = record_crossing(session, "system", _crossing(session, "S-2026-001", "reading-room"))
    assert "venue.ceiling" in json.loads(entry.payload)["breach"]
    assert _venue(site, "S-2026-001") == "reading-room"


def test_what_the_register_cannot_follow_is_journaled_and_refused(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        disk = session.execute(select(Item).where(Item.register_number == "S-2026-002")).scalar_one()
        disk.status = "destroyed"
        refused = [
            record_crossing(session, "system", _crossing(session, "S-2026-002", "corridor")),
            record_crossing(session, "system", _crossing(session, "S-2026-001", "corridor", to_venue_id=99_999)),
            record_crossing(session, "system", _crossing(session, "S-2026-001", "corridor", item_id=99_999)),
        ]
    reasons = [json.loads(e.payload)["refused"].split(":")[0] for e in refused]
    assert reasons == ["item.destroyed", "venue.unknown", "item.unknown"]
    assert _venue(site, "S-2026-002") == "archive" and _venue(site, "S-2026-001") == "archive"
    with site() as session:
        assert journal.verify(session).ok

"""People in venues in the register, on SQLite and PostgreSQL: anti-passback in site files, last known places
and what the engine compiles from them, the muster list and its journaled export, a meeting's items and
report, readings refused where the register would not allow them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.compile import site_model
from registry.errors import NotFound, RuleViolation
from registry.models import Item, JournalEntry, PresenceEntry
from registry.services import lookup, presence, venues
from registry.sitefile import SiteFileError, export, load
from tests.registry.conftest import EXAMPLE_SITE


def now_us() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)


def move(session: Session, username: str, venue: str | None, cause: str = "badge") -> None:
    person = lookup.person(session, username)
    venue_id = lookup.venue(session, venue).id if venue else None
    portal = lookup.portal(session, "reading-door")
    moved = presence.Move(person.id, portal.id, None, venue_id, now_us(), cause, cause != "badge")
    presence.record_move(session, moved)


def test_anti_passback_in_a_site_file_round_trips_and_a_wrong_mode_names_its_line(
        site: sessionmaker[Session], tmp_path: Path) -> None:
    door = 'outside = "corridor"\n'
    text = EXAMPLE_SITE.read_text().replace(door, door + 'anti_passback = "refuse"\n', 1)
    path = tmp_path / "site.toml"
    path.write_text(text)
    with db.transaction(site) as session:
        load(session, "site-loader", path)
    with site() as session:
        assert 'anti_passback = "refuse"' in export(session)
        modes = {p.portal_id: p.anti_passback for p in site_model(session).portals}
    assert sorted(modes.values()).count("refuse") == 1
    path.write_text(text.replace('anti_passback = "refuse"', 'anti_passback = "sometimes"'))
    with pytest.raises(SiteFileError) as caught, db.transaction(site) as session:
        load(session, "site-loader", path)
    assert "anti_passback" in str(caught.value)


def test_places_are_kept_one_per_person_and_compiled_for_the_engine(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        move(session, "alice", "reading-room")
        move(session, "alice", "corridor")
        move(session, "bob", None, "fire_release")
        visitor = lookup.person(session, "victor")
    with site() as session:
        rows = session.execute(select(PresenceEntry).order_by(PresenceEntry.person_id)).scalars().all()
        model = site_model(session)
        corridor = lookup.venue(session, "corridor").id
    assert len(rows) == 2
    places = {p.person_id: (p.venue_id, p.uncertain) for p in model.presence}
    assert sorted(places.values(), key=str) == sorted([(corridor, False), (None, True)], key=str)
    assert {p.person_id for p in model.people if p.visitor} == {visitor.id}  # Victor Visitor, under escort
    with pytest.raises(NotFound), db.transaction(site) as session:
        presence.record_move(session, presence.Move(999_999, 1, None, None, now_us()))


def test_the_muster_list_and_its_export(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        move(session, "alice", "reading-room")
        move(session, "bob", "reading-room", "fire_release")
        move(session, "carol", None)
    with site() as session:
        found = presence.muster(session)
    room = next(v for v in found.venues if v.code == "reading-room")
    assert [(p.username, p.uncertain) for p in room.people] == [("alice", False), ("bob", True)]
    assert all("carol" not in [p.username for p in v.people] for v in found.venues)
    assert room.items, "the items registered in the reading room are listed too"
    with db.transaction(site) as session:
        _, seq = presence.export_muster(session, "gus", "drill")
    with site() as session:
        entry = session.get(JournalEntry, seq)
    assert entry is not None and entry.action == "muster.exported" and entry.actor == "gus"
    body = json.loads(entry.payload)
    assert {"venue": "reading-room", "people": ["alice", "bob"], "uncertain": ["bob"]}.items() <= next(
        v for v in body["venues"] if v["venue"] == "reading-room").items()


def test_a_meeting_records_items_in_its_window_only_and_its_report_lists_them(site: sessionmaker[Session]) -> None:
    start = dt.datetime.now(dt.UTC)
    with db.transaction(site) as session:
        meeting = venues.create_meeting(session, "admin", venues.MeetingData(
            "Survey", "reading-room", "confidential", start - dt.timedelta(minutes=1), start + dt.timedelta(hours=1),
            ("bob",)))
        meeting_id = meeting.id
        bob, item = lookup.person(session, "bob"), lookup.item(session, "C-2026-001")
        door, room = lookup.portal(session, "reading-door"), lookup.venue(session, "reading-room")
        now = now_us()
        presence.brought_to_meeting(session, presence.Brought(bob.id, item.id, door.id, room.id, now), "in")
        later = now + 2 * 3600 * 1_000_000  # after the meeting: not one of its items
        presence.brought_to_meeting(session, presence.Brought(bob.id, item.id, door.id, room.id, later), "late")
        move_out = presence.Move(bob.id, door.id, room.id, lookup.venue(session, "corridor").id, now + 1)
        presence.carried_out(session, "system", move_out, item.id, "out")
    with site() as session:
        report = presence.meeting_report(session, meeting_id)
    assert report.participants == ("bob",) and report.venue == "reading-room"
    assert [(i.item, i.person, i.direction) for i in report.items] == [("C-2026-001/1", "bob", "in"),
                                                                      ("C-2026-001/1", "bob", "out")]


def test_a_reading_where_the_register_would_not_allow_it_is_refused(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        top = next(i for i in session.execute(select(Item)).scalars() if i.effective_level == 4)
        someone = lookup.person(session, "alice")
        door, room = lookup.portal(session, "reading-door"), lookup.venue(session, "reading-room")
        brought = presence.Brought(someone.id, top.id, door.id, room.id, now_us())
        with pytest.raises(RuleViolation):  # a top-secret item may not be read in the reading room
            presence.read_in_venue(session, "system", brought, "test")

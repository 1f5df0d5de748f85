"""People in venues through the API: the muster list and its page, its journaled export, forgive, and a
meeting's report (the places come from the register, as the site's recorder keeps them)."""

from __future__ import annotations

import datetime as dt
import json
import time

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import db, journal
from registry.models import JournalEntry, Portal, Venue
from registry.services import lookup, presence, venues
from tests.api.conftest import Tokens, browser_login


def place(factory: sessionmaker[Session], username: str, venue: str | None, cause: str = "badge") -> None:
    """What the recorder does with a PersonMoved record."""
    with db.transaction(factory) as session:
        person = lookup.person(session, username)
        venue_id = session.execute(select(Venue.id).where(Venue.code == venue)).scalar() if venue else None
        portal = session.execute(select(Portal.id).where(Portal.code == "reading-door")).scalar_one()
        presence.record_move(session, presence.Move(person.id, portal, None, venue_id, time.time_ns() // 1000, cause,
                                                    cause != "badge"))


def test_the_muster_list_names_people_and_items_per_venue_and_follows_them_out(
        client: TestClient, tokens: Tokens, factory: sessionmaker[Session]) -> None:
    place(factory, "alice", "reading-room")
    place(factory, "bob", "archive", "fire_release")
    with db.transaction(factory) as session:
        journal.append(session, "system", "site.fire_release", "panel:main-exit-panel", {})
    answer = client.get("/api/guard/muster", headers=tokens["gus"])
    assert answer.status_code == 200, answer.text
    muster = answer.json()
    assert muster["fire_release"] is True
    people = {v["venue"]: [(p["username"], p["uncertain"]) for p in v["people"]] for v in muster["venues"]}
    assert people["reading-room"] == [("alice", False)] and people["archive"] == [("bob", True)]
    assert all(i["level"] for v in muster["venues"] for i in v["items"])  # items last known inside, too
    place(factory, "alice", None)  # out of the unit
    again = client.get("/api/guard/muster", headers=tokens["audrey"]).json()
    assert "alice" not in {p["username"] for v in again["venues"] for p in v["people"]}


def test_the_export_is_a_journal_entry_and_only_a_guard_makes_it(
        client: TestClient, tokens: Tokens, factory: sessionmaker[Session]) -> None:
    place(factory, "bob", "archive")
    answer = client.post("/api/guard/muster/export", headers=tokens["gus"], json={"note": "end of drill"})
    assert answer.status_code == 201, answer.text
    with factory() as session:
        seq = answer.json()["journal_seq"]
        entry = session.execute(select(JournalEntry).where(JournalEntry.seq == seq)).scalar_one()
    payload = json.loads(entry.payload)
    assert entry.action == "muster.exported" and entry.actor == "gus" and payload["note"] == "end of drill"
    assert {"venue": "archive", "people": ["bob"], "uncertain": []}.items() <= next(
        v for v in payload["venues"] if v["venue"] == "archive").items()
    assert client.post("/api/guard/muster/export", headers=tokens["audrey"], json={}).status_code == 403


def test_the_muster_page_lists_the_people_and_links_from_the_guard_console(
        client: TestClient, factory: sessionmaker[Session]) -> None:
    place(factory, "alice", "reading-room")
    browser_login(client, "gus")
    assert 'href="/guard/muster"' in client.get("/guard").text
    page = client.get("/guard/muster")
    assert page.status_code == 200 and 'data-person="alice"' in page.text
    assert "Export as a journalled record" in page.text
    browser_login(client, "audrey")  # an auditor watches, never exports
    assert "Export as a journalled record" not in client.get("/guard/muster").text


def test_forgive_goes_to_the_site_with_the_guards_name(
        client: TestClient, tokens: Tokens, factory: sessionmaker[Session]) -> None:
    reason = {"reason": "came in behind a group"}
    answer = client.post("/api/guard/people/bob/forgive", headers=tokens["gus"], json=reason)
    assert answer.status_code == 204, answer.text
    deadline = time.monotonic() + 20
    while True:  # the running site's recorder delivers the record to the register
        with factory() as session:
            entry = session.execute(
                select(JournalEntry).where(JournalEntry.action == "presence.forgiven")
            ).scalar_one_or_none()
        if entry is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert entry is not None and entry.actor == "gus" and entry.subject == "person:bob"
    assert json.loads(entry.payload)["reason"] == "came in behind a group"
    assert client.post("/api/guard/people/nobody/forgive", headers=tokens["gus"], json=reason).status_code == 404
    blank = client.post("/api/guard/people/bob/forgive", headers=tokens["gus"], json={"reason": "   "})
    assert blank.status_code == 422


def test_a_meetings_report_lists_participants_and_items(
        client: TestClient, tokens: Tokens, factory: sessionmaker[Session]) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    with db.transaction(factory) as session:
        meeting = venues.create_meeting(session, "admin", venues.MeetingData(
            "Budget", "reading-room", "confidential", start, start + dt.timedelta(hours=1), ("bob", "alice")))
        meeting_id = meeting.id
        item = lookup.item(session, "C-2026-001")
        bob = lookup.person(session, "bob")
        portal = lookup.portal(session, "reading-door")
        room = lookup.venue(session, "reading-room")
        brought = presence.Brought(bob.id, item.id, portal.id, room.id, time.time_ns() // 1000)
        presence.brought_to_meeting(session, brought, "test")
    report = client.get(f"/api/admin/meetings/{meeting_id}/report", headers=tokens["audrey"])
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["participants"] == ["alice", "bob"]
    assert [(i["item"], i["person"], i["direction"]) for i in body["items"]] == [("C-2026-001/1", "bob", "in")]
    assert client.get("/api/admin/meetings/999/report", headers=tokens["audrey"]).status_code == 404

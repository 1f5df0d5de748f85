"""People in venues on a running site (SiteRuntime: the engine, the portal controller, the recorder and the
register), on SQLite and PostgreSQL and on both engine backends: badges from the panels' inside and
outside readers, the register's places surviving a restart, escorts, a meeting's participants and items,
the fire muster list, and the access records of readings and carry-outs."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus
from controllers.site import SiteRuntime
from firmware_bridge.events import CardRead, InputChange, TagBatch
from registry import db
from registry.models import ItemAccess, JournalEntry, Person, PresenceEntry, Venue
from registry.services import presence, venues
from registry.sitefile import load
from tests.registry.conftest import fresh_register
from tracking.model import EngineConfig

SITE = """
[site]
name = "People test"

[[venues]]
code = "corridor"
name = "Corridor"
ceiling = "secret"

[[venues]]
code = "room"
name = "Meeting room"
ceiling = "secret"

[[portals]]
code = "room-door"
name = "Room door"
inside = "room"
outside = "corridor"
anti_passback = "refuse"

[[portals]]
code = "main-exit"
name = "Main exit"
inside = "corridor"
outside = "outside"
x_m = 20.0

[[devices]]
name = "room-door-panel"
kind = "osdp_panel"
portal = "room-door"
transport = "pty"
address = 1
scbk_env = "CUSTODIAN_SCBK_ROOM"

[[devices]]
name = "room-door-reader"
kind = "llrp_reader"
portal = "room-door"
host = "127.0.0.1"
port = 5084
antennas = [{ number = 1, side = "inside" }, { number = 2, side = "outside" }]

[[devices]]
name = "main-exit-panel"
kind = "osdp_panel"
portal = "main-exit"
transport = "pty"
address = 2
scbk_env = "CUSTODIAN_SCBK_MAIN"

[[people]]
username = "erin"
clearance = "secret"
badges = ["1001"]

[[people]]
username = "vic"
clearance = "unclassified"
badges = ["1002"]
visitor = true

[[people]]
username = "carl"
clearance = "secret"
badges = ["1003"]

[[people]]
username = "gus"
clearance = "secret"
roles = ["guard"]
badges = ["1004"]

[[items]]
register_number = "P-1"
title = "Minutes"
kind = "paper"
level = "secret"
period_start = 2026-01-01
period_months = 120
originating_unit = "Test unit"
epc = "E28011700000020000000AB1"
venue = "corridor"
scope_people = ["carl", "erin"]
"""
EPC = "E28011700000020000000AB1"
ROOM_PANEL, EXIT_PANEL = "room-door-panel", "main-exit-panel"
INSIDE, OUTSIDE = 0, 1  # the panel's reader inside the door (exit) and outside it (entry)
CONFIG = EngineConfig(two_person_us=1_000_000)


def now_us() -> int:
    return time.time_ns() // 1000


def wait(condition: Callable[[], object], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture(params=["sqlite", "postgresql"])
def register(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    site_file = tmp_path / "site.toml"
    site_file.write_text(SITE)
    with fresh_register(request.param, tmp_path) as engine:
        factory = db.session_factory(engine)
        with db.transaction(factory) as session:
            load(session, "site-loader", site_file)
        yield factory


class People:
    """A running site and the people walking through it."""

    def __init__(self, factory: sessionmaker[Session], state: Path, backend: str) -> None:
        self.factory, self.state, self.backend = factory, state, backend
        self.runtime = self._start()

    def _start(self) -> SiteRuntime:
        return SiteRuntime(self.factory, LiveBus(), self.state, backend=self.backend, config=CONFIG).start()  # type: ignore[arg-type]

    def restart(self) -> None:
        assert self.runtime.stop() == 0
        self.runtime = self._start()

    def badge(self, panel: str, number: str, reader: int) -> None:
        self.runtime.submit(CardRead(panel, reader, format(int(number), "x"), 26, "wiegand", now_us()))

    def carry_in(self) -> None:
        """The item crosses the room door inwards: outside antenna first, then inside."""
        t = now_us()
        self.runtime.submit(TagBatch.from_hex("room-door-reader", [EPC] * 6,
                                              time_us=[t + 40_000 * k for k in range(6)],
                                              antenna=[2, 2, 2, 1, 1, 1], rssi_dbm=[-55.0] * 6))

    def carry_out(self) -> None:
        t = now_us()
        self.runtime.submit(TagBatch.from_hex("room-door-reader", [EPC] * 6,
                                              time_us=[t + 40_000 * k for k in range(6)],
                                              antenna=[1, 1, 1, 2, 2, 2], rssi_dbm=[-55.0] * 6))

    def settle(self) -> None:
        time.sleep(0.6)  # past the decision cap
        assert self.runtime.recorder.flush(10.0)

    def places(self) -> dict[str, str | None]:
        with self.factory() as session:
            rows = session.execute(
                select(Person.username, Venue.code).select_from(PresenceEntry)
                .join(Person, Person.id == PresenceEntry.person_id)
                .join(Venue, Venue.id == PresenceEntry.venue_id, isouter=True)
            ).all()
            return dict(rows)  # type: ignore[arg-type]

    def journal(self, action: str) -> list[str]:
        with self.factory() as session:
            return list(session.execute(
                select(JournalEntry.payload).where(JournalEntry.action == action).order_by(JournalEntry.seq)
            ).scalars())

    def stop(self) -> None:
        self.runtime.stop()


@pytest.fixture(params=["numba", "reference"])
def site(register: sessionmaker[Session], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[People]:
    people = People(register, tmp_path / "state", request.param)
    try:
        yield people
    finally:
        people.stop()


def test_escorts_presence_across_a_restart_and_the_unescorted_alarm(site: People) -> None:
    site.badge(ROOM_PANEL, "1002", OUTSIDE)  # the visitor alone
    site.settle()
    assert site.places() == {}
    assert '"escort_missing"' in site.journal("exit.decision")[-1]
    site.badge(ROOM_PANEL, "1001", OUTSIDE)  # with erin, cleared for the room
    site.badge(ROOM_PANEL, "1002", OUTSIDE)
    site.settle()
    assert site.places() == {"erin": "room", "vic": "room"}

    site.restart()  # the engine starts from the register's places
    with site.factory() as session:
        room = session.execute(select(Venue.id).where(Venue.code == "room")).scalar_one()
    assert len(site.runtime.engine.people.inside(room)) == 2
    site.badge(ROOM_PANEL, "1001", INSIDE)  # erin leaves the visitor behind
    site.settle()
    assert site.places() == {"erin": "corridor", "vic": "room"}
    wait(lambda: site.journal("alarm.visitor_unescorted"))
    site.badge(EXIT_PANEL, "1003", OUTSIDE)  # carl comes into the corridor from outside the unit
    site.settle()
    site.badge(ROOM_PANEL, "1003", INSIDE)  # and claims to leave a room he never entered: anti-passback
    site.settle()
    assert '"anti_passback"' in site.journal("exit.decision")[-1]
    site.runtime.forgive("carl", "gus", "came in behind the visitor group")  # journaled, then applied
    site.badge(ROOM_PANEL, "1003", INSIDE)
    site.settle()
    assert '"reasons":[]' in site.journal("exit.decision")[-1]
    assert '"came in behind the visitor group"' in site.journal("presence.forgiven")[-1]
    assert site.places()["carl"] == "corridor"


def test_a_meeting_refuses_non_participants_in_its_window_and_records_the_items(site: People) -> None:
    start = dt.datetime.now(dt.UTC)
    with db.transaction(site.factory) as session:
        later = venues.create_meeting(session, "admin", venues.MeetingData(
            "Later", "room", "secret", start + dt.timedelta(hours=1), start + dt.timedelta(hours=2), ("erin",)))
        later_id = later.id
    assert site.runtime.reload(wait_s=5.0)
    site.badge(ROOM_PANEL, "1003", OUTSIDE)  # before that meeting: carl may go in
    site.settle()
    site.badge(ROOM_PANEL, "1003", INSIDE)
    site.settle()
    assert site.places() == {"carl": "corridor"}
    with db.transaction(site.factory) as session:
        meeting = venues.create_meeting(session, "admin", venues.MeetingData(
            "Now", "room", "secret", start - dt.timedelta(minutes=1), start + dt.timedelta(hours=1), ("erin",)))
        meeting_id = meeting.id
    assert site.runtime.reload(wait_s=5.0)
    site.badge(ROOM_PANEL, "1003", OUTSIDE)  # during it: carl is not a participant
    site.settle()
    assert '"meeting_not_participant"' in site.journal("exit.decision")[-1]
    assert site.places() == {"carl": "corridor"}
    site.badge(ROOM_PANEL, "1001", OUTSIDE)  # erin is, and brings the minutes in
    time.sleep(0.4)
    site.carry_in()
    site.settle()
    wait(lambda: site.journal("meeting.item"))
    site.badge(ROOM_PANEL, "1001", INSIDE)  # and takes them out again
    site.carry_out()
    site.settle()
    wait(lambda: len(site.journal("meeting.item")) == 2)
    with site.factory() as session:
        report = presence.meeting_report(session, meeting_id)
        accesses = sorted(session.execute(select(ItemAccess.how)).scalars())
        assert presence.meeting_report(session, later_id).items == ()
    assert report.participants == ("erin",)
    assert [(i.item, i.person, i.direction) for i in report.items] == [("P-1/1", "erin", "in"),
                                                                      ("P-1/1", "erin", "out")]
    assert accesses == ["carry_out", "read"]  # Art. 20: who read it in a venue, who carried it out


def test_the_muster_list_during_a_fire_release_follows_people_out(site: People) -> None:
    for badge in ("1001", "1003"):
        site.badge(EXIT_PANEL, badge, OUTSIDE)  # into the corridor from outside the unit
    site.settle()
    site.badge(ROOM_PANEL, "1001", OUTSIDE)
    site.settle()
    site.runtime.submit(InputChange(ROOM_PANEL, "fire_alarm", True, now_us()))
    with site.factory() as session:
        listed = {v.code: [p.username for p in v.people] for v in presence.muster(session).venues}
    assert listed == {"corridor": ["carl"], "room": ["erin"]}
    site.badge(ROOM_PANEL, "1001", INSIDE)  # erin leaves the room, then the unit
    site.settle()
    site.badge(EXIT_PANEL, "1001", INSIDE)
    site.settle()
    with site.factory() as session:
        found = presence.muster(session)
    assert {v.code: [p.username for p in v.people] for v in found.venues} == {"corridor": ["carl"]}
    assert [i.item for v in found.venues for i in v.items] == ["P-1/1"]
    with db.transaction(site.factory) as session:
        _, seq = presence.export_muster(session, "gus", "all out but carl")
    assert '"carl"' in site.journal("muster.exported")[-1]
    assert seq > 0

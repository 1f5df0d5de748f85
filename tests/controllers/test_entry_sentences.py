"""What guards read about a badge at the outside reader of a door (an entry), on the whole simulated site
(OSDP panels on ptys, LLRP readers on loopback): the live feed and the alarm book say "entry", not "exit";
a door kept shut because an unapproved item rests inside by it says which item and since when, in the
site's time zone (issue 12 rule 1); an allowed entry is an "entry allowed"."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controllers.alarms import DEFAULT_PROCEDURES, KINDS, Category
from controllers.bus import LiveBus, LiveKind
from custodian.demo import PORTALS, Traffic
from custodian.wiring import RunningSite, start_site
from firmware_bridge.osdp.vocabulary import OutputCode
from tracking.model import EngineConfig
from tracking.results import REASON_NAMES
from tracking.vocabulary import ALARMS, DIRECTIONS, REASONS, decision_title

CAROL, DISK, ITEM = "20004", "E28011700000020000000005", "S-2026-002/1"  # carol may not take the disk out
ZONE = "Asia/Kathmandu"  # UTC+05:45: a clock time in it is not UTC's by accident
REST_US = 1_000_000  # items read at the door longer than this before a badge rest there
REACH_S = EngineConfig().reach_us / 1e6  # an item read this long before a badge is no longer at the door


@pytest.fixture
def running(site: sessionmaker[Session], tmp_path: Path) -> Iterator[RunningSite]:
    config = EngineConfig(association_us=REST_US)
    running = start_site(site, LiveBus(history_size=500), tmp_path / "state", simulate=True, config=config,
                         time_zone=ZONE)
    try:
        assert running.wait_ready(), "panels (Secure Channel) and readers must come online"
        yield running
    finally:
        running.stop()


def strikes(site: RunningSite, portal: str) -> int:
    assert site.sims is not None
    panel = site.sims.panels[PORTALS[portal][0]]
    return sum(1 for c in panel.commands if c.kind == "output" and c.field("control_code") == OutputCode.TEMPORARY_ON)


def badge_in(site: RunningSite, portal: str, number: str) -> None:
    """A card at the door's outside reader (panel reader 1): someone coming in."""
    assert site.sims is not None
    site.sims.panels[PORTALS[portal][0]].present_card(f"{int(number):08x}", 32, reader=1)


def wait_for(condition, site: RunningSite, timeout_s: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out; the feed: {[e.title for e in site.bus.history()]}"
        time.sleep(0.05)
    return found


def clock(at: float) -> str:
    return dt.datetime.fromtimestamp(at, ZoneInfo(ZONE)).strftime("%H:%M")


def test_an_entry_refused_for_a_resting_item_says_entry_and_which_item_since_when(running: RunningSite) -> None:
    traffic = Traffic(running, log=lambda _line: None)
    put_down = time.time()
    traffic.approach("archive-door", [DISK])  # left inside by the door
    time.sleep(REST_US / 1e6 + 0.5)
    badged = time.time()
    before = strikes(running, "archive-door")
    badge_in(running, "archive-door", CAROL)
    event = wait_for(lambda: next((e for e in running.bus.history() if e.kind == LiveKind.ALARM
                                   and e.source == "archive-door"), None), running)
    assert event.title == "ENTRY BLOCKED: carol"
    details = dict(event.details)
    assert details["items"] == ITEM
    since = {clock(put_down), clock(badged)}  # the minute it was put down (the badge may be a minute later)
    assert any(details["kept shut"] == f"door kept shut: {ITEM} resting inside by the door since {t}"
               for t in since), details
    [alarm] = [a for a in running.runtime.alarms() if a.source == "archive-door"]
    assert alarm.kind == "entry_blocked" and alarm.sentence == "An entry was refused: the door stays locked."
    assert alarm.evidence.detail == details["kept shut"]  # kept with the alarm, in the register too
    [door] = [d for d in running.runtime.doors() if d.portal == "archive-door"]
    assert door.block is not None and door.block.direction == "entry"
    assert door.block.kept_shut == (details["kept shut"],)
    assert strikes(running, "archive-door") == before  # the door stayed shut

    traffic.leave("archive-door", [DISK])  # the custodian takes the disk back to its shelf
    time.sleep(REACH_S + 0.5)  # out of the door's reach
    badge_in(running, "archive-door", CAROL)
    wait_for(lambda: any(e.title == "entry allowed: carol" for e in running.bus.history()), running)
    assert not any(e.title.startswith(("exit allowed", "EXIT BLOCKED")) for e in running.bus.history())
    wait_for(lambda: strikes(running, "archive-door") > before, running)


def test_every_reason_alarm_kind_and_way_has_its_words() -> None:
    assert set(REASON_NAMES) <= set(REASONS)
    assert set(KINDS) <= set(ALARMS)
    security = {name for name, kind in KINDS.items() if kind.category is Category.SECURITY}
    assert security <= set(DEFAULT_PROCEDURES), "every security alarm comes with its operating steps"
    titles = {decision_title(way, allow, "bob") for way in DIRECTIONS for allow in (True, False)}
    assert titles == {"exit allowed: bob", "EXIT BLOCKED: bob", "entry allowed: bob", "ENTRY BLOCKED: bob"}

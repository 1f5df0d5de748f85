"""Exit decisions on the wire (issue 12): the example site with its OSDP panels on ptys (Secure Channel) and
LLRP readers on loopback, the real engine and controller. The test acts only as people and devices do,
through the simulators; what it checks comes back on the wire, on the live bus and in the controller's
decision timings (engine timeline times, never wall-clock durations)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus, LiveEvent
from controllers.portal import DecisionTiming
from custodian.demo import PORTALS, Traffic
from custodian.wiring import RunningSite, start_site
from firmware_bridge.events import CardRead, Health
from firmware_bridge.rfid.llrp_simulator import LlrpSimulator, WalkStep

PORTAL, EXIT, BOB = "archive-door", "main-exit", "20003"
# bob may take the briefing out of the unit (approved), never the top-secret report (he is cleared to secret);
# the backup disk he may carry into the corridor, but not out of the unit (no approval)
BRIEFING, DISK, REPORT = "E28011700000020000000004", "E28011700000020000000005", "E28011700000020000000006"


@pytest.fixture
def running(site: sessionmaker[Session], tmp_path: Path) -> Iterator[tuple[RunningSite, Traffic]]:
    running = start_site(site, LiveBus(), tmp_path / "state", simulate=True)
    traffic = Traffic(running, log=lambda _line: None)
    assert running.wait_ready(), "panels (Secure Channel) and readers must come online"
    try:
        yield running, traffic
    finally:
        running.stop()


def reader(site: RunningSite) -> LlrpSimulator:
    assert site.sims is not None
    return site.sims.llrp[PORTALS[PORTAL][1].reader]


def timings(site: RunningSite) -> list[DecisionTiming]:
    return [t for t in site.runtime.portals.timings if t.portal == PORTAL]


def decisions(site: RunningSite, portal: str = PORTAL) -> list[LiveEvent]:
    return [e for e in site.bus.history() if e.source == portal and e.title.startswith(("exit", "EXIT"))]


def strike_since(site: RunningSite, since: int, portal: str = PORTAL) -> bool:
    assert site.sims is not None
    return any(c.kind == "output" for c in site.sims.panels[PORTALS[portal][0]].commands[since:])


def observe_cards(site: RunningSite) -> queue.Queue[CardRead]:
    """Card reads as the controller receives them (the driver's sink calls the controller's submit)."""
    cards: queue.Queue[CardRead] = queue.Queue()
    controller = site.runtime.portals
    submit = controller.submit

    def observed(event: object) -> None:
        if isinstance(event, CardRead):
            cards.put(event)
        submit(event)

    controller.submit = observed  # type: ignore[method-assign]
    return cards


def test_clean_reads_allow_after_whole_rounds_before_the_cap(running: tuple[RunningSite, Traffic]) -> None:
    site, traffic = running
    config = site.runtime.engine.config
    assert traffic.exit_attempt(PORTAL, [BOB], [BRIEFING])
    [timing] = timings(site)
    waited = timing.decided_us - timing.badge_us
    assert timing.allow and config.decision_floor_us <= waited < config.settle_us, "decided by rounds, not the cap"
    [event] = decisions(site)
    assert event.title == "exit allowed: bob" and ("items", "S-2026-001/1") in event.details


def test_an_unapproved_item_read_in_the_last_rounds_before_the_cap_refuses(
    running: tuple[RunningSite, Traffic],
) -> None:
    """No early allow here (the reader refuses AISpec events, so it reports no round ends): the exit waits
    for the cap, and a report bob may not take, within reach only in the last rounds before it, keeps the door
    shut."""
    site, traffic = running
    sim = reader(site)
    sim.rejects = frozenset({"reader_events"})
    connections = sim.connections
    sim.drop_link()
    assert traffic._wait(lambda: sim.connections > connections, 15)
    assert traffic._wait(lambda: dict((d.name, d.health) for d in site.runtime.devices())[
        "archive-door-reader"] == Health.ONLINE, 15)
    time.sleep(0.5)
    cards = observe_cards(site)
    settle_us = site.runtime.engine.config.settle_us
    traffic.approach(PORTAL, [BRIEFING])
    time.sleep(0.3)
    since = len(site.sims.panels[PORTALS[PORTAL][0]].commands) if site.sims else 0
    traffic.badge(PORTAL, BOB)
    card = cards.get(timeout=5)
    # read by the reader's rounds 80..50 ms before the cap, on both inside antennas
    lead_s = (card.time_us + settle_us - 80_000 - time.time_ns() // 1000) / 1e6
    assert lead_s > 0, "the badge reached the controller long after it was read"
    sim.walk_from_now([WalkStep(lead_s + 0.01 * k, REPORT, 1 + k % 2, -50) for k in range(4)])
    assert traffic._wait(lambda: bool(decisions(site)), 5)
    [event] = decisions(site)
    details = dict(event.details)
    assert event.title == "EXIT BLOCKED: bob" and "clearance" in details["reasons"]
    assert "T-2026-001/1" in details["items"]
    assert not strike_since(site, since)
    [timing] = timings(site)
    assert not timing.allow and timing.decided_us - timing.badge_us < settle_us, "refused on the disk's read"


def test_an_offline_reader_refuses_with_the_engines_reason(running: tuple[RunningSite, Traffic]) -> None:
    site, traffic = running
    sim = reader(site)
    traffic.approach(PORTAL, [BRIEFING])  # an approved exit, but the door cannot see what else is carried
    time.sleep(0.3)
    sim.drop_link(refuse_for_s=5.0)
    assert traffic._wait(lambda: any(e.source == "archive-door-reader" and "offline" in e.title
                                     for e in site.bus.history()), 10)
    opened = traffic.exit_attempt(PORTAL, [BOB], [BRIEFING])
    assert not opened
    [event] = decisions(site)
    assert dict(event.details)["reasons"] == "readers_offline_fail_secure"
    [timing] = timings(site)
    assert not timing.allow


def test_an_item_that_appears_while_the_door_is_open_alarms(running: tuple[RunningSite, Traffic]) -> None:
    """Bob carries the briefing out of the unit (approved); while the main exit is open a disk he has no
    approval for goes out with him: the crossing is not covered by the allow."""
    site, traffic = running
    assert site.sims is not None
    assert traffic.exit_attempt(PORTAL, [BOB], [BRIEFING, DISK])  # into the corridor: no approval needed
    panel = site.sims.panels[PORTALS[EXIT][0]]
    traffic.approach(EXIT, [BRIEFING])
    time.sleep(0.3)
    since = len(panel.commands)
    traffic.badge(EXIT, BOB)
    assert traffic._wait(lambda: strike_since(site, since, EXIT), 5), "bob may take the briefing out"
    assert panel.open_door()
    traffic.approach(EXIT, [DISK])  # the disk comes out of his bag in the doorway, and out they go
    time.sleep(0.2)
    traffic.pass_through(EXIT, [BRIEFING, DISK])
    panel.close_door()

    def alarm_for(item: str) -> bool:
        return any(e.title == "unauthorized exit" and ("item", item) in e.details for e in site.bus.history())

    assert traffic._wait(lambda: alarm_for("S-2026-002/1"), 10)
    assert not alarm_for("S-2026-001/1"), "the briefing's crossing is covered by the allow"
    assert [e.title for e in decisions(site, EXIT)] == ["exit allowed: bob"]

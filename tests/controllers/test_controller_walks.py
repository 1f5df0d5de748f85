"""Adversarial walks through the portal *controller* (issue 12): driver facts as the drivers deliver them
(tag batches and round ends of an LLRP reader, card reads, reader health), a real engine and controller,
the controller's own scheduling of when the engine is advanced, driven by a simulated clock.

The walks dwell at the door before the badge, carry an item they may not take with weak or one-sided reads
or bring it within reach during the wait, present a second badge of the same person, and deliver stretches
of the reader's stream late (within the reorder buffer) or held during a link outage (stale). The rule
checked is the domain's, not the implementation: no exit is allowed while an item the person may not take
was read at the door, on time, between the badge's reach and the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import sessionmaker

from controllers.bus import LiveBus
from controllers.portal import Names, PortalController, PortalWiring
from controllers.recorder import Recorder
from firmware_bridge.events import CardRead, Health, HealthEvent, InventoryRoundEnd, TagBatch
from tests.tracking.sites import antennas
from tracking.engine import Engine
from tracking.model import ApprovalSpec, EngineConfig, ItemSpec, PersonSpec, PortalSpec, SiteModel, VenueSpec
from tracking.snapshot import build_snapshot

MS = 1_000
T0 = 1_800_000_000_000_000  # the walk's start on the site clock
BADGE_AT = T0 + 6_000 * MS
END = BADGE_AT + 1_500 * MS
ROUND_US = 10 * MS  # each antenna ends a round every 10 ms (inside at +5 ms, outside at +0 ms of the cycle)
PORTAL, READER, PANEL = 20, "R20", "P20"
ALLOWED, FORBIDDEN = "E2800000000000000000000A", "E2800000000000000000000F"
SITE = SiteModel(
    items=(ItemSpec(1, ALLOWED, None, 3, "active", 2, scope_person_ids=(1,)),
           ItemSpec(2, FORBIDDEN, None, 3, "active", 2, scope_person_ids=(1,))),  # in scope, no approval
    venues=(VenueSpec(2, 3),),
    portals=(PortalSpec(PORTAL, 2, None, antennas=antennas(PORTAL)),),  # the office -> out of the unit
    people=(PersonSpec(1, "1001", 3, badges=("1002",)),),  # one person, two badges
    approvals=(ApprovalSpec(1, "carry_out", (1,), person_ids=(1,), uses_left=100),),
)


@dataclass(frozen=True)
class Presence:
    """A tag at the door from start to end (site clock), answering every round on its antennas."""

    epc: str
    start_us: int
    end_us: int
    sides: str  # "inside", "outside", "both" or "once" (one read, inside)
    rssi_dbm: float


@dataclass(frozen=True)
class Walk:
    presences: tuple[Presence, ...]
    badges: tuple[tuple[int, str, bool], ...]  # (time, badge, stale)
    late: tuple[int, int, int]  # (from, to, extra delay): the reader's stream delayed, within the reorder buffer
    outage: tuple[int, int] | None  # the link is down: held reports come after it, stale


@st.composite
def walks(draw: st.DrawFn) -> Walk:
    presences = []
    for epc in (ALLOWED, FORBIDDEN):
        if draw(st.booleans()):
            start = BADGE_AT + draw(st.integers(-5_900, 400)) * MS  # dwelling long before the badge, or late
            end = start + draw(st.integers(5, 7_000)) * MS
            sides = draw(st.sampled_from(("inside", "outside", "both", "once")))
            presences.append(Presence(epc, start, end, sides, draw(st.sampled_from((-50.0, -72.0, -79.0)))))
    badges = [(BADGE_AT + draw(st.integers(0, 9)), "1001", draw(st.booleans()) and draw(st.booleans()))]
    if draw(st.booleans()):  # the same person presents their second badge
        badges.append((BADGE_AT + draw(st.integers(20, 600)) * MS, "1002", False))
    start = BADGE_AT + draw(st.integers(-500, 500)) * MS
    late = (start, start + draw(st.integers(0, 400)) * MS, draw(st.integers(0, 15)) * MS)
    outage = None
    if draw(st.integers(0, 4)) == 0:
        down = BADGE_AT + draw(st.integers(-800, 300)) * MS
        outage = (down, down + draw(st.integers(50, 800)) * MS)
    return Walk(tuple(presences), tuple(badges), late, outage)


def reader_stream(walk: Walk) -> list[tuple[int, object, int]]:
    """(arrival, event, read time) of the reader's batches and round ends, in the reader's order."""
    out: list[tuple[int, object, int]] = []
    arrival = T0
    once_done: set[str] = set()
    t = T0
    while t <= END:
        antenna = 2 if (t - T0) % ROUND_US == 0 else 1
        side = "outside" if antenna == 2 else "inside"
        tags = []
        for p in walk.presences:
            if not p.start_us <= t <= p.end_us:
                continue
            if p.sides == "once":
                if antenna == 1 and p.epc not in once_done:
                    once_done.add(p.epc)
                    tags.append(p)
            elif p.sides in (side, "both"):
                tags.append(p)
        stale = walk.outage is not None and walk.outage[0] <= t < walk.outage[1]
        delay = 1 * MS + (walk.late[2] if walk.late[0] <= t <= walk.late[1] else 0)
        due = walk.outage[1] + 5 * MS if stale and walk.outage else t + delay
        arrival = max(arrival, due)  # one TCP stream: nothing overtakes
        if tags:
            batch = TagBatch.from_hex(READER, [p.epc for p in tags], time_us=[t] * len(tags),
                                      antenna=[antenna] * len(tags), rssi_dbm=[p.rssi_dbm for p in tags],
                                      stale=stale)
            out.append((arrival, batch, t))
        out.append((arrival, InventoryRoundEnd(READER, antenna, t, stale=stale), t))
        t += ROUND_US // 2
    return out


def on_time_reads(walk: Walk, stream: list[tuple[int, object, int]], epc: str, reorder_us: int) -> list[int]:
    """Times of the reads of `epc` that reached the controller within the reorder buffer, not stale."""
    return [t for arrival, event, t in stream if isinstance(event, TagBatch) and not event.stale.any()
            and arrival <= t + reorder_us - MS and epc in event.epc_hex()]


def run_walk(walk: Walk, log_dir: Path) -> tuple[PortalController, list[tuple[int, object, int]]]:
    now = [T0]
    engine = Engine(build_snapshot(SITE), EngineConfig())
    names = Names({PORTAL: "exit"}, {2: "office"}, {1: "A/1", 2: "F/1"}, {1: ALLOWED, 2: FORBIDDEN}, {1: "pat"})
    recorder = Recorder(sessionmaker(), log_dir, site="walks")
    controller = PortalController(engine, [PortalWiring(PORTAL, "exit", panel=PANEL, readers=(READER,))], names,
                                  LiveBus(), recorder, clock=lambda: now[0])
    stream = reader_stream(walk)
    events = [*stream, *((t, CardRead(PANEL, 0, f"{int(badge):08X}", 32, "wiegand", t, stale), t)
                         for t, badge, stale in walk.badges)]
    if walk.outage is not None:
        down, up = walk.outage
        events += [(down, HealthEvent(READER, Health.OFFLINE, "link lost", down), down),
                   (up, HealthEvent(READER, Health.ONLINE, "connected", up), up)]
    events.sort(key=lambda e: e[0])  # stable: the reader's own order is kept
    i = 0
    try:
        for t in range(T0, END + 2 * EngineConfig().settle_us, MS):
            now[0] = t
            while i < len(events) and events[i][0] <= t:
                controller.submit(events[i][1])
                i += 1
            controller.step(t, tick=(t - T0) % (10 * MS) == 0)
    finally:
        recorder.log.close()  # the local log the decisions were made durable in (never delivered here)
    return controller, stream


@settings(max_examples=40)
@given(walk=walks())
def test_no_exit_is_allowed_while_an_item_the_person_may_not_take_is_read(
    walk: Walk, tmp_path_factory: pytest.TempPathFactory
) -> None:
    controller, stream = run_walk(walk, tmp_path_factory.mktemp("log"))
    config = controller.engine.config
    forbidden = on_time_reads(walk, stream, FORBIDDEN, config.reorder_us)
    assert len(controller.timings) == len(walk.badges), "every badge is decided"
    for timing in controller.timings:
        seen = [t for t in forbidden if timing.badge_us - config.reach_us + MS <= t <= timing.decided_us]
        event(f"{'allowed' if timing.allow else 'refused'}{', forbidden item read' if seen else ''}"
              f"{', early' if timing.decided_us - timing.badge_us < config.settle_us else ''}")
        if not timing.allow:
            continue
        assert not seen, f"allowed at {timing.decided_us - BADGE_AT} us with the forbidden item read at " \
                         f"{[t - BADGE_AT for t in seen[:3]]} us"
        assert timing.decided_us - timing.badge_us <= config.settle_us

"""Small hand-made sites and hypothesis strategies for random sites and event streams."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from tracking.engine import Engine
from tracking.events import (
    BadgePresentation,
    CameraCount,
    DoorInput,
    FireAlarmInput,
    ForgiveRequest,
    InventoryRound,
    OverrideRequest,
    ReaderHealth,
    TagRead,
)
from tracking.model import (
    ANTI_PASSBACK,
    AntennaSpec,
    ApprovalSpec,
    EngineConfig,
    ItemSpec,
    MeetingSpec,
    PersonSpec,
    PortalSpec,
    PresenceSpec,
    SiteModel,
    VenueSpec,
)
from tracking.results import Output

Event = (TagRead | BadgePresentation | CameraCount | DoorInput | FireAlarmInput | InventoryRound | ReaderHealth
         | OverrideRequest | ForgiveRequest)
SECOND = 1_000_000


def antennas(portal_id: int) -> tuple[AntennaSpec, ...]:
    reader = f"R{portal_id}"
    return (AntennaSpec(reader, 1, "inside"), AntennaSpec(reader, 2, "outside"), AntennaSpec(reader, 3, "ignore"))


def epc_for(n: int) -> str:
    return f"E280{n:020X}"


def vault_site(items: tuple[ItemSpec, ...] = (), approvals: tuple[ApprovalSpec, ...] = (),
               people: tuple[PersonSpec, ...] = ()) -> SiteModel:
    """A top-secret vault (1) -> secret office (2) via portal 10; office -> outside via portal 20
    (100 m away); portal 30 is a border exit from the office; portal 40 joins two secret rooms.
    People: alice (top secret, group 7), bob (top secret), carol (confidential), dave (inactive),
    gus (a guard, secret)."""
    venues = (VenueSpec(1, 4, top_secret_designated=True), VenueSpec(2, 3), VenueSpec(3, 3))
    portals = (
        PortalSpec(10, 1, 2, antennas=antennas(10)),
        PortalSpec(20, 2, None, antennas=antennas(20), x_m=100.0),
        PortalSpec(30, 2, None, border=True, antennas=antennas(30), x_m=5.0),
        PortalSpec(40, 2, 3, antennas=antennas(40)),
    )
    people = people or (
        PersonSpec(1, "alice", 4, (7,)), PersonSpec(2, "bob", 4), PersonSpec(3, "carol", 2),
        PersonSpec(4, "dave", 4, active=False), PersonSpec(5, "gus", 3),
    )
    return SiteModel(items, venues, portals, people, approvals, (7,))


def carry(engine: Engine, portal_id: int, epcs: list[str], start_us: int, outward: bool = True,
          reads_per_side: int = 3, step_us: int = 50_000) -> int:
    """Feed the reads of items carried through a portal; returns the time of the last read."""
    first, second = (1, 2) if outward else (2, 1)
    t = start_us
    for antenna in [first] * reads_per_side + [second] * reads_per_side:
        for epc in epcs:
            engine.on_read(TagRead(f"R{portal_id}", antenna, epc, t, -55.0))
        t += step_us
    return t - step_us


def run(engine: Engine, events: list[Event], cuts: list[int], end_us: int) -> Output:
    """Feed events in order, advancing after each index in cuts and finally to end_us."""
    movements, decisions, alarms, presence, brought = [], [], [], [], []
    for k, event in enumerate(events):
        feed(engine, event)
        if k in cuts:
            out = engine.advance(event.time_us)
            movements += out.movements
            decisions += out.decisions
            alarms += out.alarms
            presence += out.presence
            brought += out.brought
    out = engine.advance(end_us)
    movements += out.movements
    decisions += out.decisions
    alarms += out.alarms
    presence += out.presence
    brought += out.brought
    return Output(sorted(movements, key=repr), sorted(decisions, key=repr), sorted(alarms, key=repr),
                  sorted(presence, key=repr), sorted(brought, key=repr))


def feed(engine: Engine, event: Event) -> None:
    if isinstance(event, TagRead):
        engine.on_read(event)
    elif isinstance(event, BadgePresentation):
        engine.on_badge(event)
    elif isinstance(event, CameraCount):
        engine.on_camera(event)
    elif isinstance(event, DoorInput):
        engine.on_door(event)
    elif isinstance(event, InventoryRound):
        engine.on_round(event)
    elif isinstance(event, ReaderHealth):
        engine.on_reader_health(event)
    elif isinstance(event, OverrideRequest):
        engine.on_override(event)
    elif isinstance(event, ForgiveRequest):
        engine.on_forgive(event)
    else:
        engine.on_fire_alarm(event)


def rounds(engine: Engine, portal_id: int, start_us: int, end_us: int, every_us: int = 10_000,
           antennas: tuple[int, ...] = (1, 2)) -> None:
    """The portal's reader reports an inventory round end on each antenna every `every_us`."""
    for t in range(start_us, end_us + 1, every_us):
        for antenna in antennas:
            engine.on_round(InventoryRound(f"R{portal_id}", antenna, t))


# --- random sites and streams -----------------------------------------------------------------
CONFIG = EngineConfig(settle_us=300_000, two_person_us=2 * SECOND, association_us=SECOND, reorder_us=50_000,
                      min_reads=2, max_speed_m_per_s=5.0, unregistered_repeat_us=SECOND,
                      data_quality_repeat_us=SECOND, door_grant_us=SECOND)


@st.composite
def sites(draw: st.DrawFn) -> SiteModel:
    n_venues = draw(st.integers(2, 4))
    venues = tuple(VenueSpec(v, draw(st.integers(0, 4)), draw(st.booleans()), fail_secure_level=draw(st.integers(0, 5)))
                   for v in range(n_venues))
    n_portals = draw(st.integers(1, 3))
    portals = tuple(
        PortalSpec(
            100 + p, draw(st.integers(0, n_venues - 1)), draw(st.none() | st.integers(0, n_venues - 1)),
            draw(st.booleans()), antennas(100 + p), float(draw(st.integers(0, 3))) * 20.0, 0.0,
            draw(st.sampled_from(ANTI_PASSBACK)),
        )
        for p in range(n_portals)
    )
    n_people = draw(st.integers(1, 4))
    people = tuple(
        PersonSpec(200 + q, f"B{q}", draw(st.integers(0, 4)), tuple(draw(st.sets(st.integers(0, 1)))),
                   draw(st.booleans() | st.just(True)),
                   badges=(f"B{q}x",) if draw(st.booleans()) else (),
                   inactive_badges=(f"B{q}lost",) if draw(st.booleans()) else (),
                   visitor=draw(st.sampled_from([False, False, True])))
        for q in range(n_people)
    )
    person_ids = [p.person_id for p in people]
    n_items = draw(st.integers(1, 6))
    width = draw(st.sampled_from([24, 32, 124]))
    items = tuple(
        ItemSpec(
            300 + i, f"{i:04X}" + draw(st.text("0123456789ABCDEF", min_size=width - 4, max_size=width - 4)),
            draw(st.none() | st.sampled_from(["T1", "T2"])), draw(st.integers(0, 4)),
            draw(st.sampled_from(["active", "active", "in_transit", "destroyed", "declassified", "seized"])),
            draw(st.none() | st.integers(0, n_venues - 1)),
            tuple(draw(st.sets(st.sampled_from(person_ids)))), tuple(draw(st.sets(st.integers(0, 1)))),
        )
        for i in range(n_items)
    )
    approvals = tuple(
        ApprovalSpec(
            400 + a, draw(st.sampled_from(["carry_out", "transfer", "abroad"])),
            tuple(draw(st.sets(st.sampled_from([it.item_id for it in items]), min_size=1))),
            tuple(draw(st.sets(st.sampled_from(person_ids), min_size=1))), tuple(draw(st.sets(st.integers(0, 1)))),
            draw(st.none() | st.sampled_from([p.portal_id for p in portals])),
            draw(st.none() | st.integers(0, n_venues - 1)),
            draw(st.integers(0, 5 * SECOND)), draw(st.integers(3 * SECOND, 30 * SECOND)),
            draw(st.integers(0, 3)), draw(st.none() | st.integers(0, 10 * SECOND)),
        )
        for a in range(draw(st.integers(0, 4)))
    )
    meetings = tuple(
        MeetingSpec(500 + m, draw(st.integers(0, n_venues - 1)), draw(st.integers(0, 10 * SECOND)),
                    draw(st.integers(10 * SECOND, 40 * SECOND)), tuple(draw(st.sets(st.sampled_from(person_ids)))))
        for m in range(draw(st.integers(0, 1)))
    )
    presence = tuple(PresenceSpec(q, draw(st.none() | st.integers(0, n_venues - 1)), 0, draw(st.booleans()))
                     for q in draw(st.sets(st.sampled_from(person_ids))))
    return SiteModel(items, venues, portals, people, approvals, (0, 1), meetings=meetings, presence=presence)


RSSI = st.sampled_from([-50.0, -50.0, -58.0, -66.0, -74.0, -79.0, float("nan")])


@st.composite
def streams(draw: st.DrawFn, site: SiteModel, max_events: int = 60) -> list[Event]:
    """Time-ordered events; bursts of reads so that passes and crossings actually happen, with the
    adversary's moves mixed in: dwelling at the door, weak, one-sided and bleed reads, stale reads,
    second badges, round reports, readers dropping out, overrides of fresh and old blocks."""
    portal_ids = [p.portal_id for p in site.portals]
    epcs = [it.epc for it in site.items] + ["DEADBEEF" * 3, "ABC"]
    badges = [b for p in site.people for b in p.all_badges] + ["stranger"]
    guards = [p.person_id for p in site.people] + [999]
    events: list[Event] = []
    t = 0
    for _ in range(draw(st.integers(1, max_events))):
        t += draw(st.integers(0, 400_000))
        kind = draw(st.sampled_from(["exit", "exit", "burst", "burst", "read", "badge", "camera", "door", "fire",
                                     "dwell", "bleed", "rounds", "health", "override", "forgive"]))
        portal = draw(st.sampled_from(portal_ids))
        reader = f"R{portal}"
        if kind == "exit":
            carried = draw(st.lists(st.sampled_from(epcs), min_size=1, max_size=3, unique=True))
            outward = draw(st.booleans())
            per_side = draw(st.sampled_from([1, 2, 3, 3]))
            rssi = draw(RSSI)
            stale = draw(st.sampled_from([False, False, False, True]))
            for k in range(2 * per_side):
                antenna = (1 if k < per_side else 2) if outward else (2 if k < per_side else 1)
                events += [TagRead(reader, antenna, epc, t + 60_000 * k, rssi, stale=stale) for epc in carried]
            for n in range(draw(st.integers(1, 2))):
                stale_badge = draw(st.sampled_from([False, False, False, True]))
                events.append(BadgePresentation(portal, draw(st.sampled_from(badges)), t + 40_000 + 1000 * n,
                                                stale_badge, draw(st.sampled_from(["exit", "exit", "entry"]))))
            if draw(st.booleans()):
                events.append(CameraCount(portal, draw(st.integers(0, 2)), t + 30_000))
            t += 400_000
        elif kind == "burst":
            epc = draw(st.sampled_from(epcs))
            first = draw(st.sampled_from([1, 2]))
            for k in range(draw(st.integers(1, 6))):
                antenna = first if k < 2 else draw(st.sampled_from([1, 2]))
                tid = draw(st.none() | st.sampled_from(["T1", "T2"]))
                events.append(TagRead(reader, antenna, epc, t + 60_000 * k, draw(RSSI), tid,
                                      stale=draw(st.sampled_from([False, False, False, True]))))
            t += 10_000
        elif kind == "dwell":  # resting by the inside antennas for a while, then a badge
            epc = draw(st.sampled_from(epcs))
            reads = draw(st.integers(2, 40))
            events += [TagRead(reader, 1, epc, t + 100_000 * k, draw(RSSI)) for k in range(reads)]
            events.append(BadgePresentation(portal, draw(st.sampled_from(badges)), t + 100_000 * reads - 50_000))
            t += 100_000 * reads
        elif kind == "bleed":  # strong inside, a weak glimpse outside
            epc = draw(st.sampled_from(epcs))
            events += [TagRead(reader, 1, epc, t + 50_000 * k, -50.0) for k in range(draw(st.integers(1, 8)))]
            events += [TagRead(reader, 2, epc, t + 400_000 + 20_000 * k, draw(RSSI))
                       for k in range(draw(st.integers(1, 2)))]
            t += 500_000
        elif kind == "rounds":
            every = draw(st.sampled_from([5_000, 20_000, 70_000]))
            for k in range(draw(st.integers(1, 8))):
                events.append(InventoryRound(reader, draw(st.sampled_from([0, 1, 2, 9])), t + every * k))
        elif kind == "health":
            events.append(ReaderHealth(draw(st.sampled_from([reader, "ghost"])), draw(st.booleans()), t))
        elif kind == "override":
            events.append(OverrideRequest(portal, draw(st.sampled_from(guards)), t, "escorted",
                                          draw(st.none() | st.integers(0, t))))
        elif kind == "read":
            events.append(TagRead(draw(st.sampled_from([f"R{portal}", "ghost"])), draw(st.integers(0, 4)),
                                  draw(st.sampled_from(epcs)), t,
                                  draw(st.sampled_from([-60.0, float("nan"), 500.0]))))
        elif kind == "badge":
            events.append(BadgePresentation(portal, draw(st.sampled_from(badges)), t, draw(st.booleans()),
                                            draw(st.sampled_from(["exit", "entry"]))))
        elif kind == "forgive":
            events.append(ForgiveRequest(draw(st.sampled_from(guards)), draw(st.sampled_from(guards)), t, "seen"))
        elif kind == "camera":
            events.append(CameraCount(portal, draw(st.integers(0, 3)), t))
        elif kind == "door":
            events.append(DoorInput(portal, draw(st.booleans()), t))
        else:
            events.append(FireAlarmInput(draw(st.booleans()), t))
    return sorted(events, key=lambda e: e.time_us)


def with_approval_uses(site: SiteModel, uses: int) -> SiteModel:
    return replace(site, approvals=tuple(replace(a, uses_left=uses) for a in site.approvals))

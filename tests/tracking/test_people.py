"""People in venues on both engine backends: presence, anti-passback, escorts, meetings (tracking.presence)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.tracking.sites import CONFIG as STREAM_CONFIG
from tests.tracking.sites import SECOND, antennas, carry, epc_for, run, sites, streams
from tracking.engine import Engine
from tracking.events import BadgePresentation, CameraCount, FireAlarmInput, ForgiveRequest, OverrideRequest
from tracking.model import (
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
from tracking.snapshot import build_snapshot

BACKENDS = ("numba", "reference")
CONFIG = EngineConfig(two_person_us=10 * SECOND)
CORRIDOR, ROOM = 1, 2
ROOM_DOOR, MAIN_EXIT = 10, 20
ESCORT, VISITOR, CLERK, GUARD, NOVICE = 1, 2, 3, 4, 5


def site(anti_passback: str = "off", meetings: tuple[MeetingSpec, ...] = (),
         presence: tuple[PresenceSpec, ...] = (), items: tuple[ItemSpec, ...] = ()) -> SiteModel:
    """A secret room off a corridor (portal 10) and the corridor's main exit (portal 20). People: an escort
    (secret), a visitor, a clerk (secret), a guard (secret), a novice (internal: no escort for the room)."""
    venues = (VenueSpec(CORRIDOR, 1), VenueSpec(ROOM, 3))
    portals = (PortalSpec(ROOM_DOOR, ROOM, CORRIDOR, antennas=antennas(ROOM_DOOR), anti_passback=anti_passback),
               PortalSpec(MAIN_EXIT, CORRIDOR, None, antennas=antennas(MAIN_EXIT), x_m=30.0,
                          anti_passback=anti_passback))
    people = (PersonSpec(ESCORT, "escort", 3), PersonSpec(VISITOR, "visitor", 0, visitor=True),
              PersonSpec(CLERK, "clerk", 3), PersonSpec(GUARD, "guard", 3), PersonSpec(NOVICE, "novice", 1))
    return SiteModel(items, venues, portals, people, meetings=meetings, presence=presence)


class Site:
    """An engine on one backend and everything it has said so far."""

    def __init__(self, model: SiteModel, backend: str) -> None:
        self.engine = Engine(build_snapshot(model), CONFIG, backend)  # type: ignore[arg-type]
        self.decisions: list = []
        self.alarms: list = []
        self.presence: list = []
        self.brought: list = []

    def badge(self, who: str, t: int, portal: int = ROOM_DOOR, direction: str = "entry") -> None:
        self.engine.on_badge(BadgePresentation(portal, who, t, direction=direction))

    def advance(self, now_us: int) -> Output:
        out = self.engine.advance(now_us)
        self.decisions += out.decisions
        self.alarms += out.alarms
        self.presence += out.presence
        self.brought += out.brought
        return out

    def decision(self, who: str) -> object:
        return [d for d in self.decisions if d.badge == who][-1]

    def alarm_kinds(self) -> list[str]:
        return [a.kind for a in self.alarms]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_visitor_alone_is_refused_and_with_an_escort_allowed(backend: str) -> None:
    s = Site(site(), backend)
    s.badge("visitor", 1 * SECOND)
    s.advance(3 * SECOND)
    alone = s.decision("visitor")
    assert not alone.allow and alone.reason_names == ("escort_missing",)
    s.badge("novice", 4 * SECOND)  # cleared below the room's ceiling: no escort
    s.badge("visitor", 5 * SECOND)
    s.advance(7 * SECOND)
    assert s.decision("visitor").reason_names == ("escort_missing",)
    s.badge("escort", 8 * SECOND)
    s.badge("visitor", 10 * SECOND)
    s.advance(12 * SECOND)
    assert s.decision("visitor").allow and s.decision("escort").allow
    assert s.engine.people.inside(ROOM) == [ESCORT, VISITOR, NOVICE]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_escort_badging_just_after_the_visitor_still_counts(backend: str) -> None:
    s = Site(site(), backend)
    s.badge("visitor", 1 * SECOND)
    s.badge("escort", 1 * SECOND + 100_000)  # within the cap the visitor's decision waits for
    s.advance(3 * SECOND)
    assert s.decision("visitor").allow


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_last_escort_leaving_a_visitor_raises_an_alarm_leaving_together_does_not(backend: str) -> None:
    s = Site(site(), backend)
    s.badge("escort", 1 * SECOND)
    s.badge("visitor", 2 * SECOND)
    s.badge("clerk", 3 * SECOND)
    s.advance(5 * SECOND)
    assert s.engine.people.inside(ROOM) == [ESCORT, VISITOR, CLERK]
    s.badge("escort", 20 * SECOND, direction="exit")  # the clerk stays with the visitor
    s.advance(40 * SECOND)
    assert "visitor_unescorted" not in s.alarm_kinds()
    s.badge("clerk", 41 * SECOND, direction="exit")  # now the visitor is alone
    s.advance(45 * SECOND)
    assert "visitor_unescorted" not in s.alarm_kinds()  # not before the window: they may be leaving too
    s.advance(60 * SECOND)
    (alarm,) = [a for a in s.alarms if a.kind == "visitor_unescorted"]
    assert alarm.portal_id == ROOM_DOOR and "visitors 2" in alarm.detail
    assert alarm.time_us == 41 * SECOND + CONFIG.settle_us + CONFIG.two_person_us  # the clerk's move, plus a window
    s.advance(120 * SECOND)
    assert s.alarm_kinds().count("visitor_unescorted") == 1  # once per unescorted state

    together = Site(site(), backend)
    together.badge("escort", 1 * SECOND)
    together.badge("visitor", 2 * SECOND)
    together.advance(5 * SECOND)
    together.badge("escort", 20 * SECOND, direction="exit")
    together.badge("visitor", 22 * SECOND, direction="exit")
    together.advance(60 * SECOND)
    assert together.decision("visitor").allow and "visitor_unescorted" not in together.alarm_kinds()
    assert together.engine.people.inside(ROOM) == [] and together.engine.people.inside(CORRIDOR) == [ESCORT, VISITOR]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_non_participant_is_refused_at_a_meeting_venue_in_its_window_and_allowed_outside_it(backend: str) -> None:
    meeting = MeetingSpec(70, ROOM, 100 * SECOND, 200 * SECOND, (ESCORT,))
    s = Site(site(meetings=(meeting,)), backend)
    s.badge("clerk", 50 * SECOND)  # before the meeting
    s.advance(52 * SECOND)
    assert s.decision("clerk").allow
    s.badge("clerk", 60 * SECOND, direction="exit")
    s.badge("clerk", 150 * SECOND)  # during it
    s.badge("escort", 151 * SECOND)  # a participant
    s.advance(155 * SECOND)
    assert s.decision("clerk").reason_names == ("meeting_not_participant",)
    assert s.decision("escort").allow
    s.badge("escort", 160 * SECOND, direction="exit")  # leaving is never refused by the meeting
    s.badge("clerk", 200 * SECOND)  # the window has ended
    s.advance(205 * SECOND)
    assert s.decision("escort").allow and s.decision("clerk").allow


@pytest.mark.parametrize("backend", BACKENDS)
def test_anti_passback_refuses_or_alarms_and_a_forgiven_person_passes_once(backend: str) -> None:
    outside = (PresenceSpec(CLERK, None, 0),)
    s = Site(site("refuse", presence=outside), backend)
    s.badge("clerk", 1 * SECOND, direction="exit")  # leaving the room, known outside the unit
    s.advance(3 * SECOND)
    assert s.decision("clerk").reason_names == ("anti_passback",)
    s.engine.on_forgive(ForgiveRequest(CLERK, GUARD, 4 * SECOND, "came in behind a visitor group"))
    s.badge("clerk", 5 * SECOND, direction="exit")
    s.advance(7 * SECOND)
    assert s.decision("clerk").allow and s.engine.people.inside(CORRIDOR) == [CLERK]
    s.badge("clerk", 8 * SECOND, direction="exit")  # the room again: forgiveness was used up
    s.advance(10 * SECOND)
    assert s.decision("clerk").reason_names == ("anti_passback",)
    s.badge("clerk", 11 * SECOND, portal=MAIN_EXIT, direction="exit")  # where they really are
    s.advance(13 * SECOND)
    assert s.decision("clerk").allow and s.engine.people.where[CLERK].venue_id is None

    alarming = Site(site("alarm", presence=outside), backend)
    alarming.badge("clerk", 1 * SECOND, direction="exit")
    alarming.advance(3 * SECOND)
    assert alarming.decision("clerk").allow and alarming.alarm_kinds() == ["anti_passback"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_presence_survives_a_restart_from_the_register(backend: str) -> None:
    first = Site(site("refuse"), backend)
    first.badge("escort", 1 * SECOND, portal=MAIN_EXIT, direction="entry")
    first.badge("escort", 3 * SECOND)
    first.badge("clerk", 3 * SECOND, portal=MAIN_EXIT, direction="entry")
    first.advance(6 * SECOND)
    assert [c.to_venue_id for c in first.presence] == [CORRIDOR, ROOM, CORRIDOR]
    # what the register keeps from those changes (the recorder writes them), and a new engine from it
    places = {c.person_id: PresenceSpec(c.person_id, c.to_venue_id, c.time_us, c.uncertain) for c in first.presence}
    second = Site(site("refuse", presence=tuple(places.values())), backend)
    assert second.engine.people.where == first.engine.people.where
    second.badge("escort", 10 * SECOND, portal=MAIN_EXIT, direction="exit")  # in the room, not the corridor
    second.badge("clerk", 10 * SECOND, direction="exit")  # in the corridor, not the room
    second.advance(12 * SECOND)
    assert [d.reason_names for d in second.decisions] == [("anti_passback",), ("anti_passback",)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_swap_keeps_the_engines_places_and_takes_newer_ones_from_the_register(backend: str) -> None:
    s = Site(site("refuse", presence=(PresenceSpec(CLERK, CORRIDOR, 0),)), backend)
    s.badge("clerk", 1 * SECOND)  # into the room
    s.advance(3 * SECOND)
    stale = (PresenceSpec(CLERK, CORRIDOR, 0), PresenceSpec(ESCORT, ROOM, 2 * SECOND))
    s.engine.swap_snapshot(build_snapshot(site("refuse", presence=stale)))
    assert s.engine.people.where[CLERK].venue_id == ROOM  # the register had not heard yet
    assert s.engine.people.where[ESCORT].venue_id == ROOM  # another node's move, new to this engine
    newer = (PresenceSpec(CLERK, None, 5 * SECOND),)
    s.engine.swap_snapshot(build_snapshot(site("refuse", presence=newer)))
    assert s.engine.people.where[CLERK].venue_id is None and s.engine.people.inside(ROOM) == [ESCORT]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_badge_under_fire_release_moves_its_person_uncertainly(backend: str) -> None:
    s = Site(site("refuse", presence=(PresenceSpec(CLERK, ROOM, 0), PresenceSpec(ESCORT, ROOM, 0))), backend)
    s.engine.on_fire_alarm(FireAlarmInput(True, 1 * SECOND))
    s.badge("escort", 2 * SECOND, direction="exit")
    s.badge("clerk", 3 * SECOND, portal=MAIN_EXIT, direction="exit")  # refused (not in the corridor) yet out
    s.advance(5 * SECOND)
    assert s.decision("escort").allow and not s.decision("clerk").allow
    assert [(c.person_id, c.cause, c.uncertain) for c in s.presence] == [(ESCORT, "badge", False),
                                                                        (CLERK, "fire_release", True)]
    # an uncertain place is not held against the next badge
    s.engine.on_fire_alarm(FireAlarmInput(False, 6 * SECOND))
    s.badge("clerk", 7 * SECOND, portal=MAIN_EXIT, direction="entry")
    s.advance(9 * SECOND)
    assert s.decision("clerk").allow and s.engine.people.inside(CORRIDOR) == [ESCORT, CLERK]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_override_of_a_tailgating_block_moves_the_person_uncertainly(backend: str) -> None:
    s = Site(site(), backend)
    s.badge("visitor", 1 * SECOND)
    s.advance(3 * SECOND)
    s.engine.on_override(OverrideRequest(ROOM_DOOR, GUARD, 4 * SECOND, "escorted by the guard in person"))
    s.advance(5 * SECOND)
    assert s.decisions[-1].override_by == GUARD and s.decisions[-1].allow
    assert [(c.person_id, c.cause, c.to_venue_id) for c in s.presence] == [(VISITOR, "override", ROOM)]
    s.advance(20 * SECOND)  # nobody is with the visitor in the room
    assert s.alarm_kinds() == ["visitor_unescorted"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_more_people_through_an_opened_door_than_badged_makes_their_places_uncertain(backend: str) -> None:
    s = Site(site("refuse", presence=(PresenceSpec(CLERK, CORRIDOR, 0),)), backend)
    s.badge("clerk", 1 * SECOND)
    s.advance(2 * SECOND)
    assert s.decision("clerk").allow
    s.engine.on_camera(CameraCount(ROOM_DOOR, 1, 3 * SECOND))  # as many as badged: nothing
    s.engine.on_camera(CameraCount(ROOM_DOOR, 2, 4 * SECOND))  # someone came in with the clerk
    s.advance(5 * SECOND)
    assert [(c.cause, c.from_venue_id, c.to_venue_id, c.uncertain) for c in s.presence] == [
        ("badge", CORRIDOR, ROOM, False), ("tailgating", ROOM, ROOM, True)]
    assert s.engine.people.where[CLERK].uncertain
    s.badge("clerk", 6 * SECOND, portal=MAIN_EXIT, direction="exit")  # an uncertain place is not held against it
    s.advance(8 * SECOND)
    assert s.decision("clerk").allow


@pytest.mark.parametrize("backend", BACKENDS)
def test_items_crossing_in_after_an_entry_are_brought_by_that_person(backend: str) -> None:
    item = ItemSpec(900, epc_for(900), None, 3, "active", CORRIDOR, (CLERK,))
    s = Site(site(items=(item,)), backend)
    s.badge("clerk", 1 * SECOND)
    s.advance(2 * SECOND)
    assert s.decision("clerk").allow and s.decision("clerk").direction == "entry"
    end = carry(s.engine, ROOM_DOOR, [item.epc], 2 * SECOND, outward=False)
    s.advance(end + 2 * SECOND)
    assert [(b.person_id, b.item_id, b.venue_id) for b in s.brought] == [(CLERK, 900, ROOM)]
    assert s.engine.venue_of(900) == ROOM


# --- property: presence counts on random walks -------------------------------------------------------
WALK_PEOPLE = (ESCORT, CLERK, GUARD, NOVICE)  # staff: no escort needed
NAMES = {ESCORT: "escort", CLERK: "clerk", GUARD: "guard", NOVICE: "novice"}
PORTALS = {ROOM_DOOR: (ROOM, CORRIDOR), MAIN_EXIT: (CORRIDOR, None)}


@given(steps=st.lists(st.tuples(st.sampled_from(WALK_PEOPLE), st.sampled_from(sorted(PORTALS)),
                                st.sampled_from(["exit", "entry"])), max_size=40),
       mode=st.sampled_from(["refuse", "alarm", "off"]), backend=st.sampled_from(BACKENDS))
def test_presence_counts_never_go_negative_and_equal_entries_minus_exits(
        steps: list[tuple[int, int, str]], mode: str, backend: str) -> None:
    """Everybody starts outside; each step is a badge, possibly not where the person is (refused under
    'refuse', allowed and alarmed under 'alarm', allowed under 'off'). The count of each venue equals the
    moves into it minus the moves out of it, and never goes negative."""
    s = Site(site(mode, presence=tuple(PresenceSpec(p, None, 0) for p in WALK_PEOPLE)), backend)
    flow: Counter[int | None] = Counter({None: len(WALK_PEOPLE)})
    t, wrong = SECOND, 0
    for person, portal, direction in steps:
        before = s.engine.people.where[person].venue_id
        s.badge(NAMES[person], t, portal, direction)
        s.advance(t + SECOND)
        inside, outside = PORTALS[portal]
        src, dst = (outside, inside) if direction == "entry" else (inside, outside)
        allowed = s.decision(NAMES[person]).allow
        assert allowed == (mode != "refuse" or before == src)
        wrong += mode == "alarm" and before != src
        assert s.alarm_kinds().count("anti_passback") == wrong
        if allowed:
            flow[dst] += 1
            flow[before] -= 1
        counts = s.engine.people.counts()
        assert all(n >= 0 for n in counts.values())
        assert all(counts[v] == flow[v] for v in (CORRIDOR, ROOM, None))
        t += 2 * SECOND
    assert sum(s.engine.people.counts().values()) == len(WALK_PEOPLE)
    assert len(s.presence) == sum(1 for d in s.decisions if d.allow)


def test_both_backends_agree_on_people_streams() -> None:
    """The people rules live in the engine above the core: a scripted stream gives equal outputs."""
    model = replace(site("alarm", meetings=(MeetingSpec(70, ROOM, 0, 30 * SECOND, (ESCORT, VISITOR)),)))
    outs = []
    for backend in BACKENDS:
        s = Site(model, backend)
        for k, who in enumerate(["escort", "visitor", "clerk", "novice", "visitor", "escort"]):
            s.badge(who, (k + 1) * SECOND, direction="entry" if k < 4 else "exit")
        s.advance(60 * SECOND)
        outs.append((s.decisions, s.alarms, s.presence))
    assert outs[0] == outs[1]


@given(st.data())
def test_presence_changes_add_up_to_the_counts_on_random_sites_and_streams(data: st.DataObject) -> None:
    """Whatever happens (forgives, fire releases, overrides, visitors, meetings): every count stays >= 0 and the
    counts move exactly by the presence changes reported, each taking its person from where they last were."""
    model = data.draw(sites())
    events = data.draw(streams(model))
    engine = Engine(build_snapshot(model), STREAM_CONFIG, data.draw(st.sampled_from(BACKENDS)))
    last = {p: place.venue_id for p, place in engine.people.where.items()}
    expected = engine.people.counts()
    out = run(engine, events, sorted(data.draw(st.sets(st.integers(0, len(events) - 1)))), 60 * SECOND)
    for change in sorted(out.presence, key=lambda c: (c.time_us, c.portal_id, c.person_id)):
        if change.person_id in last:
            expected[last[change.person_id]] -= 1
        expected[change.to_venue_id] += 1
        last[change.person_id] = change.to_venue_id
    counts = engine.people.counts()
    assert all(n >= 0 for n in counts.values())
    assert {k: n for k, n in counts.items() if n} == {k: n for k, n in expected.items() if n}

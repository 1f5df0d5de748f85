"""Exit decisions that cannot be fooled (issue 12): one scenario per way around the rules of
domain-rules.md 4.2-4.10, each run on both backends and asserting the rule, not the mechanism."""

from __future__ import annotations

from dataclasses import replace

import pytest

from registry.models import APPROVAL_KINDS as REGISTER_KINDS
from tests.tracking.sites import SECOND, antennas, carry, epc_for, rounds, vault_site
from tracking.engine import Engine
from tracking.events import BadgePresentation, InventoryRound, OverrideRequest, ReaderHealth, TagRead
from tracking.model import (
    APPROVAL_KINDS,
    AntennaSpec,
    ApprovalSpec,
    EngineConfig,
    ItemSpec,
    PendingReturn,
    PersonSpec,
    PortalSpec,
    SiteModel,
    VenueSpec,
)
from tracking.results import REASON_BIT, Decision, Output
from tracking.snapshot import build_snapshot

T0 = 10 * SECOND
CONFIG = EngineConfig()
CAP = CONFIG.settle_us
MS = 1000


@pytest.fixture(params=["numba", "reference"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def item(n: int, level: int = 3, status: str = "active", venue: int | None = 2, scope: tuple[int, ...] = (1,),
         tid: str | None = None) -> ItemSpec:
    return ItemSpec(n, epc_for(n), tid, level, status, venue, scope)


def carry_out(n: int, persons: tuple[int, ...] = (1,), uses: int = 1, **kw: object) -> ApprovalSpec:
    return ApprovalSpec(900 + n, "carry_out", (n,), persons, uses_left=uses, **kw)  # type: ignore[arg-type]


def engine_for(site: SiteModel, backend: str, config: EngineConfig = CONFIG) -> Engine:
    return Engine(build_snapshot(site), config, backend)


def rest(engine: Engine, portal: int, epc: str, start: int, end: int, rssi: float = -55.0, antenna: int = 1,
         step: int = 100 * MS, stale: bool = False) -> None:
    """An item lying (or held) by one antenna of a portal, read every `step`."""
    for t in range(start, end + 1, step):
        engine.on_read(TagRead(f"R{portal}", antenna, epc, t, rssi, stale=stale))


def badge(engine: Engine, portal: int, who: str, t: int) -> None:
    engine.on_badge(BadgePresentation(portal, who, t))


def only(decisions: list[Decision], who: str) -> Decision:
    [found] = [d for d in decisions if d.badge == who and d.override_by is None]
    return found


def kinds(out: Output) -> list[str]:
    return [a.kind for a in out.alarms]


# --- 1. waiting at the door -------------------------------------------------------------------
def test_an_item_resting_at_the_door_is_part_of_the_decision_however_long_it_waited(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),)), backend)
    rest(engine, 20, epc_for(1), T0, T0 + 8 * SECOND)  # alice stands there 8 s holding a secret item
    badge(engine, 20, "alice", T0 + 8 * SECOND)
    out = engine.advance(T0 + 20 * SECOND)
    decision = only(out.decisions, "alice")
    assert not decision.allow and decision.item_ids == (1,)
    assert decision.reason_names == ("approval_missing",)
    assert decision.resting == ((1, T0),)
    assert decision.decided_us == T0 + 8 * SECOND  # refused at once: its reads are clear
    assert out.alarms == []  # she never crossed: nothing to alarm


def test_alone_with_a_resting_top_secret_item_the_door_stays_shut(backend: str) -> None:
    site = vault_site(items=(item(1, level=4, scope=(1, 2)),), approvals=(carry_out(1, persons=(1, 2)),))
    engine = engine_for(site, backend)
    rest(engine, 20, epc_for(1), T0, T0 + 7 * SECOND)
    badge(engine, 20, "alice", T0 + 6 * SECOND)
    decision = only(engine.advance(T0 + 20 * SECOND).decisions, "alice")
    assert not decision.allow and decision.reason_names == ("two_person_rule",)
    assert decision.resting == ((1, T0),) and engine.uses_left(901) == 1


def test_a_door_opened_for_someone_coming_in_stays_shut_while_an_unapproved_item_rests_inside(backend: str) -> None:
    # the same door opens both ways: whoever stands inside with the item could hand it out (rule 1)
    engine = engine_for(vault_site(items=(item(1),)), backend)
    rest(engine, 20, epc_for(1), T0, T0 + 8 * SECOND)
    engine.on_badge(BadgePresentation(20, "alice", T0 + 8 * SECOND, direction="entry"))
    out = engine.advance(T0 + 20 * SECOND)
    decision = only(out.decisions, "alice")
    assert decision.direction == "entry" and not decision.allow
    assert decision.item_ids == (1,) and decision.reason_names == ("approval_missing",)
    assert decision.resting == ((1, T0),)
    assert out.alarms == []


def test_an_entry_with_a_resting_top_secret_item_needs_two_people_and_spends_no_approval(backend: str) -> None:
    site = vault_site(items=(item(1, level=4, scope=(1, 2)),), approvals=(carry_out(1, persons=(1, 2)),))
    engine = engine_for(site, backend)
    rest(engine, 20, epc_for(1), T0, T0 + 7 * SECOND)
    engine.on_badge(BadgePresentation(20, "alice", T0 + 6 * SECOND, direction="entry"))
    decision = only(engine.advance(T0 + 20 * SECOND).decisions, "alice")
    assert not decision.allow and decision.reason_names == ("two_person_rule",)
    assert decision.approval_ids == () and engine.uses_left(901) == 1


def test_an_override_lets_a_refused_entry_in_but_lets_no_resting_item_out(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),)), backend)
    rest(engine, 20, epc_for(1), T0, T0 + 4 * SECOND)
    engine.on_badge(BadgePresentation(20, "alice", T0 + 4 * SECOND, direction="entry"))
    assert not only(engine.advance(T0 + 5 * SECOND).decisions, "alice").allow
    engine.on_override(OverrideRequest(20, 5, T0 + 6 * SECOND, "alice is expected"))
    [override] = [d for d in engine.advance(T0 + 7 * SECOND).decisions if d.override_by == 5]
    assert override.allow and override.direction == "entry"
    end = carry(engine, 20, [epc_for(1)], T0 + 7 * SECOND)  # someone inside hands the item out
    assert "unauthorized_exit" in kinds(engine.advance(end + 20 * SECOND))


def test_a_stale_entry_badge_is_refused_as_an_entry(backend: str) -> None:
    engine = engine_for(vault_site(), backend)
    engine.on_badge(BadgePresentation(20, "alice", T0, direction="entry", stale=True))
    decision = only(engine.advance(T0 + 5 * SECOND).decisions, "alice")
    assert not decision.allow and decision.direction == "entry" and "stale_badge" in decision.reason_names


def test_an_item_being_brought_in_does_not_keep_the_entry_shut(backend: str) -> None:
    # an item outside, carried towards the door by the person coming in: it is not leaving
    engine = engine_for(vault_site(items=(item(1, venue=None),)), backend)
    end = carry(engine, 20, [epc_for(1)], T0, outward=False)
    engine.on_badge(BadgePresentation(20, "bob", end - 100 * MS, direction="entry"))
    out = engine.advance(end + 20 * SECOND)
    decision = only(out.decisions, "bob")
    assert decision.allow and decision.item_ids == () and decision.approval_ids == ()
    assert engine.venue_of(1) == 2


def test_once_the_resting_item_is_moved_away_the_door_opens(backend: str) -> None:
    site = vault_site(items=(item(1), item(2)), approvals=(carry_out(2),))
    engine = engine_for(site, backend)
    rest(engine, 20, epc_for(1), T0, T0 + 5 * SECOND, rssi=-65.0)  # left by the door, then taken away
    later = T0 + 5 * SECOND + CONFIG.reach_us + 1
    badge(engine, 20, "alice", later)
    rest(engine, 20, epc_for(2), later - 200 * MS, later + 200 * MS, step=50 * MS)
    decision = only(engine.advance(later + 2 * SECOND).decisions, "alice")
    assert decision.allow and decision.item_ids == (2,)


# --- 2. ambiguous reads never pass ------------------------------------------------------------
def test_one_weak_read_before_the_badge_holds_then_refuses_as_uncertain(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),)), backend)
    tb = T0 + 100 * MS
    engine.on_read(TagRead("R20", 1, epc_for(1), T0, -78.0))
    badge(engine, 20, "alice", tb)
    assert engine.advance(tb + CAP + CONFIG.reorder_us - 1).decisions == []  # held: the door stays shut
    decision = only(engine.advance(tb + CAP + CONFIG.reorder_us).decisions, "alice")
    assert not decision.allow and decision.decided_us == tb + CAP
    assert set(decision.reason_names) == {"uncertain_reads", "approval_missing"}
    assert decision.uncertain == (1,)


def test_reads_only_outside_of_an_item_believed_inside_are_uncertain(backend: str) -> None:
    site = vault_site(items=(item(1), item(2, venue=None)))  # 1 is in the office, 2 outside the unit
    engine = engine_for(site, backend)
    rest(engine, 20, epc_for(1), T0, T0 + 500 * MS, antenna=2)
    badge(engine, 20, "carol", T0 + 400 * MS)
    decision = only(engine.advance(T0 + 5 * SECOND).decisions, "carol")
    assert not decision.allow and "uncertain_reads" in decision.reason_names and decision.item_ids == (1,)
    engine = engine_for(site, backend)
    rest(engine, 20, epc_for(2), T0, T0 + 500 * MS, antenna=2)  # read outside, and outside it is
    badge(engine, 20, "carol", T0 + 400 * MS)
    decision = only(engine.advance(T0 + 5 * SECOND).decisions, "carol")
    assert decision.allow and decision.item_ids == ()


def test_a_weak_read_of_an_item_the_person_may_take_does_not_matter(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),), approvals=(carry_out(1),)), backend)
    engine.on_read(TagRead("R20", 1, epc_for(1), T0, -78.0))
    badge(engine, 20, "alice", T0 + 100 * MS)
    decision = only(engine.advance(T0 + 5 * SECOND).decisions, "alice")
    assert decision.allow and decision.uncertain == (1,) and decision.approval_ids == (901,)


def test_an_uncertain_item_that_becomes_clear_is_refused_at_once(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),)), backend)
    tb = T0 + 100 * MS
    engine.on_read(TagRead("R20", 1, epc_for(1), T0, -78.0))
    badge(engine, 20, "alice", tb)
    engine.on_read(TagRead("R20", 1, epc_for(1), tb + 50 * MS, -55.0))  # a second read: it is there
    decision = only(engine.advance(T0 + 5 * SECOND).decisions, "alice")
    assert decision.reason_names == ("approval_missing",) and decision.decided_us == tb + 50 * MS


# --- 3. RF bleed is not a movement ------------------------------------------------------------
def test_many_strong_reads_inside_and_one_weak_read_outside_is_not_a_crossing(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),)), backend)
    rest(engine, 20, epc_for(1), T0, T0 + 2 * SECOND, rssi=-50.0, step=50 * MS)
    engine.on_read(TagRead("R20", 2, epc_for(1), T0 + 2 * SECOND + 20 * MS, -78.0))
    out = engine.advance(T0 + 10 * SECOND)
    assert out.movements == [] and out.alarms == [] and engine.venue_of(1) == 2


@pytest.mark.parametrize(("per_side", "rssi", "moved"), [
    (3, -55.0, True), (2, -55.0, True), (2, -70.0, False), (1, -50.0, False), (3, -78.0, False),
    (3, float("nan"), True),  # a reader that reports no RSSI: counts and time order decide
])
def test_a_crossing_needs_plausible_evidence_on_both_sides(backend: str, per_side: int, rssi: float,
                                                           moved: bool) -> None:
    engine = engine_for(vault_site(items=(item(1),)), backend)
    rest(engine, 40, epc_for(1), T0, T0 + SECOND, rssi=-50.0, step=50 * MS)  # clearly inside first
    t = T0 + SECOND + 50 * MS
    for k in range(per_side):
        engine.on_read(TagRead("R40", 2, epc_for(1), t + k * 50 * MS, rssi))
    out = engine.advance(T0 + 10 * SECOND)
    assert [m.direction for m in out.movements] == (["exit"] if moved else [])
    for m in out.movements:
        assert CONFIG.movement_confidence_min <= m.confidence <= 1.0
    assert engine.venue_of(1) == (3 if moved else 2)


def test_the_confidence_threshold_is_configurable(backend: str) -> None:
    strict = EngineConfig(movement_confidence_min=0.9)
    engine = engine_for(vault_site(items=(item(1),)), backend, strict)
    carry(engine, 40, [epc_for(1)], T0, reads_per_side=2)
    assert engine.advance(T0 + 10 * SECOND).movements == []
    engine = engine_for(vault_site(items=(item(1),)), backend, strict)
    carry(engine, 40, [epc_for(1)], T0, reads_per_side=3)
    [movement] = engine.advance(T0 + 10 * SECOND).movements
    assert movement.confidence == 1.0


def test_direction_follows_the_time_order_of_the_sides(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1, venue=3),)), backend)
    carry(engine, 40, [epc_for(1)], T0, outward=False)
    assert [(m.direction, m.to_venue_id) for m in engine.advance(T0 + 10 * SECOND).movements] == [("entry", 2)]


def test_reads_on_an_ignored_antenna_are_no_evidence(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),)), backend)
    rest(engine, 40, epc_for(1), T0, T0 + SECOND, antenna=1, step=50 * MS)
    rest(engine, 40, epc_for(1), T0 + SECOND + 50 * MS, T0 + 2 * SECOND, antenna=3, step=50 * MS)
    out = engine.advance(T0 + 10 * SECOND)
    assert out.movements == [] and engine.stats["ignored_antenna"] == 20


# --- 4. one person, two badges ----------------------------------------------------------------
def two_badge_site(approved: tuple[int, ...] = (1, 2)) -> SiteModel:
    people = (PersonSpec(1, "alice", 4, (7,), badges=("alice-2",)),
              PersonSpec(2, "bob", 4, inactive_badges=("bob-old",)), PersonSpec(3, "carol", 2), PersonSpec(5, "gus", 3))
    return vault_site(items=(item(1, level=4, scope=(1, 2)),), approvals=(carry_out(1, persons=approved),),
                      people=people)


def test_one_person_with_two_badges_is_one_person(backend: str) -> None:
    engine = engine_for(two_badge_site(), backend)
    rest(engine, 20, epc_for(1), T0, T0 + SECOND)
    badge(engine, 20, "alice", T0 + 500 * MS)
    badge(engine, 20, "alice-2", T0 + 600 * MS)
    out = engine.advance(T0 + 10 * SECOND)
    assert [d.reason_names for d in out.decisions] == [("two_person_rule",), ("two_person_rule",)]
    assert {d.person_id for d in out.decisions} == {1}


def test_a_revoked_badge_is_refused_and_is_nobody_for_the_two_person_rule(backend: str) -> None:
    engine = engine_for(two_badge_site(), backend)
    rest(engine, 20, epc_for(1), T0, T0 + SECOND)
    badge(engine, 20, "alice", T0 + 500 * MS)
    badge(engine, 20, "bob-old", T0 + 600 * MS)
    out = engine.advance(T0 + 10 * SECOND)
    assert "person_inactive" in only(out.decisions, "bob-old").reason_names
    assert only(out.decisions, "alice").reason_names == ("two_person_rule",)


def test_two_carriers_where_one_waited_every_top_secret_item_is_checked(backend: str) -> None:
    # alice waits 3 s with two top-secret items; only the first is approved for bob too
    site = vault_site(items=(item(1, level=4, scope=(1,)), item(2, level=4, scope=(1,))),
                      approvals=(carry_out(1, persons=(1, 2)), carry_out(2, persons=(1,))))
    engine = engine_for(site, backend)
    rest(engine, 20, epc_for(1), T0, T0 + 4 * SECOND)
    rest(engine, 20, epc_for(2), T0, T0 + 4 * SECOND)
    badge(engine, 20, "alice", T0)
    badge(engine, 20, "bob", T0 + 3 * SECOND)
    out = engine.advance(T0 + 10 * SECOND)
    bob = only(out.decisions, "bob")
    assert not bob.allow and bob.item_ids == (1, 2)
    assert dict(bob.item_reasons)[2] & REASON_BIT["approval_missing"]
    assert engine.uses_left(901) == 1 and engine.uses_left(902) == 1


# --- 5. late and stale reads ------------------------------------------------------------------
def test_a_stale_read_of_a_destroyed_item_alarms_as_of_its_own_time(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1, status="destroyed"),)), backend)
    carry(engine, 40, [epc_for(1)], T0)  # reads queued on the reader while its link was down...
    engine.advance(T0 + 5 * SECOND)
    engine = engine_for(vault_site(items=(item(1, status="destroyed"),)), backend)
    for k, antenna in enumerate([1, 1, 1, 2, 2, 2]):
        engine.on_read(TagRead("R40", antenna, epc_for(1), T0 + k * 50 * MS, -50.0, stale=True))
    out = engine.advance(T0 + 5 * SECOND)
    seen = [a for a in out.alarms if a.kind == "destroyed_item_seen"]
    assert seen and all(a.late for a in seen) and seen[0].time_us == T0
    assert out.movements == [] and engine.venue_of(1) == 2  # never evidence for a movement
    assert engine.stats["stale_read"] == 6


def test_late_reads_raise_every_alarm_that_does_not_need_the_door(backend: str) -> None:
    items = (item(1, status="destroyed"), item(2, tid="E2801100AAAA"))
    engine = engine_for(vault_site(items=items), backend)
    engine.advance(T0 + 10 * SECOND)  # the horizon is past T0: the next reads arrive late
    engine.on_read(TagRead("R40", 1, "FFFF" * 6, T0, -50.0))
    engine.on_read(TagRead("R40", 1, epc_for(1), T0 + 1, -50.0))
    engine.on_read(TagRead("R40", 1, epc_for(2), T0 + 2, -50.0, "E2801100BBBB"))
    out = engine.advance(T0 + 11 * SECOND)
    raised = {(a.kind, a.time_us, a.late) for a in out.alarms if a.kind != "late_read"}
    assert raised == {("unregistered_tag", T0, True), ("destroyed_item_seen", T0 + 1, True),
                      ("possible_clone", T0 + 2, True)}
    assert len([a for a in out.alarms if a.kind == "late_read"]) == 3  # still a data-quality note
    assert out.movements == [] and engine.venue_of(2) == 2


def test_a_late_read_far_away_during_a_pass_is_impossible_travel(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),)), backend)
    rest(engine, 20, epc_for(1), T0, T0 + SECOND, step=50 * MS)  # at portal 20, x = 100 m
    engine.advance(T0 + 5 * SECOND)
    engine.on_read(TagRead("R40", 1, epc_for(1), T0 + 500 * MS, -50.0))  # late, at portal 40, x = 0
    out = engine.advance(T0 + 6 * SECOND)
    assert [(a.kind, a.portal_id, a.late) for a in out.alarms if a.kind == "possible_clone"] == \
        [("possible_clone", 40, True)]


def test_stale_reads_are_no_evidence_for_an_allow_or_a_movement(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1),))
    engine = engine_for(site, backend)
    for k, antenna in enumerate([1, 1, 1, 2, 2, 2]):
        engine.on_read(TagRead("R20", antenna, epc_for(1), T0 + k * 50 * MS, -50.0, stale=True))
    badge(engine, 20, "alice", T0 + 20 * MS)
    out = engine.advance(T0 + 5 * SECOND)
    assert out.movements == [] and "unauthorized_exit" not in kinds(out)
    assert only(out.decisions, "alice").item_ids == () and engine.uses_left(901) == 1


# --- 6. overrides and fail-secure -------------------------------------------------------------
def blocked_at_20(backend: str, site: SiteModel | None = None) -> tuple[Engine, Decision]:
    """carol refused at portal 20 with a secret item she has no approval for."""
    engine = engine_for(site or vault_site(items=(item(1, level=2, scope=(3,)),)), backend)
    rest(engine, 20, epc_for(1), T0, T0 + 500 * MS)
    badge(engine, 20, "carol", T0 + 400 * MS)
    block = only(engine.advance(T0 + SECOND).decisions, "carol")
    assert not block.allow
    return engine, block


def test_a_guard_override_of_a_fresh_block_opens_once_and_covers_the_crossing(backend: str) -> None:
    engine, block = blocked_at_20(backend)
    engine.on_override(OverrideRequest(20, 5, T0 + 5 * SECOND, "escorted to the registry", block.time_us))
    carry(engine, 20, [epc_for(1)], T0 + 6 * SECOND)
    out = engine.advance(T0 + 10 * SECOND)
    [override] = out.decisions
    assert override.allow and override.override_by == 5 and override.override_reason == "escorted to the registry"
    assert override.item_ids == (1,) and override.reasons == block.reasons and override.approval_ids == ()
    assert [m.direction for m in out.movements] == ["exit"] and "unauthorized_exit" not in kinds(out)
    engine.on_override(OverrideRequest(20, 5, T0 + 11 * SECOND, "again"))
    [again] = engine.advance(T0 + 12 * SECOND).decisions
    assert not again.allow and again.reason_names == ("override_no_block",)


def test_an_old_block_cannot_be_overridden(backend: str) -> None:
    engine, block = blocked_at_20(backend)
    late = block.decided_us + CONFIG.override_max_age_us + 1
    engine.on_override(OverrideRequest(20, 5, late, "old"))
    carry(engine, 20, [epc_for(1)], late + SECOND)
    out = engine.advance(late + 5 * SECOND)
    [refused] = out.decisions
    assert not refused.allow and refused.reason_names == ("override_block_too_old",) and refused.override_by == 5
    assert "unauthorized_exit" in kinds(out)


def test_only_the_latest_block_at_that_door_can_be_overridden(backend: str) -> None:
    engine, block = blocked_at_20(backend)
    badge(engine, 20, "dave", T0 + 2 * SECOND)  # a newer block at the same door
    engine.advance(T0 + 3 * SECOND)
    engine.on_override(OverrideRequest(20, 5, T0 + 4 * SECOND, "the one I saw", block.time_us))
    engine.on_override(OverrideRequest(40, 5, T0 + 4 * SECOND, "no block here"))
    out = engine.advance(T0 + 5 * SECOND)
    assert [(d.portal_id, d.reason_names) for d in out.decisions] == [
        (20, ("override_no_block",)), (40, ("override_no_block",))]


def test_an_allow_clears_the_block(backend: str) -> None:
    site = vault_site(items=(item(1, level=2, scope=(3,)), item(2)), approvals=(carry_out(2),))
    engine, _ = blocked_at_20(backend, site)
    badge(engine, 20, "alice", T0 + 3 * SECOND)  # carol's item was taken away; alice passes
    rest(engine, 20, epc_for(2), T0 + 3 * SECOND - 200 * MS, T0 + 3 * SECOND + 200 * MS)
    assert only(engine.advance(T0 + 4 * SECOND).decisions, "alice").allow
    engine.on_override(OverrideRequest(20, 5, T0 + 5 * SECOND, "late"))
    [refused] = engine.advance(T0 + 6 * SECOND).decisions
    assert refused.reason_names == ("override_no_block",)


def test_no_override_sends_a_top_secret_item_through_a_border_portal(backend: str) -> None:
    site = vault_site(items=(item(1, level=4, scope=(1, 2)),), approvals=(ApprovalSpec(901, "abroad", (1,), (1, 2)),))
    for who in (["alice", "bob"], ["mallory"]):  # refused for the border, or for an unknown badge
        engine = engine_for(site, backend)
        rest(engine, 30, epc_for(1), T0, T0 + 500 * MS)
        for k, name in enumerate(who):
            badge(engine, 30, name, T0 + 300 * MS + k * MS)
        assert not any(d.allow for d in engine.advance(T0 + 2 * SECOND).decisions)
        engine.on_override(OverrideRequest(30, 5, T0 + 3 * SECOND, "diplomatic pouch"))
        [refused] = engine.advance(T0 + 4 * SECOND).decisions
        assert not refused.allow and refused.reason_names == ("override_border_top_secret",)


def test_the_blocked_person_and_unknown_guards_cannot_override(backend: str) -> None:
    engine, _ = blocked_at_20(backend)
    for guard in (3, 999, 4):  # carol herself, nobody, dave (inactive)
        engine.on_override(OverrideRequest(20, guard, T0 + 2 * SECOND + guard, "let me"))
    out = engine.advance(T0 + 3 * SECOND)
    assert [d.reason_names for d in out.decisions] == [
        ("override_by_blocked_person",), ("override_unknown_guard",), ("override_unknown_guard",)]


def test_a_guard_who_badged_with_the_blocked_person_cannot_override(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1, scope=(5,)),)), backend)
    rest(engine, 40, epc_for(1), T0, T0 + 1500 * MS)
    badge(engine, 40, "gus", T0 + 400 * MS)  # gus may take it and goes first...
    badge(engine, 40, "carol", T0 + 800 * MS)  # ...carol, of the same party, may not
    engine.on_override(OverrideRequest(40, 5, T0 + 2 * SECOND, "she is with me"))
    out = engine.advance(T0 + 3 * SECOND)
    assert [(d.badge, d.allow) for d in out.decisions if d.override_by is None] == [("gus", True), ("carol", False)]
    assert [d.reason_names for d in out.decisions if d.override_by is not None] == [("override_by_blocked_person",)]


def test_readers_offline_fail_secure_refuses_until_they_are_back(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1, uses=2),))
    engine = engine_for(site, backend)
    engine.on_reader_health(ReaderHealth("R20", False, T0))
    badge(engine, 20, "alice", T0 + SECOND)
    decision = only(engine.advance(T0 + 2 * SECOND).decisions, "alice")
    assert decision.reason_names == ("readers_offline_fail_secure",) and decision.decided_us == T0 + SECOND
    engine.on_reader_health(ReaderHealth("R20", True, T0 + 3 * SECOND))
    badge(engine, 20, "alice", T0 + 4 * SECOND)
    rest(engine, 20, epc_for(1), T0 + 4 * SECOND - 200 * MS, T0 + 4 * SECOND + 200 * MS)
    assert only(engine.advance(T0 + 6 * SECOND).decisions, "alice").allow


def test_fail_secure_applies_only_from_the_venues_fail_secure_level(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1),))
    site = replace(site, venues=tuple(replace(v, fail_secure_level=4) if v.venue_id == 2 else v for v in site.venues))
    engine = engine_for(site, backend)
    engine.on_reader_health(ReaderHealth("R20", False, T0))
    badge(engine, 20, "alice", T0 + SECOND)
    assert only(engine.advance(T0 + 3 * SECOND).decisions, "alice").allow  # a secret office, level 4 needed


# --- 7. routes ----------------------------------------------------------------------------------
def route_site(approvals: tuple[ApprovalSpec, ...], items: tuple[ItemSpec, ...] = ()) -> SiteModel:
    """Office A (1, secret) -51-> corridor (2, internal) -52-> outside; corridor -53-> office B (3,
    secret), an exit-side door into B; archive (4, secret) -54-> corridor."""
    venues = (VenueSpec(1, 3), VenueSpec(2, 1), VenueSpec(3, 3), VenueSpec(4, 3))
    portals = (PortalSpec(51, 1, 2, antennas=antennas(51)), PortalSpec(52, 2, None, antennas=antennas(52)),
               PortalSpec(53, 2, 3, antennas=antennas(53)), PortalSpec(54, 4, 2, antennas=antennas(54)))
    people = (PersonSpec(1, "alice", 3), PersonSpec(2, "bob", 3))
    items = items or (ItemSpec(1, epc_for(1), None, 3, "active", 1, ()),)
    return SiteModel(items, venues, portals, people, approvals)


def exit_at(engine: Engine, portal: int, who: str, t: int, epcs: list[str]) -> Output:
    badge(engine, portal, who, t + 20 * MS)
    carry(engine, portal, epcs, t)
    return engine.advance(t + 3 * SECOND)


def test_an_approved_carry_out_passes_a_lower_corridor_on_one_use(backend: str) -> None:
    engine = engine_for(route_site((ApprovalSpec(901, "carry_out", (1,), (1,)),)), backend)
    first = exit_at(engine, 51, "alice", T0, [epc_for(1)])
    [d1] = first.decisions
    assert d1.allow and d1.approval_ids == (901,) and engine.uses_left(901) == 0
    assert "venue_ceiling" not in kinds(first)  # carried through the corridor in custody
    second = exit_at(engine, 52, "alice", T0 + 5 * SECOND, [epc_for(1)])
    [d2] = second.decisions
    assert d2.allow and d2.approval_ids == () and d2.route_approval_ids == (901,)
    assert [m.to_venue_id for m in first.movements + second.movements] == [2, None]
    assert second.alarms == []


def test_a_transfer_two_doors_away_is_allowed_at_each_door_of_its_route(backend: str) -> None:
    engine = engine_for(route_site((ApprovalSpec(902, "transfer", (1,), (1,), destination_venue_id=3),)), backend)
    first = exit_at(engine, 51, "alice", T0, [epc_for(1)])
    assert first.decisions[0].allow and engine.uses_left(902) == 0 and "venue_ceiling" not in kinds(first)
    second = exit_at(engine, 53, "alice", T0 + 5 * SECOND, [epc_for(1)])  # corridor -> office B
    [d2] = second.decisions  # alice is not in the item's scope: only the custody lets her through
    assert d2.allow and d2.route_approval_ids == (902,) and d2.approval_ids == ()
    assert engine.venue_of(1) == 3 and second.alarms == []


def test_an_approval_covers_its_route_and_nothing_else(backend: str) -> None:
    engine = engine_for(route_site((ApprovalSpec(902, "transfer", (1,), (1,), destination_venue_id=3),)), backend)
    exit_at(engine, 51, "alice", T0, [epc_for(1)])
    out = exit_at(engine, 52, "alice", T0 + 5 * SECOND, [epc_for(1)])  # out of the unit instead
    assert "approval_missing" in out.decisions[0].reason_names and "unauthorized_exit" in kinds(out)
    engine = engine_for(route_site((ApprovalSpec(901, "carry_out", (1,), (1,)),)), backend)
    exit_at(engine, 51, "alice", T0, [epc_for(1)])
    out = exit_at(engine, 52, "bob", T0 + 5 * SECOND, [epc_for(1)])  # a carrier the approval does not name
    assert "approval_missing" in out.decisions[0].reason_names


def test_a_transfer_without_destination_covers_one_door_and_rests_behind_it(backend: str) -> None:
    engine = engine_for(route_site((ApprovalSpec(903, "transfer", (1,), (1,)),)), backend)
    assert "destination_ceiling" in exit_at(engine, 51, "alice", T0, [epc_for(1)]).decisions[0].reason_names
    engine = engine_for(vault_site(items=(item(1),), approvals=(ApprovalSpec(903, "transfer", (1,), (1,)),)), backend)
    assert exit_at(engine, 20, "alice", T0, [epc_for(1)]).decisions[0].allow
    carry(engine, 20, [epc_for(1)], T0 + 5 * SECOND, outward=False)
    out = exit_at(engine, 20, "alice", T0 + 10 * SECOND, [epc_for(1)])
    assert out.decisions[0].reason_names == ("approval_used_up",)


def test_ceilings_apply_where_an_item_rests(backend: str) -> None:
    engine = engine_for(route_site(()), backend)
    out = exit_at(engine, 51, "alice", T0, [epc_for(1)])  # no approval: carried into the corridor anyway
    assert {"approval_missing", "destination_ceiling"} <= set(out.decisions[0].reason_names)
    assert {"venue_ceiling", "unauthorized_exit"} <= set(kinds(out))


def test_unclassified_items_never_need_an_exit_approval(backend: str) -> None:
    site = route_site((), items=(ItemSpec(1, epc_for(1), None, 0, "active", 1),))
    engine = engine_for(site, backend)
    assert exit_at(engine, 51, "bob", T0, [epc_for(1)]).decisions[0].allow
    out = exit_at(engine, 52, "bob", T0 + 5 * SECOND, [epc_for(1)])
    assert out.decisions[0].allow and out.alarms == []
    border = engine_for(vault_site(items=(item(1, level=0, scope=()),)), backend)
    assert exit_at(border, 30, "carol", T0, [epc_for(1)]).decisions[0].allow


@pytest.mark.parametrize(("policy", "allowed"), [(True, False), (False, True)])
def test_internal_items_follow_the_site_policy(backend: str, policy: bool, allowed: bool) -> None:
    engine = engine_for(vault_site(items=(item(1, level=1),)), backend, EngineConfig(internal_needs_approval=policy))
    decision = exit_at(engine, 20, "alice", T0, [epc_for(1)]).decisions[0]
    assert decision.allow is allowed and (allowed or decision.reason_names == ("approval_missing",))


# --- 8. early decision ----------------------------------------------------------------------------
def test_a_clean_exit_is_allowed_after_two_whole_rounds_not_at_the_cap(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),), approvals=(carry_out(1),)), backend)
    tb = T0
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + 100 * MS, step=10 * MS)
    rounds(engine, 20, tb - 200 * MS, tb + 100 * MS)
    badge(engine, 20, "alice", tb)
    assert engine.advance(tb + 20 * MS + CONFIG.reorder_us - 1).decisions == []
    decision = only(engine.advance(tb + 20 * MS + CONFIG.reorder_us).decisions, "alice")
    assert decision.allow and decision.decided_us == tb + 20 * MS < tb + CAP


def test_an_item_that_would_be_refused_refuses_on_its_first_read(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1), item(2)), approvals=(carry_out(1),)), backend)
    tb = T0
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + 100 * MS, step=10 * MS)
    rounds(engine, 20, tb - 200 * MS, tb + 100 * MS)
    badge(engine, 20, "alice", tb)
    engine.on_read(TagRead("R20", 1, epc_for(2), tb + 5 * MS, -55.0))
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert decision.reason_names == ("approval_missing",) and decision.decided_us == tb + 5 * MS


def test_each_armed_door_refuses_on_the_first_read_at_it_across_a_register_swap(backend: str) -> None:
    """Reads at two doors with armed decisions in one advance, after a swap: each decision is looked at
    again at the first read that changes its own door, not at the other door's nor later."""
    site = vault_site(items=(item(1, level=2), item(2, level=2), item(3, level=2)), approvals=(carry_out(1),))
    engine = engine_for(site, backend)
    tb = T0
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + 100 * MS, step=10 * MS)
    badge(engine, 20, "alice", tb)
    badge(engine, 40, "bob", tb)
    assert engine.advance(tb + 2 * MS + CONFIG.reorder_us).decisions == []  # both held: no rounds reported
    engine.swap_snapshot(build_snapshot(site))
    engine.on_read(TagRead("R40", 1, epc_for(2), tb + 30 * MS, -55.0))
    engine.on_read(TagRead("R20", 1, epc_for(3), tb + 50 * MS, -55.0))
    out = engine.advance(tb + SECOND)
    alice, bob = only(out.decisions, "alice"), only(out.decisions, "bob")
    assert not bob.allow and bob.item_ids == (2,) and bob.decided_us == tb + 30 * MS
    assert not alice.allow and alice.item_ids == (1, 3) and alice.decided_us == tb + 50 * MS


def test_an_unapproved_item_seen_in_the_last_round_before_the_cap_still_refuses(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1), item(2)), approvals=(carry_out(1),)), backend)
    tb = T0
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + CAP, step=10 * MS)
    rounds(engine, 20, tb - 200 * MS, tb + CAP, antennas=(1,))  # the outside antenna reports no rounds
    badge(engine, 20, "alice", tb)
    engine.on_read(TagRead("R20", 1, epc_for(2), tb + CAP - 10 * MS, -60.0))
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert decision.reason_names == ("approval_missing",) and decision.decided_us == tb + CAP - 10 * MS


def test_a_new_tag_restarts_the_count_of_clean_rounds(backend: str) -> None:
    site = vault_site(items=(item(1), item(2)), approvals=(ApprovalSpec(901, "carry_out", (1, 2), (1,)),))
    engine = engine_for(site, backend)
    tb = T0
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + 100 * MS, step=10 * MS)
    rest(engine, 20, epc_for(2), tb + 15 * MS, tb + 100 * MS, step=10 * MS)  # appears after the badge
    rounds(engine, 20, tb - 200 * MS, tb + 100 * MS)
    badge(engine, 20, "alice", tb)
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert decision.allow and decision.item_ids == (1, 2) and decision.decided_us == tb + 40 * MS


def test_fast_rounds_wait_for_the_floor_and_antenna_zero_means_every_antenna(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),), approvals=(carry_out(1),)), backend)
    tb = T0
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + 100 * MS, step=MS)
    for t in range(tb - 200 * MS, tb + 100 * MS, MS):
        engine.on_round(InventoryRound("R20", 0, t))
    badge(engine, 20, "alice", tb)
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert decision.allow and decision.decided_us == tb + CONFIG.decision_floor_us


def test_a_portal_without_round_reports_decides_at_the_cap(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1),), approvals=(carry_out(1),)), backend)
    rest(engine, 20, epc_for(1), T0 - 200 * MS, T0 + 100 * MS, step=10 * MS)
    badge(engine, 20, "alice", T0)
    decision = only(engine.advance(T0 + SECOND).decisions, "alice")
    assert decision.allow and decision.decided_us == T0 + CAP


def test_readers_lagging_behind_the_badge_keep_the_door_shut_at_the_cap(backend: str) -> None:
    """Rule 4.8: an item never passes because its reads are missing. The reader reported whole rounds up to
    the badge and then nothing more (its reads of the moment are still queued): what alice carries is not
    known, so the cap refuses instead of opening on an empty picture."""
    engine = engine_for(vault_site(items=(item(1), item(2)), approvals=(carry_out(1),)), backend)
    tb = T0
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb - 10 * MS, step=10 * MS)
    rounds(engine, 20, tb - 200 * MS, tb - 10 * MS)
    badge(engine, 20, "alice", tb)
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert not decision.allow and decision.reason_names == ("readers_behind",)
    assert decision.decided_us == tb + CAP
    # once the reader has caught up (a whole round after the badge on each antenna) the same walk opens
    engine = engine_for(vault_site(items=(item(1), item(2)), approvals=(carry_out(1),)), backend)
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + CAP, step=10 * MS)
    rounds(engine, 20, tb - 200 * MS, tb - 10 * MS)
    rounds(engine, 20, tb + CAP - 60 * MS, tb + CAP - 50 * MS, antennas=(1, 2))
    badge(engine, 20, "alice", tb)
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert decision.allow and decision.item_ids == (1,)


def test_a_reader_lagging_since_the_engine_started_keeps_the_door_shut_at_the_cap(backend: str) -> None:
    """Rule 4.8, with a reader that never reported a round in time since the engine started: an antenna
    that reports no rounds while the portal's reader reports them on another, or a reader whose round ends
    all arrive late (its link lagging from the start), is behind; the cap refuses instead of opening on the
    reads that happened to arrive."""
    site = vault_site(items=(item(1), item(2)), approvals=(carry_out(1),))
    tb = T0
    engine = engine_for(site, backend)  # the outside antenna has never reported a round
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + CAP, step=10 * MS)
    rounds(engine, 20, tb - 200 * MS, tb + CAP, antennas=(1,))
    badge(engine, 20, "alice", tb)
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert not decision.allow and decision.reason_names == ("readers_behind",)
    assert decision.decided_us == tb + CAP
    engine = engine_for(site, backend)  # every round end of the reader arrives after its moment
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + CAP, step=10 * MS)
    badge(engine, 20, "alice", tb)
    engine.advance(tb + 100 * MS)
    rounds(engine, 20, tb - 200 * MS, tb + 100 * MS - CONFIG.reorder_us)
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert not decision.allow and decision.reason_names == ("readers_behind",)
    assert engine.stats["late_round"] > 0
    # a second reader at the door that has not reported a round since the engine started
    second = (AntennaSpec("R20B", 1, "inside"), AntennaSpec("R20B", 2, "outside"))
    portals = tuple(replace(p, antennas=p.antennas + second) if p.portal_id == 20 else p for p in site.portals)
    engine = engine_for(replace(site, portals=portals), backend)
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + CAP, step=10 * MS)
    rounds(engine, 20, tb - 200 * MS, tb + CAP)
    badge(engine, 20, "alice", tb)
    decision = only(engine.advance(tb + SECOND).decisions, "alice")
    assert not decision.allow and decision.reason_names == ("readers_behind",)
    # the same walk with the reader never reporting rounds is decided at the cap on its reads, as before
    engine = engine_for(site, backend)
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + CAP, step=10 * MS)
    badge(engine, 20, "alice", tb)
    assert only(engine.advance(tb + SECOND).decisions, "alice").allow


def test_the_door_is_watched_while_open(backend: str) -> None:
    engine = engine_for(vault_site(items=(item(1), item(2)), approvals=(carry_out(1),)), backend)
    tb = T0
    rest(engine, 20, epc_for(1), tb - 200 * MS, tb + 100 * MS, step=10 * MS)
    rounds(engine, 20, tb - 200 * MS, tb + 100 * MS)
    badge(engine, 20, "alice", tb)
    carry(engine, 20, [epc_for(1), epc_for(2)], tb + 500 * MS)  # item 2 is handed over at the open door
    out = engine.advance(tb + 5 * SECOND)
    assert only(out.decisions, "alice").allow
    assert [(a.kind, a.item_id) for a in out.alarms] == [("unauthorized_exit", 2)]


# --- 9. return deadlines survive a restart ----------------------------------------------------------
def test_return_deadlines_come_from_the_register_at_start(backend: str) -> None:
    site = replace(vault_site(items=(item(1, venue=None),)), pending_returns=(PendingReturn(1, 901, T0),))
    engine = engine_for(site, backend)  # a fresh engine: it never saw the item leave
    out = engine.advance(T0 + 2 * SECOND)
    assert [(a.kind, a.item_id, a.time_us) for a in out.alarms] == [("overdue", 1, T0)]
    engine = engine_for(site, backend)
    carry(engine, 20, [epc_for(1)], T0 - 5 * SECOND, outward=False)  # back in time
    assert "overdue" not in kinds(engine.advance(T0 + 2 * SECOND))


def test_a_new_register_adds_deadlines_for_items_the_engine_did_not_see_return(backend: str) -> None:
    site = vault_site(items=(item(1, venue=None), item(2, venue=None)))
    engine = engine_for(site, backend)
    carry(engine, 20, [epc_for(2)], T0, outward=False)  # item 2 comes back; the register is behind
    engine.advance(T0 + 2 * SECOND)
    due = (PendingReturn(1, 901, T0 + 5 * SECOND), PendingReturn(2, 902, T0 + 5 * SECOND))
    engine.swap_snapshot(build_snapshot(replace(site, pending_returns=due)))
    assert [(a.kind, a.item_id) for a in engine.advance(T0 + 10 * SECOND).alarms] == [("overdue", 1)]



def test_reads_not_due_yet_at_a_register_swap_count_at_their_portal_in_the_new_register(backend: str) -> None:
    # the engine keeps reads past the horizon validated between calls; a new register renumbers readers
    engine = engine_for(vault_site(items=(item(1),)), backend)
    end = carry(engine, 20, [epc_for(1)], T0)  # three reads inside, then three outside
    engine.advance(T0 + 120 * MS)  # only the first reads are due: the others wait
    site = vault_site(items=(item(1),))
    engine.swap_snapshot(build_snapshot(replace(site, portals=tuple(reversed(site.portals)))))
    out = engine.advance(end + 2 * SECOND)
    assert [(m.item_id, m.portal_id, m.direction) for m in out.movements] == [(1, 20, "exit")]
    assert [(a.kind, a.portal_id) for a in out.alarms] == [("unauthorized_exit", 20)]

# --- 10. one vocabulary -----------------------------------------------------------------------------
def test_approval_kinds_are_the_registers() -> None:
    assert APPROVAL_KINDS == REGISTER_KINDS

"""One scenario per rule of domain-rules.md section 4, run on both backends."""

from __future__ import annotations

import pytest

from tests.tracking.sites import SECOND, carry, epc_for, vault_site
from tracking.engine import Engine
from tracking.events import BadgePresentation, CameraCount, DoorInput, FireAlarmInput, TagRead
from tracking.model import ApprovalSpec, EngineConfig, ItemSpec, PersonSpec, SiteModel
from tracking.results import REASON_BIT, Decision, Output
from tracking.snapshot import build_snapshot

T0 = 10 * SECOND
CONFIG = EngineConfig()


@pytest.fixture(params=["numba", "reference"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def item(n: int, level: int = 3, status: str = "active", venue: int = 2, scope: tuple[int, ...] = (1,),
         tid: str | None = None) -> ItemSpec:
    return ItemSpec(n, epc_for(n), tid, level, status, venue, scope)


def carry_out(n: int, persons: tuple[int, ...] = (1,), uses: int = 1, **kw: object) -> ApprovalSpec:
    return ApprovalSpec(900 + n, "carry_out", (n,), persons, uses_left=uses, **kw)  # type: ignore[arg-type]


def exit_with(site: SiteModel, backend: str, portal: int, epcs: list[str], badges: list[str],
              camera: int | None = None, stale: bool = False) -> tuple[Engine, Output]:
    engine = Engine(build_snapshot(site), CONFIG, backend)
    for k, badge in enumerate(badges):
        engine.on_badge(BadgePresentation(portal, badge, T0 + 20_000 + k * 1000, stale))
    if camera is not None:
        engine.on_camera(CameraCount(portal, camera, T0 + 10_000))
    carry(engine, portal, epcs, T0)
    return engine, engine.advance(T0 + 5 * SECOND)


def last_decision(out: Output) -> Decision:
    assert out.decisions, "no decision was made"
    return out.decisions[-1]


def kinds(out: Output) -> list[str]:
    return [a.kind for a in out.alarms]


def test_allowed_exit_with_valid_approval_consumes_it(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1),))
    engine, out = exit_with(site, backend, 20, [epc_for(1)], ["alice"])
    decision = last_decision(out)
    assert decision.allow and decision.item_ids == (1,) and decision.approval_ids == (901,)
    assert engine.uses_left(901) == 0
    assert [(m.item_id, m.direction, m.to_venue_id) for m in out.movements] == [(1, "exit", None)]
    assert engine.venue_of(1) is None
    assert "unauthorized_exit" not in kinds(out)


def test_approval_missing(backend: str) -> None:
    _, out = exit_with(vault_site(items=(item(1),)), backend, 20, [epc_for(1)], ["alice"])
    decision = last_decision(out)
    assert not decision.allow and decision.reason_names == ("approval_missing",)
    assert "unauthorized_exit" in kinds(out)  # carried out anyway: the guards are told


def test_approval_expired(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1, valid_from_us=0, valid_until_us=T0 - 1),))
    _, out = exit_with(site, backend, 20, [epc_for(1)], ["alice"])
    assert last_decision(out).reason_names == ("approval_expired",)


def test_approval_used_up(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1, uses=0),))
    _, out = exit_with(site, backend, 20, [epc_for(1)], ["alice"])
    assert last_decision(out).reason_names == ("approval_used_up",)


def test_approval_used_up_after_its_last_use(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1, uses=1),))
    engine, out = exit_with(site, backend, 20, [epc_for(1)], ["alice"])
    assert last_decision(out).allow
    carry(engine, 20, [epc_for(1)], T0 + 10 * SECOND, outward=False)
    engine.on_badge(BadgePresentation(20, "alice", T0 + 20 * SECOND + 20_000))
    carry(engine, 20, [epc_for(1)], T0 + 20 * SECOND)
    assert last_decision(engine.advance(T0 + 30 * SECOND)).reason_names == ("approval_used_up",)


def test_clearance(backend: str) -> None:
    site = vault_site(items=(item(1, scope=(3,)),), approvals=(carry_out(1, persons=(3,)),))
    _, out = exit_with(site, backend, 20, [epc_for(1)], ["carol"])  # carol: confidential only
    assert last_decision(out).reason_names == ("clearance",)


def test_scope(backend: str) -> None:
    # no approval needed (secret room to secret room), but bob is not in the item's knowledge scope
    _, out = exit_with(vault_site(items=(item(1),)), backend, 40, [epc_for(1)], ["bob"])
    assert last_decision(out).reason_names == ("scope",)


def test_scope_through_group_membership(backend: str) -> None:
    site = vault_site(items=(ItemSpec(1, epc_for(1), None, 3, "active", 2, (), (7,)),))
    _, out = exit_with(site, backend, 40, [epc_for(1)], ["alice"])  # alice is in group 7
    assert last_decision(out).allow


def test_destination_ceiling(backend: str) -> None:
    site = vault_site(items=(item(1, level=4, venue=1),),
                      approvals=(ApprovalSpec(901, "transfer", (1,), (1, 2)),))
    _, out = exit_with(site, backend, 10, [epc_for(1)], ["alice", "bob"])  # secret office
    assert last_decision(out).reason_names == ("destination_ceiling",)
    assert "venue_ceiling" in kinds(out)  # it went through anyway: the violation is raised at once


def test_two_person_rule(backend: str) -> None:
    site = vault_site(items=(item(1, level=4, venue=2, scope=(1, 2)),), approvals=(carry_out(1, persons=(1, 2)),))
    _, alone = exit_with(site, backend, 20, [epc_for(1)], ["alice"])
    assert "two_person_rule" in last_decision(alone).reason_names
    engine, pair = exit_with(site, backend, 20, [epc_for(1)], ["alice", "bob"])
    # both badges fall in the window of both decisions: both open, the approval is used once
    assert [d.allow for d in pair.decisions] == [True, True]
    assert [d.approval_ids for d in pair.decisions] == [(901,), ()]
    assert engine.uses_left(901) == 0 and "unauthorized_exit" not in kinds(pair)


def test_two_person_rule_second_badge_after_a_refusal(backend: str) -> None:
    site = vault_site(items=(item(1, level=4, venue=2, scope=(1, 2)),), approvals=(carry_out(1, persons=(1, 2)),))
    engine = Engine(build_snapshot(site), CONFIG, backend)
    engine.on_badge(BadgePresentation(20, "alice", T0))
    for k in range(30):  # the pair waits at the inside antennas for 3 s
        engine.on_read(TagRead("R20", 1, epc_for(1), T0 + k * 100_000, -50.0))
    engine.on_badge(BadgePresentation(20, "bob", T0 + 2 * SECOND))
    carry(engine, 20, [epc_for(1)], T0 + 3 * SECOND)
    out = engine.advance(T0 + 10 * SECOND)
    assert [(d.badge, d.reason_names) for d in out.decisions] == [("alice", ("two_person_rule",)), ("bob", ())]


def test_two_person_rule_needs_distinct_badges(backend: str) -> None:
    site = vault_site(items=(item(1, level=4, scope=(1,)),), approvals=(carry_out(1),))
    _, out = exit_with(site, backend, 20, [epc_for(1)], ["alice", "alice"])
    assert "two_person_rule" in last_decision(out).reason_names


def test_tailgating(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1),))
    _, out = exit_with(site, backend, 20, [epc_for(1)], ["alice"], camera=2)
    assert last_decision(out).reason_names == ("tailgating",)
    _, ok = exit_with(site, backend, 20, [epc_for(1)], ["alice"], camera=1)
    assert last_decision(ok).allow


def test_border_never_for_top_secret(backend: str) -> None:
    site = vault_site(items=(item(1, level=4, scope=(1, 2)),),
                      approvals=(ApprovalSpec(901, "abroad", (1,), (1, 2)),))
    _, out = exit_with(site, backend, 30, [epc_for(1)], ["alice", "bob"])
    assert "border" in last_decision(out).reason_names


def test_border_needs_abroad_approval(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1),))  # carry-out is not enough
    _, out = exit_with(site, backend, 30, [epc_for(1)], ["alice"])
    assert last_decision(out).reason_names == ("abroad_approval_missing",)
    abroad = vault_site(items=(item(1),), approvals=(ApprovalSpec(901, "abroad", (1,), (1,)),))
    _, ok = exit_with(abroad, backend, 30, [epc_for(1)], ["alice"])
    assert last_decision(ok).allow


def test_stale_badge_never_opens(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1),))
    _, out = exit_with(site, backend, 20, [epc_for(1)], ["alice"], stale=True)
    assert last_decision(out).reason_names == ("stale_badge",)


def test_late_badge_is_stale(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site()), CONFIG, backend)
    engine.advance(T0)
    engine.on_badge(BadgePresentation(40, "alice", T0 - SECOND))
    decision = last_decision(engine.advance(T0 + SECOND))
    assert not decision.allow and "stale_badge" in decision.reason_names


def test_a_badge_held_up_in_the_host_is_decided_when_it_arrives(backend: str) -> None:
    site = vault_site(items=(item(1), item(2)), approvals=(carry_out(1),))
    for epc, allowed in ((epc_for(1), True), (epc_for(2), False)):
        engine = Engine(build_snapshot(site), CONFIG, backend)
        carry(engine, 20, [epc], T0)
        engine.advance(T0 + 100_000)
        engine.on_badge(BadgePresentation(20, "alice", T0 + 50_000))  # 30 ms older than the horizon
        out = engine.advance(T0 + SECOND)
        decision = last_decision(out)
        assert decision.allow is allowed and decision.time_us == T0 + 50_000
        assert decision.decided_us > T0 + 100_000 - CONFIG.reorder_us and engine.stats["late_badge_retimed"] == 1


def test_unknown_badge(backend: str) -> None:
    _, out = exit_with(vault_site(), backend, 40, [], ["mallory"])
    decision = last_decision(out)
    assert decision.person_id is None and decision.reason_names == ("unknown_badge",)


def test_person_inactive(backend: str) -> None:
    _, out = exit_with(vault_site(), backend, 40, [], ["dave"])
    assert last_decision(out).reason_names == ("person_inactive",)


def test_item_status_destroyed_is_blocked_and_alarmed(backend: str) -> None:
    _, out = exit_with(vault_site(items=(item(1, status="destroyed"),)), backend, 40, [epc_for(1)], ["alice"])
    assert "item_status" in last_decision(out).reason_names
    assert "destroyed_item_seen" in kinds(out)


def test_unregistered_tag_alarm_once_per_period(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site()), CONFIG, backend)
    carry(engine, 40, ["FFFF" * 6], T0)
    out = engine.advance(T0 + SECOND)
    alarms = [a for a in out.alarms if a.kind == "unregistered_tag"]
    assert len(alarms) == 1 and alarms[0].epc == "FFFF" * 6 and alarms[0].portal_id == 40
    assert engine.stats["unregistered_read"] == 6


def test_possible_clone_impossible_travel(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site(items=(item(1),))), CONFIG, backend)
    engine.on_read(TagRead("R40", 1, epc_for(1), T0, -50.0))
    engine.on_read(TagRead("R20", 1, epc_for(1), T0 + SECOND, -50.0))  # 100 m in 1 s
    engine.on_read(TagRead("R40", 1, epc_for(1), T0 + 60 * SECOND, -50.0))  # plausible
    out = engine.advance(T0 + 70 * SECOND)
    clones = [a for a in out.alarms if a.kind == "possible_clone"]
    assert [(a.portal_id, a.time_us) for a in clones] == [(20, T0 + SECOND)]


def test_possible_clone_tid_mismatch(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site(items=(item(1, tid="E2801100AAAA"),))), CONFIG, backend)
    engine.on_read(TagRead("R40", 1, epc_for(1), T0, -50.0, "E2801100AAAA"))
    engine.on_read(TagRead("R40", 1, epc_for(1), T0 + 1000, -50.0, "E2801100BBBB"))
    engine.on_read(TagRead("R40", 1, epc_for(1), T0 + 2000, -50.0, "E2801100BBBB"))
    out = engine.advance(T0 + SECOND)
    assert [a.detail for a in out.alarms if a.kind == "possible_clone"] == ["TID does not match register"]


def test_venue_ceiling_on_entry(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site(items=(item(1, level=4, venue=None),))), CONFIG, backend)
    carry(engine, 20, [epc_for(1)], T0, outward=False)  # top-secret item walks into the secret office
    out = engine.advance(T0 + 2 * SECOND)
    assert [(m.direction, m.to_venue_id) for m in out.movements] == [("entry", 2)]
    assert kinds(out) == ["venue_ceiling"]


def test_stray_reads_raise_nothing(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site(items=(item(1),))), CONFIG, backend)
    for k in range(100):  # an item resting by the inside antenna, read every 100 ms
        engine.on_read(TagRead("R20", 1, epc_for(1), T0 + k * 100_000, -70.0))
    out = engine.advance(T0 + 20 * SECOND)
    assert out.movements == [] and out.alarms == [] and engine.venue_of(1) == 2


def test_resting_item_keeps_the_door_shut_for_a_person_who_may_not_take_it(backend: str) -> None:
    site = vault_site(items=(item(1), item(2)), approvals=(carry_out(2),))
    engine = Engine(build_snapshot(site), CONFIG, backend)
    for k in range(100):  # item 1 rests by the inside antenna for 10 s; alice has no approval for it
        engine.on_read(TagRead("R20", 1, epc_for(1), T0 + k * 100_000, -70.0))
    start = T0 + 8 * SECOND
    engine.on_badge(BadgePresentation(20, "alice", start + 20_000))
    carry(engine, 20, [epc_for(2)], start)
    out = engine.advance(T0 + 20 * SECOND)
    decision = last_decision(out)
    assert not decision.allow and decision.item_ids == (1, 2)
    assert decision.item_reasons == ((1, REASON_BIT["approval_missing"]),)
    assert decision.resting == ((1, T0),)  # the guard sees which item rests there, and since when
    assert [a.kind for a in out.alarms if a.item_id == 1] == []  # resting raises no alarm by itself


def test_uncertain_single_read_is_no_movement(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site(items=(item(1),))), CONFIG, backend)
    engine.on_read(TagRead("R20", 1, epc_for(1), T0, -80.0))  # seen once, inside
    engine.on_read(TagRead("R20", 2, epc_for(1), T0 + SECOND, -80.0))  # later, only outside
    engine.on_read(TagRead("R20", 2, epc_for(1), T0 + SECOND + 1000, -80.0))
    out = engine.advance(T0 + 3 * SECOND)
    assert out.movements == [] and out.alarms == []


def test_decision_waits_for_the_settle_window(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1),))
    engine = Engine(build_snapshot(site), CONFIG, backend)
    engine.on_badge(BadgePresentation(20, "alice", T0))
    engine.on_read(TagRead("R20", 1, epc_for(1), T0 + 100_000, -50.0))  # seen just after the badge
    early = engine.advance(T0 + CONFIG.settle_us + CONFIG.reorder_us - 1)
    assert early.decisions == []
    decision = last_decision(engine.advance(T0 + CONFIG.settle_us + CONFIG.reorder_us))
    assert decision.allow and decision.item_ids == (1,)


def test_overdue_return(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1, return_by_us=T0 + 60 * SECOND),))
    engine, out = exit_with(site, backend, 20, [epc_for(1)], ["alice"])
    assert last_decision(out).allow
    assert "overdue" not in kinds(engine.advance(T0 + 60 * SECOND))
    late = engine.advance(T0 + 61 * SECOND)
    assert [(a.kind, a.item_id, a.time_us) for a in late.alarms] == [("overdue", 1, T0 + 60 * SECOND)]


def test_returned_in_time_is_not_overdue(backend: str) -> None:
    site = vault_site(items=(item(1),), approvals=(carry_out(1, return_by_us=T0 + 60 * SECOND),))
    engine, _ = exit_with(site, backend, 20, [epc_for(1)], ["alice"])
    carry(engine, 20, [epc_for(1)], T0 + 30 * SECOND, outward=False)
    out = engine.advance(T0 + 90 * SECOND)
    assert [m.direction for m in out.movements] == ["entry"] and "overdue" not in kinds(out)


def test_door_forced_and_granted(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site()), CONFIG, backend)
    engine.on_door(DoorInput(40, True, T0))
    engine.on_badge(BadgePresentation(40, "alice", T0 + SECOND))
    engine.on_door(DoorInput(40, True, T0 + 2 * SECOND))
    out = engine.advance(T0 + 5 * SECOND)
    assert [(a.kind, a.time_us) for a in out.alarms] == [("door_forced", T0)]


def test_movement_under_emergency_release(backend: str) -> None:
    engine = Engine(build_snapshot(vault_site(items=(item(1),))), CONFIG, backend)
    engine.on_fire_alarm(FireAlarmInput(True, T0 - SECOND))
    engine.on_door(DoorInput(20, True, T0 - 500_000))  # released door: not forced
    carry(engine, 20, [epc_for(1)], T0)
    engine.on_fire_alarm(FireAlarmInput(False, T0 + 5 * SECOND))
    out = engine.advance(T0 + 10 * SECOND)
    assert "emergency_release_movement" in kinds(out) and "door_forced" not in kinds(out)


def test_people_other_than_holders_get_their_own_groups() -> None:
    site = vault_site(people=(PersonSpec(1, "alice", 4, (7,)),))
    assert build_snapshot(site).badge_person == {"alice": 0}

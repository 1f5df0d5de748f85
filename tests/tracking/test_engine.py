"""Engine plumbing: buffer draining, approvals used from outside, synthetic load, bad arguments."""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest

from tests.tracking.sites import SECOND, carry, epc_for, vault_site
from tracking import numba_core
from tracking.engine import Engine
from tracking.events import BadgePresentation
from tracking.model import ApprovalSpec, EngineConfig, ItemSpec
from tracking.snapshot import build_snapshot
from tracking.synthetic import synthetic_reads, synthetic_site


def test_synthetic_load_agrees_with_the_reference() -> None:
    snapshot = build_snapshot(synthetic_site(300, n_portals=12, n_people=50))
    batch = synthetic_reads(snapshot, 6000, reads_per_pass=6, pass_gap_us=20_000, unknown_fraction=0.01)
    results = []
    for backend in ("numba", "reference"):
        engine = Engine(snapshot, EngineConfig(), backend)
        first = engine.process(batch)
        rest = engine.advance(2**40)
        results.append((sorted(first.movements + rest.movements, key=repr),
                        sorted(first.alarms + rest.alarms, key=repr)))
    assert results[0] == results[1]
    assert len(results[0][0]) > 100  # the load really moves items


def test_decisions_under_load_agree_with_the_reference() -> None:
    """Badges at every door while passes are open at all of them and items go from door to door, with a
    register swap halfway: each decision judges the items within reach of its own door, as the reference
    does (the Numba core lists the passes of each door apart, so a decision does not scan the others)."""
    site = synthetic_site(300, n_portals=12, n_people=50)
    snapshot = build_snapshot(site)
    smaller = build_snapshot(replace(site, items=site.items[1:]))  # every item index moves by one
    batch = synthetic_reads(snapshot, 12_000, reads_per_pass=6, pass_gap_us=10_000)
    end = int(batch.time_us[-1])
    middle = int(batch.time_us[len(batch) // 2])
    badges = [BadgePresentation(n % 12, site.people[n % 50].badge, t)
              for n, t in enumerate(range(int(batch.time_us[0]), end, 7_000))]
    results = []
    for backend in ("numba", "reference"):
        engine = Engine(snapshot, EngineConfig(), backend)
        for badge in badges:
            engine.on_badge(badge)
        engine.ingest(batch.rows(0, len(batch) // 2))
        first = engine.advance(middle)
        engine.swap_snapshot(smaller)
        engine.ingest(batch.rows(len(batch) // 2, len(batch)))
        rest = engine.advance(end + 10 * SECOND)
        results.append(sorted(first.decisions + rest.decisions, key=repr))
    assert results[0] == results[1]
    assert sum(len(d.item_ids) for d in results[0]) > 100  # the decisions really judge items


def test_small_output_buffers_are_drained_without_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = build_snapshot(synthetic_site(200, n_portals=8, n_people=20))
    # ~40 foreign tags: more than the small buffer of unknown rows holds
    batch = synthetic_reads(snapshot, 4000, reads_per_pass=4, pass_gap_us=30_000, unknown_fraction=0.01)
    big = Engine(snapshot, EngineConfig(), "numba")
    expected = (big.process(batch), big.advance(2**40))
    monkeypatch.setattr(numba_core, "_BUFFER", 8)
    small = Engine(snapshot, EngineConfig(), "numba")
    got = (small.process(batch), small.advance(2**40))
    assert [sorted(o.movements, key=repr) for o in got] == [sorted(o.movements, key=repr) for o in expected]
    assert [sorted(o.alarms, key=repr) for o in got] == [sorted(o.alarms, key=repr) for o in expected]
    assert small.stats["unregistered_read"] == big.stats["unregistered_read"] > 8


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_consume_from_outside_uses_up_the_approval(backend: str) -> None:
    site = vault_site(items=(ItemSpec(1, epc_for(1), None, 3, "active", 2, (1,)),),
                      approvals=(ApprovalSpec(9, "carry_out", (1,), (1,), uses_left=2),))
    engine = Engine(build_snapshot(site), EngineConfig(), backend)
    engine.consume(9)
    engine.consume(9, uses=5)
    assert engine.uses_left(9) == 0
    engine.on_badge(BadgePresentation(20, "alice", 10 * SECOND + 20_000))
    carry(engine, 20, [epc_for(1)], 10 * SECOND)
    decision = engine.advance(20 * SECOND).decisions[0]
    assert decision.reason_names == ("approval_used_up",)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        Engine(build_snapshot(vault_site()), EngineConfig(), "gpu")  # type: ignore[arg-type]


def test_badge_at_an_unknown_portal_is_refused() -> None:
    engine = Engine(build_snapshot(vault_site()), EngineConfig(), "numba")
    engine.on_badge(BadgePresentation(999, "alice", SECOND))
    decision = engine.advance(5 * SECOND).decisions[0]
    assert not decision.allow and decision.reason_names == ("unknown_portal",)


def test_malformed_epc_is_simply_not_found() -> None:
    assert build_snapshot(vault_site()).item_index("not an epc") == -1


def test_advance_leaves_the_garbage_collector_as_it_found_it() -> None:
    engine = Engine(build_snapshot(vault_site()), EngineConfig(), "numba")
    was_enabled = gc.isenabled()
    try:
        for enabled in (True, False, True):
            (gc.enable if enabled else gc.disable)()
            engine.advance(SECOND)
            assert gc.isenabled() is enabled
    finally:
        (gc.enable if was_enabled else gc.disable)()

"""Adversarial walks (hypothesis) checked against the rules of domain-rules.md 4, stated here from the
events alone, not from the engine's state: dwelling at the door, weak, one-sided and bleed reads,
stale and late reads, second badges, round reports, readers dropping out, overrides of old blocks.

- no item that may not leave is in an allowed crossing: every item read inside within reach of the
  door is in the decision, and each item of an allowed decision passes the rule's necessary tests;
- no movement without two-sided evidence: at least two reads on each side of the pass, in order;
- no override of anything but the latest, fresh block, never the blocked person's, never a
  top-secret item at a border portal;
- stale and late reads are evidence for nothing: movements and decisions are those of the same walk
  without them.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from tests.tracking.sites import CONFIG, SECOND, Event, feed, run, sites, streams
from tracking.engine import Engine
from tracking.events import BadgePresentation, TagRead
from tracking.model import INTERNAL, TOP_SECRET, PersonSpec, SiteModel
from tracking.results import Decision, Movement, Output
from tracking.snapshot import build_snapshot

END = 60 * SECOND
EXIT_KINDS = ("carry_out", "transfer", "abroad")


def _person(site: SiteModel, badge: str) -> PersonSpec | None:
    return next((p for p in site.people if badge in p.all_badges), None)


def _level(site: SiteModel, item_id: int) -> int:
    it = next(i for i in site.items if i.item_id == item_id)
    return 0 if it.status == "declassified" else it.level


def _evidence(events: list[Event], site: SiteModel) -> dict[int, list[tuple[int, int, int]]]:
    """Per item: (time, portal, side 1 inside / 2 outside) of its live reads on tracked antennas."""
    by_epc = {it.epc.upper(): it.item_id for it in site.items}
    sides = {(a.reader, a.antenna): (p.portal_id, {"inside": 1, "outside": 2}.get(a.side, 0))
             for p in site.portals for a in p.antennas}
    reads: dict[int, list[tuple[int, int, int]]] = {}
    for e in events:
        if isinstance(e, TagRead) and not e.stale and e.epc.upper() in by_epc:
            portal, side = sides.get((e.reader, e.antenna), (None, 0))
            if portal is not None and side:
                reads.setdefault(by_epc[e.epc.upper()], []).append((e.time_us, portal, side))
    return {i: sorted(r) for i, r in reads.items()}  # stable: equal times keep arrival order


def _check_allowed_exits(site: SiteModel, events: list[Event], out: Output) -> None:
    c = CONFIG
    portals = {p.portal_id: p for p in site.portals}
    venues = {v.venue_id: v for v in site.venues}
    reads = _evidence(events, site)
    badges = [e for e in events if isinstance(e, BadgePresentation)]
    allows = [d for d in out.decisions if d.allow]
    for d in allows:
        if d.override_by is not None:
            continue
        person = _person(site, d.badge)
        assert person is not None and person.active and d.badge not in person.inactive_badges
        portal = portals[d.portal_id]
        # every item last seen inside the door, within reach, is part of the decision; an entry opens the
        # same door, so those items must pass it as well (it lists none: nothing is carried out under it)
        judged = set(d.item_ids)
        for item_id, rs in reads.items():
            here = [(t, side) for t, p, side in rs if p == d.portal_id and d.time_us - c.reach_us <= t <= d.decided_us]
            if not here or here[-1][1] != 1:
                continue
            elsewhere = any(p != d.portal_id and here[-1][0] <= t <= d.decided_us for t, p, _ in rs)
            moved = any(m.item_id == item_id and m.portal_id == d.portal_id and m.time_us <= d.decided_us
                        for m in out.movements)
            if elsewhere or moved:
                continue
            if d.direction == "exit":
                assert item_id in d.item_ids, f"item {item_id} within reach left out of {d}"
            elif _venue_at(site, out.movements, item_id, d.decided_us) != portal.outside_venue_id:
                judged.add(item_id)  # not one being brought in
        for item_id in sorted(judged):
            it = next(i for i in site.items if i.item_id == item_id)
            level = _level(site, item_id)
            assert it.status not in ("destroyed", "seized")
            assert level <= person.clearance
            if level == TOP_SECRET:
                assert not portal.border
                cleared = {p.person_id for b in badges if b.portal_id == d.portal_id and not b.stale
                           and d.decided_us - c.two_person_us <= b.time_us <= d.decided_us
                           and (p := _person(site, b.badge)) is not None and p.active and p.clearance >= TOP_SECRET
                           and b.badge not in p.inactive_badges}
                assert len(cleared) >= 2, f"top-secret item {item_id} allowed for {cleared}"
            outside = portal.outside_venue_id
            lower = outside is None or venues[outside].ceiling < venues[portal.inside_venue_id].ceiling
            needs = level > INTERNAL or (level == INTERNAL and c.internal_needs_approval)
            if needs and (lower or portal.border):
                kinds = ("abroad",) if portal.border else EXIT_KINDS
                approved = any(item_id in a.item_ids and a.kind in kinds
                               and (person.person_id in a.person_ids or set(person.group_ids) & set(a.group_ids))
                               and a.valid_from_us <= d.time_us < a.valid_until_us for a in site.approvals)
                companion = any(o.allow and o.portal_id == d.portal_id and item_id in o.item_ids and o is not d
                                and d.time_us - c.two_person_us <= o.decided_us <= d.decided_us for o in allows)
                assert approved or companion, f"item {item_id} left without an approval in {d}"


def _venue_at(site: SiteModel, movements: list[Movement], item_id: int, t: int) -> int | None:
    """The item's venue at t: where its last movement by then took it, else where the register had it."""
    moves = [m for m in movements if m.item_id == item_id and m.time_us <= t]
    if moves:
        return max(moves, key=lambda m: m.time_us).to_venue_id
    return next(i.venue_id for i in site.items if i.item_id == item_id)


def _check_movements(site: SiteModel, events: list[Event], movements: list[Movement]) -> None:
    reads = _evidence(events, site)
    portals = {p.portal_id: p for p in site.portals}
    for m in movements:
        rs = reads[m.item_id]
        end = max(k for k, (t, p, _) in enumerate(rs) if t == m.time_us and p == m.portal_id)
        start = end
        while start > 0 and rs[start - 1][1] == m.portal_id and rs[start][0] - rs[start - 1][0] <= CONFIG.settle_us:
            start -= 1
        sides = [side for _, _, side in rs[start:end + 1]]
        assert sides.count(1) >= 2 and sides.count(2) >= 2, f"{m} from reads {rs[start:end + 1]}"
        src, dst = (1, 2) if m.direction == "exit" else (2, 1)
        assert sides[0] == src and sides[-1] == dst
        portal = portals[m.portal_id]
        assert (m.from_venue_id, m.to_venue_id) == ((portal.inside_venue_id, portal.outside_venue_id)
                                                   if m.direction == "exit" else
                                                   (portal.outside_venue_id, portal.inside_venue_id))
        assert CONFIG.movement_confidence_min <= m.confidence <= 1.0


def _check_overrides(site: SiteModel, out: Output) -> None:
    portals = {p.portal_id: p for p in site.portals}
    for o in out.decisions:
        if o.override_by is None or not o.allow:
            continue
        # an override that was refused changes nothing at the door: it is neither a block nor an allow
        before = [d for d in out.decisions if d.portal_id == o.portal_id and d is not o
                  and d.decided_us <= o.decided_us and (d.override_by is None or d.allow)]
        assert before, f"override without a block: {o}"
        moment = max(d.decided_us for d in before)  # decisions of one moment: any of them may be the latest
        latest = [d for d in before if d.decided_us == moment]
        assert any(not d.allow and d.override_by is None and (d.badge, d.item_ids) == (o.badge, o.item_ids)
                   for d in latest), f"{o} after {latest}"
        assert o.decided_us - moment <= CONFIG.override_max_age_us and o.approval_ids == ()
        assert o.override_by not in {d.person_id for d in latest}, f"{o} overridden by one of {latest}"
        if portals[o.portal_id].border:
            assert all(_level(site, i) < TOP_SECRET for i in o.item_ids)


@given(st.data())
def test_adversarial_walks_never_get_past_the_rules(data: st.DataObject) -> None:
    site = data.draw(sites())
    events = data.draw(streams(site, max_events=40))
    for backend in ("numba", "reference"):
        out = run(Engine(build_snapshot(site), CONFIG, backend), events, [], END)
        _check_allowed_exits(site, events, out)
        _check_movements(site, events, out.movements)
        _check_overrides(site, out)


@given(st.data())
def test_stale_and_late_reads_are_evidence_for_nothing(data: st.DataObject) -> None:
    site = data.draw(sites())
    events = [e for e in data.draw(streams(site, max_events=40)) if not (isinstance(e, TagRead) and e.stale)]
    reads = [k for k, e in enumerate(events) if isinstance(e, TagRead)]
    chosen = set(data.draw(st.lists(st.sampled_from(reads), unique=True))) if reads else set()
    kept = [e for k, e in enumerate(events) if k not in chosen]
    backend = data.draw(st.sampled_from(["numba", "reference"]))
    snapshot = build_snapshot(site)
    without = run(Engine(snapshot, CONFIG, backend), kept, [], END)
    # the same reads flagged stale by their reader, in place
    flagged = [replace(e, stale=True) if k in chosen else e for k, e in enumerate(events)]  # type: ignore[type-var]
    stale = run(Engine(snapshot, CONFIG, backend), flagged, [], END)
    assert (stale.movements, _decisions(stale)) == (without.movements, _decisions(without))
    # the same reads arriving late: fed once the engine has processed past them
    engine = Engine(snapshot, CONFIG, backend)
    held = sorted((events[k] for k in chosen), key=lambda e: e.time_us)
    movements, decisions = [], []
    for event in kept:
        feed(engine, event)
        out = engine.advance(event.time_us)
        while held and held[0].time_us <= engine.horizon_us:
            feed(engine, held.pop(0))
        movements += out.movements
        decisions += out.decisions
    out = engine.advance(END)
    for event in held:  # the rest arrives after everything was processed
        feed(engine, event)
    rest = engine.advance(END + 1)
    late = Output(sorted(movements + out.movements + rest.movements, key=repr),
                  sorted(decisions + out.decisions + rest.decisions, key=repr), [])
    assert (late.movements, _decisions(late)) == (without.movements, _decisions(without))


def _decisions(out: Output) -> list[Decision]:
    return sorted(out.decisions, key=repr)

"""The register -> SiteModel step (registry/compile.py) on a real register (the example site, SQLite):
people counted once however many badges, fail-secure levels, and the return deadlines an engine
restarted from the register must still enforce."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.compile import site_model, to_us
from registry.models import Item, Person, Portal, Venue
from registry.services import approvals, people
from registry.sitefile import load
from tracking.engine import Engine
from tracking.events import BadgePresentation, TagRead
from tracking.model import PendingReturn
from tracking.snapshot import build_snapshot

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "site.toml"
BRIEFING = "E28011700000020000000004"  # S-2026-001, secret, in the archive
TS_REPORT = "E28011700000020000000006"  # T-2026-001, top secret, in the vault


@pytest.fixture
def register(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    db.upgrade(engine)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        load(session, "site-loader", EXAMPLE_SITE)
    yield factory
    engine.dispose()


def test_a_person_with_several_badges_is_one_person(register: sessionmaker[Session]) -> None:
    with db.transaction(register) as session:
        zoe = people.create(session, "admin", people.PersonData("zoe", "Zoe", "top_secret",
                                                                 badges=("30001", "30002", "30003")))
        next(b for b in zoe.badges if b.number == "30001").active = False  # lost
        zoe_id = zoe.id
    with register() as session:
        model = site_model(session)
        n_people = len(session.execute(select(Person).where(Person.badges.any())).scalars().all())
    [spec] = [p for p in model.people if p.person_id == zoe_id]
    assert spec.badge == "30002" and set(spec.all_badges) == {"30001", "30002", "30003"}
    assert spec.inactive_badges == ("30001",) and spec.active
    assert len(model.people) == n_people  # one entry per person, not per badge
    snapshot = build_snapshot(model)
    assert {snapshot.badge_person[b] for b in spec.all_badges} == {[p.person_id for p in model.people].index(zoe_id)}
    # zoe's two active badges are still one person for the two-person rule at the vault dock
    engine = Engine(snapshot)
    t = to_us(dt.datetime.now(dt.UTC))
    for k in range(6):
        engine.on_read(TagRead("vault-dock-reader", 1, TS_REPORT, t + k * 50_000, -50.0))
    engine.on_badge(BadgePresentation(_portal(register, "vault-dock"), "30002", t + 100_000))
    engine.on_badge(BadgePresentation(_portal(register, "vault-dock"), "30003", t + 110_000))
    engine.on_badge(BadgePresentation(_portal(register, "vault-dock"), "30001", t + 120_000))
    out = engine.advance(t + 2_000_000)
    by_badge = {d.badge: d.reason_names for d in out.decisions}
    assert "two_person_rule" in by_badge["30002"] and "two_person_rule" in by_badge["30003"]
    assert "person_inactive" in by_badge["30001"]


def test_fail_secure_levels_are_compiled(register: sessionmaker[Session]) -> None:
    with register() as session:
        model = site_model(session)
        levels = dict(session.execute(select(Venue.id, Venue.fail_secure_level)).all())
    assert {v.venue_id: v.fail_secure_level for v in model.venues} == levels
    assert sorted(set(levels.values())) == [2, 3]  # the vault fails secure from confidential on


def test_an_item_out_under_an_approval_is_due_back_after_a_restart(register: sessionmaker[Session]) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with db.transaction(register) as session:
        approval = approvals.request(session, "bob", approvals.ApprovalRequest(
            ref="A-RETURN", kind="carry_out", items=("S-2026-001",), people=("bob",),
            valid_from=now - dt.timedelta(hours=2), valid_until=now + dt.timedelta(hours=2),
            return_by=now - dt.timedelta(minutes=5)))
        approvals.approve(session, "paul", approval)
        approvals.consume(session, "system", approval, context="portal:main-exit")
        item = session.execute(select(Item).where(Item.epc == BRIEFING)).scalar_one()
        item.venue_id = None  # the recorder moved it out of the unit when the engine saw it leave
        item_id, approval_id = item.id, approval.id
    with register() as session:
        model = site_model(session)
    assert model.pending_returns == (PendingReturn(item_id, approval_id, to_us(now - dt.timedelta(minutes=5))),)
    engine = Engine(build_snapshot(model))  # a fresh engine, as after a restart
    alarms = engine.advance(to_us(now)).alarms
    assert [(a.kind, a.item_id) for a in alarms] == [("overdue", item_id)]


def test_an_item_back_in_a_venue_is_not_due(register: sessionmaker[Session]) -> None:
    now = dt.datetime.now(dt.UTC)
    with db.transaction(register) as session:
        approval = approvals.request(session, "bob", approvals.ApprovalRequest(
            ref="A-BACK", kind="carry_out", items=("S-2026-001",), people=("bob",),
            valid_from=now - dt.timedelta(hours=2), valid_until=now + dt.timedelta(hours=2),
            return_by=now - dt.timedelta(minutes=5)))
        approvals.approve(session, "paul", approval)
        approvals.consume(session, "system", approval)  # used, and the item is back in the archive
    with register() as session:
        assert site_model(session).pending_returns == ()


def _portal(register: sessionmaker[Session], code: str) -> int:
    with register() as session:
        return session.execute(select(Portal.id).where(Portal.code == code)).scalar_one()

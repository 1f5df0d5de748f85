"""Changes an administrator makes, on SQLite and PostgreSQL: retiring configuration nothing refers to, and
changing a person (roles, badges, clearance) under the register's rules. Each change is journalled; a refused
one leaves the register as it was."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.errors import RuleViolation
from registry.models import JournalEntry
from registry.services import lookup, people, venues


def last_entry(session: Session) -> JournalEntry:
    return session.execute(select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)).scalar_one()


def test_retiring_refuses_what_is_referred_to_and_journals_what_goes(site: sessionmaker[Session]) -> None:
    with pytest.raises(RuleViolation) as refused, db.transaction(site) as session:
        venues.retire_venue(session, "admin", lookup.venue(session, "vault"))
    assert refused.value.rule == "venue.in_use" and "items (2)" in refused.value.details
    with pytest.raises(RuleViolation) as busy, db.transaction(site) as session:
        venues.retire_portal(session, "admin", lookup.portal(session, "vault-dock"))
    assert busy.value.rule == "portal.in_use" and "devices (3)" in busy.value.details
    with db.transaction(site) as session:
        for name in ("vault-dock-panel", "vault-dock-reader", "vault-dock-camera"):
            venues.retire_device(session, "admin", lookup.device(session, name))
        assert last_entry(session).action == "device.retired"
    with pytest.raises(RuleViolation) as named, db.transaction(site) as session:  # A-2026-0003 names the dock
        venues.retire_portal(session, "admin", lookup.portal(session, "vault-dock"))
    assert named.value.details == ["approvals (1)"]
    with db.transaction(site) as session:
        venues.retire_portal(session, "admin", lookup.portal(session, "reading-door"))
        assert last_entry(session).action == "portal.retired"
        venues.create_venue(session, "admin", venues.VenueData("annex", "Annex", "internal"))
    with db.transaction(site) as session:
        venues.retire_venue(session, "admin", lookup.venue(session, "annex"))
        assert json.loads(last_entry(session).payload) == {"name": "Annex"}


def test_a_person_changes_under_the_rules(site: sessionmaker[Session]) -> None:
    def bob(**changes: object) -> people.PersonData:
        values: dict[str, object] = {
            "username": "bob",
            "name": "Bob Researcher",
            "clearance": "secret",
            "roles": ("custodian",),
            "badges": ("20003",),
            "groups": ("archive-readers",),
        }
        return people.PersonData(**{**values, **changes})  # type: ignore[arg-type]

    with pytest.raises(RuleViolation) as lowered, db.transaction(site) as session:
        people.update(session, "admin", lookup.person(session, "bob"), bob(clearance="confidential"))
    assert lowered.value.rule == "custody.clearance" and lowered.value.details == ["S-2026-001/1"]
    with pytest.raises(RuleViolation) as taken, db.transaction(site) as session:
        people.update(session, "admin", lookup.person(session, "bob"), bob(badges=("20003", "20004")))
    assert taken.value.rule == "person.badge_unique"
    with db.transaction(site) as session:
        assert not people.update(session, "admin", lookup.person(session, "bob"), bob())
        assert people.update(
            session, "admin", lookup.person(session, "bob"), bob(roles=("custodian", "witness"), badges=("20009",))
        )
        entry = last_entry(session)
        assert entry.action == "person.updated"
        assert json.loads(entry.payload)["badges"] == [["20003"], ["20009"]]
    with db.transaction(site) as session:
        found = lookup.person(session, "bob")
        assert found.role_names == {"custodian", "witness"} and [b.number for b in found.badges] == ["20009"]
    admin = people.PersonData(username="admin", name="Ada Administrator", clearance="secret", roles=("auditor",))
    with pytest.raises(RuleViolation) as last, db.transaction(site) as session:
        people.update(session, "admin", lookup.person(session, "admin"), admin)
    assert last.value.rule == "person.last_administrator"

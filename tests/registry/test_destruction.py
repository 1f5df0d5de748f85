"""Destruction records: two persons, an approved request, the tag retired; a failure stays in custody."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.errors import RuleViolation
from registry.models import DestructionRecord, JournalEntry
from registry.services import destruction, lookup

NOW = dt.datetime.now(dt.UTC)
EVIDENCE = destruction.DestructionEvidence(
    device_name="shredder-1",
    method="shred",
    started_at=NOW,
    completed_at=NOW + dt.timedelta(seconds=40),
    parameters={"cut_size_mm": "2.0", "particle_verdict": "pass"},
)


def test_verified_destruction_retires_the_tag_and_journals_the_certificate(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        item = lookup.item(session, "S-2026-002")
        assert destruction.destroy_approval_for(session, item) is not None
        record = destruction.record_destroyed(session, "otto", "wendy", item, EVIDENCE, "ab" * 32)
        assert item.status == "destroyed" and item.venue_id is None and item.custodian_id is None
        entry = session.get(JournalEntry, record.journal_seq)
        assert entry is not None and entry.action == "item.destroyed" and "ab" * 32 in entry.payload
        assert lookup.approval(session, "A-2026-0002").state == "used"
    with pytest.raises(RuleViolation) as again, db.transaction(site) as session:
        destruction.record_destroyed(session, "otto", "wendy", lookup.item(session, "S-2026-002"), EVIDENCE, "0" * 64)
    assert again.value.rule == "destruction.already"


@pytest.mark.parametrize(
    ("operator", "witness", "rule"),
    [("otto", "otto", "person.role"), ("wendy", "otto", "person.role"), ("otto", "bob", "person.role")],
)
def test_destruction_needs_an_operator_and_a_different_witness(
    site: sessionmaker[Session], operator: str, witness: str, rule: str
) -> None:
    with pytest.raises(RuleViolation) as refused, db.transaction(site) as session:
        destruction.record_destroyed(session, operator, witness, lookup.item(session, "S-2026-002"), EVIDENCE, "0" * 64)
    assert refused.value.rule == rule
    with site() as session:
        assert lookup.item(session, "S-2026-002").status == "active"


def test_the_operator_alone_is_never_enough(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        otto = lookup.person(session, "otto")
        from registry.models import PersonRole

        otto.roles.append(PersonRole(role="witness"))
    with pytest.raises(RuleViolation) as refused, db.transaction(site) as session:
        destruction.record_destroyed(session, "otto", "otto", lookup.item(session, "S-2026-002"), EVIDENCE, "0" * 64)
    assert refused.value.rule == "destruction.two_persons"


def test_no_destruction_without_an_approved_request(site: sessionmaker[Session]) -> None:
    with pytest.raises(RuleViolation) as refused, db.transaction(site) as session:
        destruction.record_destroyed(session, "otto", "wendy", lookup.item(session, "T-2026-002"), EVIDENCE, "0" * 64)
    assert refused.value.rule == "destruction.approval"


def test_a_failed_cycle_leaves_the_item_with_the_operator(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        item = lookup.item(session, "S-2026-002")
        destruction.record_failed(session, "otto", item, EVIDENCE, "peak field 3100 Oe below 5000 Oe needed")
        assert item.status == "destruction_failed" and item.custodian.username == "otto"  # type: ignore[union-attr]
    with site() as session:
        record = session.execute(select(DestructionRecord)).scalar_one()
        assert record.outcome == "failed" and "3100" in record.reason

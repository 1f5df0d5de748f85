"""One test per register rule; each runs on SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.errors import InvalidInput, NotFound, RuleViolation
from registry.levels import Level
from registry.models import Approval, Badge, Incident, Item, JournalEntry, Person, Venue
from registry.services import approvals, incidents, items, lookup, people, transfers
from tests.registry.conftest import utc

PERIOD = items.SecrecyPeriod(start=dt.date(2026, 1, 1), months=120)


def item_data(number: str, level: str, epc: str, **kw: object) -> items.ItemData:
    return items.ItemData(
        register_number=number,
        title=f"Document {number}",
        kind="paper",
        level=level,
        period=PERIOD,
        originating_unit="Unit 1",
        epc=epc,
        **kw,  # type: ignore[arg-type]
    )


def counts(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    with factory() as s:
        return (
            s.execute(select(func.count()).select_from(Item)).scalar_one(),
            s.execute(select(func.count()).select_from(JournalEntry)).scalar_one(),
            s.execute(select(func.count()).select_from(Approval)).scalar_one(),
        )


def refused(factory: sessionmaker[Session], rule: str, action) -> RuleViolation:  # type: ignore[no-untyped-def]
    """Run `action` in a transaction; it must be refused for `rule`, and nothing of it may remain."""
    before = counts(factory)
    with pytest.raises(RuleViolation) as caught, db.transaction(factory) as session:
        action(session)
    assert caught.value.rule == rule, caught.value
    assert counts(factory) == before
    return caught.value


def test_venue_ceiling_refuses_an_item_above_the_venue(site: sessionmaker[Session]) -> None:
    exc = refused(
        site,
        "venue.ceiling",
        lambda s: items.register(s, "admin", item_data("S-9", "secret", "E2" + "0" * 21 + "9", venue="reading-room")),
    )
    assert "reading-room" in exc.message


def test_top_secret_only_in_a_designated_venue(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        session.add(Venue(code="ts-undesignated", name="High room", ceiling=int(Level.TOP_SECRET)))
    refused(
        site,
        "venue.top_secret_designated",
        lambda s: items.register(s, "admin", item_data("T-9", "top_secret", "A" * 24, venue="ts-undesignated")),
    )
    with db.transaction(site) as session:
        placed = items.register(s := session, "admin", item_data("T-9", "top_secret", "A" * 24, venue="vault"))
        assert placed.venue is not None and placed.venue.code == "vault"
        with pytest.raises(RuleViolation) as moved:
            items.place(s, "admin", placed, "ts-undesignated")
        assert moved.value.rule == "venue.top_secret_designated"


def test_a_request_is_never_approved_by_its_requester(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        approvals.request(
            session,
            "petra",
            approvals.ApprovalRequest(
                ref="A-SELF",
                kind="carry_out",
                items=("C-2026-001",),
                people=("petra",),
                valid_from=utc(2026, 1, 1),
                valid_until=utc(2030, 1, 1),
            ),
        )
    refused(site, "approval.self_approval", lambda s: approvals.approve(s, "petra", lookup.approval(s, "A-SELF")))
    refused(site, "person.role", lambda s: approvals.approve(s, "bob", lookup.approval(s, "A-SELF")))
    with db.transaction(site) as session:
        done = approvals.approve(session, "paul", lookup.approval(session, "A-SELF"), "ok")
        assert done.state == "approved"
        assert [d.approver.username for d in done.decisions] == ["paul"]


def test_an_approver_never_grants_an_approval_that_covers_himself(site: sessionmaker[Session]) -> None:
    """Issue 15 / domain-rules 7: named as the carrier, or in a group named on it, the approver may not grant it;
    another approver may, and the named one may still refuse it (refusing grants nothing)."""

    def ask(ref: str, **kw: object) -> None:
        with db.transaction(site) as session:
            approvals.request(
                session,
                "alice",
                approvals.ApprovalRequest(
                    ref=ref,
                    kind="carry_out",
                    items=("C-2026-001",),
                    valid_from=utc(2026, 1, 1),
                    valid_until=utc(2030, 1, 1),
                    **kw,  # type: ignore[arg-type]
                ),
            )

    with db.transaction(site) as session:
        data = people.PersonData("quinn", "Quinn Approver", "top_secret", ("approver",), groups=("strategy-team",))
        people.create(session, "admin", data)
    ask("A-CARRIER", people=("alice", "paul"))
    exc = refused(
        site, "approval.approver_named", lambda s: approvals.approve(s, "paul", lookup.approval(s, "A-CARRIER"))
    )
    assert "paul" in exc.message
    ask("A-GROUP", groups=("strategy-team",))
    exc = refused(
        site, "approval.approver_named", lambda s: approvals.approve(s, "quinn", lookup.approval(s, "A-GROUP"))
    )
    assert exc.details == ["strategy-team"]
    with db.transaction(site) as session:
        assert lookup.approval(session, "A-CARRIER").state == "requested"
        assert approvals.approve(session, "quinn", lookup.approval(session, "A-CARRIER")).state == "approved"
        assert approvals.approve(session, "paul", lookup.approval(session, "A-GROUP")).state == "approved"
    ask("A-DECLINE", people=("alice", "paul"))
    with db.transaction(site) as session:
        declined = approvals.refuse(session, "paul", lookup.approval(session, "A-DECLINE"), "I should not go")
        assert declined.state == "refused"


def test_top_secret_reproduction_needs_originator_consent(site: sessionmaker[Session]) -> None:
    def ask(consent: str | None):  # type: ignore[no-untyped-def]
        return lambda s: approvals.request(
            s,
            "alice",
            approvals.ApprovalRequest(
                ref="A-COPY",
                kind="reproduce",
                items=("T-2026-001",),
                people=("alice",),
                valid_from=utc(2026, 1, 1),
                valid_until=utc(2030, 1, 1),
                originator_consent=consent,
            ),
        )

    refused(site, "approval.originator_consent", ask(None))
    with db.transaction(site) as session:
        approval = ask("Originating unit: consent letter 2026/17")(session)
        approvals.approve(session, "paul", approval)
    with db.transaction(site) as session:
        original = lookup.item(session, "T-2026-001")
        copy = items.register_copy(
            session, "alice", original, approval_ref="A-COPY", copy_number=2, epc="B" * 24, venue="vault"
        )
        assert (copy.level, copy.period_start, copy.declassify_condition) == (
            original.level,
            original.period_start,
            original.declassify_condition,
        )
        assert {g.name for g in copy.scope_groups} == {g.name for g in original.scope_groups}
        assert copy.parent_id == original.id
        assert lookup.approval(session, "A-COPY").state == "used"


def test_a_copy_keeps_its_originals_level(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        approval = approvals.request(
            session,
            "bob",
            approvals.ApprovalRequest(
                ref="A-COPY-S",
                kind="reproduce",
                items=("S-2026-001",),
                people=("bob",),
                valid_from=utc(2026, 1, 1),
                valid_until=utc(2030, 1, 1),
            ),
        )
        approvals.approve(session, "paul", approval)
    refused(
        site,
        "copy.same_marking",
        lambda s: items.register_copy(
            s,
            "bob",
            lookup.item(s, "S-2026-001"),
            approval_ref="A-COPY-S",
            copy_number=2,
            epc="C" * 24,
            level="confidential",
        ),
    )


def test_approval_persons_need_clearance_for_the_items(site: sessionmaker[Session]) -> None:
    exc = refused(
        site,
        "approval.clearance",
        lambda s: approvals.request(
            s,
            "bob",
            approvals.ApprovalRequest(
                ref="A-CLR",
                kind="carry_out",
                items=("S-2026-001",),
                people=("bob", "carol"),
                valid_from=utc(2026, 1, 1),
                valid_until=utc(2030, 1, 1),
            ),
        ),
    )
    assert exc.details == ["carol"]


def test_top_secret_never_goes_abroad(site: sessionmaker[Session]) -> None:
    refused(
        site,
        "exit.border_top_secret",
        lambda s: approvals.request(
            s,
            "alice",
            approvals.ApprovalRequest(
                ref="A-ABROAD",
                kind="abroad",
                items=("T-2026-001",),
                people=("alice",),
                valid_from=utc(2026, 1, 1),
                valid_until=utc(2030, 1, 1),
            ),
        ),
    )


def test_departure_refused_while_items_are_in_custody(site: sessionmaker[Session]) -> None:
    exc = refused(site, "person.items_in_custody", lambda s: people.sign_off(s, "admin", lookup.person(s, "bob")))
    assert exc.details == ["S-2026-001/1 Negotiation briefing"]
    with db.transaction(site) as session:
        bob = lookup.person(session, "bob")
        held = people.begin_departure(session, "admin", bob)
        assert [i.register_number for i in held] == ["S-2026-001"]
        items.hand_to(session, "admin", lookup.item(session, "S-2026-001"), "petra")
        people.sign_off(session, "admin", bob, dt.date(2027, 6, 1))
    with site() as session:
        bob = lookup.person(session, "bob")
        assert bob.status == "separation"
        assert not any(b.active for b in bob.badges)


def test_epcs_are_unique_and_well_formed(site: sessionmaker[Session]) -> None:
    refused(
        site,
        "item.epc_unique",
        lambda s: items.register(s, "admin", item_data("X-1", "internal", "e28011700000020000000001")),
    )
    for bad in ("XYZ", "E2801170000002000000000", "E2" * 6, "E" * 128, ""):
        with pytest.raises(InvalidInput) as caught, db.transaction(site) as session:
            items.register(session, "admin", item_data("X-2", "internal", bad))
        assert caught.value.field == "epc"
    with db.transaction(site) as session:
        long_epc = items.register(session, "admin", item_data("X-3", "internal", "ab" * 62))
        assert long_epc.epc == "AB" * 62


def test_badge_numbers_are_unique(site: sessionmaker[Session]) -> None:
    refused(
        site,
        "person.badge_unique",
        lambda s: people.create(s, "admin", people.PersonData("zed", "Zed", "internal", badges=("20003",))),
    )


def test_a_refused_write_leaves_nothing_half_done(site: sessionmaker[Session]) -> None:
    before = counts(site)
    with pytest.raises(NotFound), db.transaction(site) as session:
        people.create(session, "admin", people.PersonData("newbie", "New Person", "secret", badges=("55555",)))
        items.register(session, "admin", item_data("N-1", "internal", "D" * 24, scope_people=("nobody",)))
    assert counts(site) == before
    with site() as session:
        assert session.execute(select(Person).where(Person.username == "newbie")).first() is None
        assert session.execute(select(Badge).where(Badge.number == "55555")).first() is None


def test_relabel_marks_label_out_of_date_and_needs_a_classifier(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        item = lookup.item(session, "C-2026-001")
        assert items.verify_label(session, "admin", item, items.LabelReading(items.label_text(item))).agrees
    refused(
        site,
        "person.role",
        lambda s: items.change_marking(s, "bob", lookup.item(s, "C-2026-001"), reason="x", level="internal"),
    )
    with db.transaction(site) as session:
        item = items.change_marking(
            session, "clara", lookup.item(session, "C-2026-001"), reason="review 2026", level="internal"
        )
        assert item.level == Level.INTERNAL and item.label_out_of_date
        last = session.execute(select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)).scalar_one()
        assert last.action == "item.marking_changed" and '"confidential"' in last.payload


def test_declassification_review_lists_expired_periods(site: sessionmaker[Session]) -> None:
    with site() as session:
        due_2027 = {i.register_number for i in items.declassification_review(session, dt.date(2027, 1, 5))}
        due_2026 = {i.register_number for i in items.declassification_review(session, dt.date(2026, 6, 1))}
    assert due_2027 == {"U-2026-001"}  # 12 months from 2026-01-05
    assert due_2026 == set()
    with db.transaction(site) as session:
        items.declassify(session, "clara", lookup.item(session, "U-2026-001"), "period over")
    with site() as session:
        assert items.declassification_review(session, dt.date(2027, 1, 5)) == []


def test_transfer_reconciles_counts_and_opens_an_incident_when_short(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        sent = transfers.hand_over(
            session, "bob", receiver="petra", items=("S-2026-001", "S-2026-002"), to_venue="vault"
        )
        assert {i.status for i in sent.items} == {"in_transit"}
        transfer_id = sent.id
    with pytest.raises(RuleViolation) as wrong, db.transaction(site) as session:
        transfers.receive(session, "alice", session.get(transfers.Transfer, transfer_id), ("S-2026-001",))
    assert wrong.value.rule == "transfer.receiver"
    with db.transaction(site) as session:
        receipt = transfers.receive(session, "petra", session.get(transfers.Transfer, transfer_id), ("S-2026-001",))
        assert receipt.missing == ["S-2026-002/1"] and not receipt.complete
        assert receipt.transfer.state == "discrepancy"
        incident = session.execute(select(Incident)).scalar_one()
        assert incident.kind == "transfer_discrepancy"
        received = lookup.item(session, "S-2026-001")
        assert received.status == "active" and received.custodian.username == "petra"  # type: ignore[union-attr]
        assert lookup.item(session, "S-2026-002").status == "in_transit"


def test_top_secret_transfer_needs_designated_sender_and_receiver(site: sessionmaker[Session]) -> None:
    refused(
        site,
        "transfer.top_secret_designated",
        lambda s: transfers.hand_over(
            s, "alice", receiver="dave", items=("T-2026-002",), to_venue="destruction-centre"
        ),
    )
    with db.transaction(site) as session:
        approval = approvals.request(
            session,
            "alice",
            approvals.ApprovalRequest(
                ref="A-TS-T",
                kind="transfer",
                items=("T-2026-002",),
                people=("alice", "dave"),
                valid_from=utc(2026, 1, 1),
                valid_until=utc(2030, 1, 1),
            ),
        )
        approvals.approve(session, "paul", approval)
        transfer = transfers.hand_over(
            session,
            "alice",
            receiver="dave",
            items=("T-2026-002",),
            to_venue="destruction-centre",
            approval_ref="A-TS-T",
        )
        receipt = transfers.receive(session, "dave", transfer, ("T-2026-002",))
        assert receipt.complete


def test_incident_has_a_24_hour_deadline(site: sessionmaker[Session]) -> None:
    opened = utc(2026, 11, 23, 9, 30)
    with db.transaction(site) as session:
        incident = incidents.open_incident(session, "gus", "destroyed_item_seen", "EPC seen at main exit", at=opened)
        assert incident.report_deadline == opened + dt.timedelta(hours=24)
        assert incidents.time_left(incident, opened + dt.timedelta(hours=25)) == dt.timedelta(hours=-1)
        incidents.add_action(session, "gus", incident, "Area sealed")
        assert [a.text for a in incident.actions] == ["Area sealed"]


def test_approval_uses_are_consumed_then_refused(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        approval = lookup.approval(session, "A-2026-0002")
        approvals.consume(session, "otto", approval, "destroyed")
        assert approval.state == "used" and approval.uses_left == 0
    refused(site, "approval.used_up", lambda s: approvals.consume(s, "otto", lookup.approval(s, "A-2026-0002")))


def test_items_are_found_by_register_and_copy_number(site: sessionmaker[Session]) -> None:
    with site() as session:
        by_pair = lookup.item(session, "S-2026-001/1")
        assert by_pair.register_number == "S-2026-001" and by_pair.copy_number == 1
        assert lookup.item(session, "E28011700000020000000004").id == by_pair.id
        with pytest.raises(NotFound):
            lookup.item(session, "S-2026-001/2")

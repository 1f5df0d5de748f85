"""The register's records, scenario by scenario from domain-rules.md (sections 2, 5, 7, 8); each test runs on
SQLite and PostgreSQL (see conftest). Every refusal must name its catalogued rule and leave nothing behind;
every accepted change must be in the journal, and the chain must still verify."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.routers.records import decode_label
from registry import db, journal, rules
from registry.compile import site_model
from registry.errors import InvalidInput, RuleViolation
from registry.levels import Level
from registry.models import Inspection, Item, ItemAccess, JournalEntry, LevelDispute, Seizure
from registry.services import approvals, disputes, inspections, items, lookup, people, seizures, transfers
from registry.services.officials import Official
from tests.registry.conftest import utc
from vision.labels import LabelData
from vision.synthetic import label_photo

NOW = dt.datetime.now(dt.UTC)
OPEN_WINDOW = (utc(2026, 1, 1), utc(2099, 1, 1))
LI = Official(name="Li Wei", organisation="Municipal secrecy bureau", identification="SB-0071")
ZHANG = Official(name="Zhang Min", organisation="Municipal secrecy bureau", identification="SB-0102")


def journal_size(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(JournalEntry)).scalar_one()


def refused(factory: sessionmaker[Session], rule: str, action: Callable[[Session], object]) -> RuleViolation:
    """`action` must be refused for the catalogued `rule` with its sentence, and nothing of it may remain."""
    before = journal_size(factory)
    with pytest.raises(RuleViolation) as caught, db.transaction(factory) as session:
        action(session)
    assert caught.value.rule == rule, caught.value
    if rule in rules.CATALOGUE:
        assert caught.value.message.startswith(rules.CATALOGUE[rule].sentence)
    assert journal_size(factory) == before
    return caught.value


def entries(session: Session, action: str, subject: str | None = None) -> list[dict[str, object]]:
    query = select(JournalEntry).where(JournalEntry.action == action).order_by(JournalEntry.seq)
    if subject is not None:
        query = query.where(JournalEntry.subject == subject)
    return [json.loads(e.payload) for e in session.execute(query).scalars()]


def chain_ok(factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        return journal.verify(session).ok


def approve(session: Session, ref: str, kind: str, item_keys: tuple[str, ...], people: tuple[str, ...], **kw: object):  # type: ignore[no-untyped-def]
    valid_from, valid_until = kw.pop("window", OPEN_WINDOW)  # type: ignore[misc]
    request = approvals.ApprovalRequest(
        ref=ref, kind=kind, items=item_keys, people=people, valid_from=valid_from, valid_until=valid_until, **kw
    )
    approval = approvals.request(session, "alice", request)
    approvals.approve(session, "paul", approval)
    return approval


# ---- registration (Art. 27(2)) ----------------------------------------------------------------------------
BLANKS = [
    ("title", "", "item.title_required"),
    ("title", "   \t ", "item.title_required"),
    ("originating_unit", "", "item.originating_unit_required"),
    ("originating_unit", " \n", "item.originating_unit_required"),
]


def test_registration_refuses_a_blank_title_or_originating_unit(site: sessionmaker[Session]) -> None:
    for field, value, rule in BLANKS:
        data = {"title": "Annual plan", "originating_unit": "Unit 1", field: value}
        refused(
            site,
            rule,
            lambda s, data=data: items.register(
                s,
                "admin",
                items.ItemData(
                    register_number="N-2026-1",
                    kind="paper",
                    level="confidential",
                    period=items.SecrecyPeriod(dt.date(2026, 1, 1), months=12),
                    epc="E2801170000002000000A001",
                    **data,
                ),
            ),
        )
    with site() as session:
        assert session.execute(select(Item).where(Item.register_number == "N-2026-1")).first() is None


# ---- seized items (Art. 62) -------------------------------------------------------------------------------
def seizure(**changes: object) -> seizures.SeizureData:
    data: dict[str, object] = {
        "description": "Printouts of the regional survey found at a copy shop",
        "level": "confidential",
        "quantity": 4,
        "source": "Copy shop at 12 Harbour Road, left by a customer",
        "spread": "Handled by two shop employees; no copies known",
        "seized_by": (LI, Official(username="gus")),
        "seized_at": utc(2026, 5, 4, 15, 30),
        "venue": "archive",
        "items": ("C-2026-001",),
    }
    data.update(changes)
    return seizures.SeizureData(**data)  # type: ignore[arg-type]


def test_a_seizure_is_recorded_with_level_quantity_source_spread_and_who_seized(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        recorded = seizures.record_seizure(session, "admin", seizure())
        seizure_id = recorded.id
    with site() as session:
        row = session.get(Seizure, seizure_id)
        assert row is not None
        assert (row.level, row.quantity) == (Level.CONFIDENTIAL, 4)
        assert row.source.startswith("Copy shop") and row.spread.startswith("Handled by two")
        outside = row.officials[0]
        assert (outside.name, outside.identification, outside.person) == ("Li Wei", "SB-0071", None)
        assert row.officials[1].person is not None and row.officials[1].person.username == "gus"
        assert row.seized_at == utc(2026, 5, 4, 15, 30) and row.recorded_by == "admin"
        survey = lookup.item(session, "C-2026-001")
        assert survey.status == "seized" and survey.venue is not None and survey.venue.code == "archive"
        # The tracking core is given the new status (a seized item never passes a door).
        assert next(i for i in site_model(session).items if i.item_id == survey.id).status == "seized"
        [logged] = entries(session, "seizure.recorded", f"seizure:{seizure_id}")
        assert logged["quantity"] == 4 and logged["level"] == "confidential"
        assert logged["source"] == row.source and logged["spread"] == row.spread
        assert logged["seized_by"] == ["Li Wei, Municipal secrecy bureau (id SB-0071)", "gus"]
        assert entries(session, "item.seized", "item:C-2026-001/1")[0]["seizure"] == seizure_id
    assert chain_ok(site)


MISSING_PARTICULARS = [
    ({"quantity": 0}, "seizure.quantity"),
    ({"quantity": 1, "items": ("C-2026-001", "I-2026-001")}, "seizure.quantity"),
    ({"source": "  "}, "seizure.source"),
    ({"spread": ""}, "seizure.spread"),
    ({"seized_by": ()}, "seizure.seized_by"),
    ({"seized_by": (Official(name="Someone"),)}, "official.identification"),
    ({"seized_by": (LI, LI)}, "official.listed_twice"),
    ({"level": "internal"}, "seizure.level"),  # below the confidential item it covers
    ({"level": "secret", "venue": "reading-room"}, "venue.ceiling"),
]


def test_a_seizure_without_its_particulars_is_refused(site: sessionmaker[Session]) -> None:
    for changes, rule in MISSING_PARTICULARS:
        refused(site, rule, lambda s, changes=changes: seizures.record_seizure(s, "admin", seizure(**changes)))
    with site() as session:
        assert lookup.item(session, "C-2026-001").status == "active"
        assert session.execute(select(Seizure)).first() is None


def test_a_destroyed_item_cannot_be_seized(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        lookup.item(session, "I-2026-001").status = "destroyed"
    refused(site, "seizure.item_status", lambda s: seizures.record_seizure(s, "admin", seizure(items=("I-2026-001",))))


# ---- inspections (CE Art. 25) ------------------------------------------------------------------------------
def inspection(*inspectors: Official) -> inspections.InspectionData:
    return inspections.InspectionData(
        kind="on_site",
        subject="Technical precautions in the archive and the vault",
        started_at=utc(2026, 6, 2, 9),
        ended_at=utc(2026, 6, 2, 12),
        inspectors=inspectors,
        findings=("Archive reader antenna 4 unplugged", "Vault log complete"),
        actions=("Reconnect antenna 4 and re-run the inventory", "Report the repair within 15 working days"),
        venues=("archive", "vault"),
    )


def test_an_inspection_by_fewer_than_two_inspectors_is_refused(site: sessionmaker[Session]) -> None:
    same_li = Official(name="Li Wei", organisation="municipal secrecy bureau ", identification=" sb-0071")
    for inspectors in [(LI,), (LI, same_li), (Official(username="audrey"), Official(username="audrey"))]:
        refused(
            site,
            "inspection.two_inspectors",
            lambda s, inspectors=inspectors: inspections.record_inspection(s, "audrey", inspection(*inspectors)),
        )
    with site() as session:
        assert session.execute(select(Inspection)).first() is None


def test_an_inspection_records_its_inspectors_findings_and_actions(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        inspection_id = inspections.record_inspection(session, "audrey", inspection(LI, ZHANG)).id
    with site() as session:
        row = session.get(Inspection, inspection_id)
        assert row is not None
        assert [i.identification for i in row.inspectors] == ["SB-0071", "SB-0102"]
        assert row.findings[0].text == "Archive reader antenna 4 unplugged"
        assert len(row.actions) == 2 and {v.code for v in row.venues} == {"archive", "vault"}
        [logged] = entries(session, "inspection.recorded", f"inspection:{inspection_id}")
        assert logged["inspectors"] == [
            "Li Wei, Municipal secrecy bureau (id SB-0071)",
            "Zhang Min, Municipal secrecy bureau (id SB-0102)",
        ]
        assert logged["actions"] == [a.text for a in row.actions]
    refused(
        site,
        "official.identification",
        lambda s: inspections.record_inspection(s, "audrey", inspection(LI, Official(name="Zhang Min"))),
    )


# ---- disputed level (Art. 26) ------------------------------------------------------------------------------
def dispute_survey(session: Session, *proposals: tuple[str, str]) -> LevelDispute:
    """The confidential survey C-2026-001 (in the reading room, ceiling confidential) is disputed."""
    return disputes.open_dispute(
        session,
        "admin",
        lookup.item(session, "C-2026-001"),
        [disputes.Proposal(level, who) for level, who in proposals],
        "The ministry considers annex B secret",
    )


def test_a_disputed_item_is_placed_and_held_as_at_the_highest_level_proposed(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        dispute = dispute_survey(session, ("secret", "Ministry of Foreign Affairs"), ("internal", "Survey team"))
        survey = lookup.item(session, "C-2026-001")
        assert survey.level == Level.CONFIDENTIAL and survey.effective_level == Level.SECRET
        # Recorded even though the reading room may not hold it now; the conflict is named to be put right.
        assert disputes.conflicts(session, dispute) == [
            "C-2026-001/1: a secret item may not be placed in reading-room (ceiling confidential)"
        ]
        [logged] = entries(session, "item.level_disputed", "item:C-2026-001/1")
        assert logged["protected_at"] == "secret" and logged["proposals"][0] == [
            "secret",
            "Ministry of Foreign Affairs",
        ]
        assert survey.label_out_of_date
    refused(site, "venue.ceiling", lambda s: items.place(s, "admin", lookup.item(s, "C-2026-001"), "reading-room"))
    refused(site, "custody.clearance", lambda s: items.hand_to(s, "admin", lookup.item(s, "C-2026-001"), "carol"))
    with db.transaction(site) as session:
        items.place(session, "admin", lookup.item(session, "C-2026-001"), "archive")
        dispute = session.execute(select(LevelDispute)).scalar_one()
        assert disputes.conflicts(session, dispute) == []
        disputes.add_proposal(session, "clara", dispute, disputes.Proposal("top_secret", "Defence staff"))
        assert disputes.conflicts(session, dispute) == [
            "C-2026-001/1: a top_secret item may not be placed in archive (ceiling secret)"
        ]
    refused(site, "venue.ceiling", lambda s: items.place(s, "admin", lookup.item(s, "C-2026-001"), "archive"))
    with db.transaction(site) as session:
        items.place(session, "admin", lookup.item(session, "C-2026-001"), "vault")
        survey = lookup.item(session, "C-2026-001")
        # The tracking core decides exits at the protected level (two-person rule, designated venues).
        assert next(i for i in site_model(session).items if i.item_id == survey.id).level == Level.TOP_SECRET
    # A top-secret transfer rule now applies to it as well (Art. 29(1)).
    refused(
        site,
        "transfer.top_secret_designated",
        lambda s: transfers.hand_over(
            s, "alice", receiver="dave", items=("C-2026-001",), to_venue="destruction-centre"
        ),
    )
    assert chain_ok(site)


def test_a_copy_of_a_disputed_item_keeps_the_higher_level(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        dispute_survey(session, ("secret", "Ministry of Foreign Affairs"))
        items.place(session, "admin", lookup.item(session, "C-2026-001"), "archive")
        approve(session, "A-COPY-D", "reproduce", ("C-2026-001",), ("bob",), uses=2)

    def copy(venue: str, number: int, epc: str) -> Callable[[Session], Item]:
        return lambda s: items.register_copy(
            s, "bob", lookup.item(s, "C-2026-001"), approval_ref="A-COPY-D", copy_number=number, epc=epc, venue=venue
        )

    refused(site, "venue.ceiling", copy("reading-room", 2, "E2801170000002000000C002"))
    with db.transaction(site) as session:
        second = copy("archive", 2, "E2801170000002000000C002")(session)
        assert (second.level, second.effective_level) == (Level.CONFIDENTIAL, Level.SECRET)
        assert items.label_text(second).level == "secret"
        assert entries(session, "item.registered", "item:C-2026-001/2")[0]["disputed_level"] == "secret"
        # A copy registered directly under the same register number is protected the same way.
        third = items.register(
            session,
            "admin",
            items.ItemData(
                register_number="C-2026-001",
                copy_number=3,
                title="Regional survey, annex B",
                kind="paper",
                level="confidential",
                period=items.SecrecyPeriod.of(second),
                originating_unit="Example Institute",
                epc="E2801170000002000000C003",
            ),
        )
        assert third.effective_level == Level.SECRET
    with db.transaction(site) as session:
        # A further proposal raises every copy, the new ones included.
        dispute = session.execute(select(LevelDispute)).scalar_one()
        items.place(session, "admin", lookup.item(session, "C-2026-001/2"), "vault")
        disputes.add_proposal(session, "clara", dispute, disputes.Proposal("top_secret", "Defence staff"))
        assert {i.copy_number: i.effective_level for i in disputes.copies(session, "C-2026-001")} == {
            1: Level.TOP_SECRET,
            2: Level.TOP_SECRET,
            3: Level.TOP_SECRET,
        }
    with db.transaction(site) as session:
        dispute = session.execute(select(LevelDispute)).scalar_one()
        disputes.decide(session, "clara", dispute, "confidential", "The ministry's guide lists annex B as confidential")
        levels = {i.copy_number: (i.level, i.disputed_level) for i in disputes.copies(session, "C-2026-001")}
        assert levels == {n: (Level.CONFIDENTIAL, None) for n in (1, 2, 3)}
        assert dispute.state == "decided" and dispute.decided_by == "clara"
        assert len(entries(session, "item.dispute_decided")) == 3
    assert chain_ok(site)


def test_a_dispute_is_decided_by_another_classifier_and_only_once(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        disputes.open_dispute(
            session,
            "clara",
            lookup.item(session, "C-2026-001"),
            [disputes.Proposal("secret", "Ministry")],
            "The ministry considers annex B secret",
        )
        people.create(session, "admin", people.PersonData("cleo", "Cleo Classifier", "top_secret", ("classifier",)))

    def decide(who: str, level: str) -> Callable[[Session], object]:
        return lambda s: disputes.decide(s, who, s.execute(select(LevelDispute)).scalar_one(), level, "grounds")

    refused(site, "person.role", decide("bob", "secret"))
    refused(site, "dispute.self_decision", decide("clara", "secret"))
    # The survey is still in the reading room: a secret decision needs it moved first.
    refused(site, "venue.ceiling", decide("cleo", "secret"))
    with db.transaction(site) as session:
        items.place(session, "admin", lookup.item(session, "C-2026-001"), "archive")
        decide("cleo", "secret")(session)
        assert lookup.item(session, "C-2026-001").level == Level.SECRET
    refused(site, "dispute.state", decide("cleo", "internal"))
    refused(
        site,
        "dispute.state",
        lambda s: disputes.add_proposal(
            s, "admin", s.execute(select(LevelDispute)).scalar_one(), disputes.Proposal("internal", "x")
        ),
    )


def test_while_disputed_the_level_changes_only_by_decision(site: sessionmaker[Session]) -> None:
    refused(site, "dispute.no_difference", lambda s: dispute_survey(s, ("confidential", "Ministry")))
    with db.transaction(site) as session:
        dispute_survey(session, ("secret", "Ministry"))
    refused(site, "dispute.already_open", lambda s: dispute_survey(s, ("internal", "Survey team")))
    refused(
        site,
        "dispute.open",
        lambda s: items.change_marking(s, "clara", lookup.item(s, "C-2026-001"), reason="review", level="internal"),
    )
    refused(site, "dispute.open", lambda s: items.declassify(s, "clara", lookup.item(s, "C-2026-001"), "period over"))


# ---- label read-back (Art. 21) -----------------------------------------------------------------------------
def photo_of(text: items.LabelText, seed: int = 1) -> bytes:
    """The label printed by the project's renderer, photographed on a bench (perspective, blur, glare), as JPEG."""
    printed = LabelData(
        item_id=text.epc, register_number=text.register_key, level=text.level, secrecy_period=text.period
    )
    ok, jpeg = cv2.imencode(".jpg", label_photo(printed, seed=seed).image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return jpeg.tobytes()


def verify(factory: sessionmaker[Session], key: str, image: bytes) -> items.LabelVerification:
    with db.transaction(factory) as session:
        return items.verify_label(session, "clara", lookup.item(session, key), decode_label(image))


def label_flag(factory: sessionmaker[Session], key: str) -> bool:
    with factory() as session:
        return lookup.item(session, key).label_out_of_date


def test_a_matching_label_photo_clears_label_out_of_date(site: sessionmaker[Session]) -> None:
    with site() as session:
        text = items.label_text(lookup.item(session, "S-2026-001"))
    assert label_flag(site, "S-2026-001")
    assert verify(site, "S-2026-001", photo_of(text)).agrees
    assert not label_flag(site, "S-2026-001")
    with site() as session:
        assert entries(session, "item.label_verified", "item:S-2026-001/1") == [{"level": "secret"}]


def test_the_label_of_another_item_is_refused_and_flags_the_item(site: sessionmaker[Session]) -> None:
    with site() as session:
        text = items.label_text(lookup.item(session, "S-2026-002"))
    outcome = verify(site, "S-2026-001", photo_of(text, seed=2))
    assert outcome.refusal is not None and outcome.refusal.rule == "label.disagrees"
    assert {"epc", "register_key"} <= set(outcome.differing)
    assert label_flag(site, "S-2026-001")
    with site() as session:
        [logged] = entries(session, "item.label_mismatch", "item:S-2026-001/1")
        assert logged["read"]["epc"] == text.epc and logged["read"]["register_key"] == "S-2026-002/1"


def test_an_outdated_label_with_the_old_level_is_refused(site: sessionmaker[Session]) -> None:
    with site() as session:
        old = items.label_text(lookup.item(session, "C-2026-001"))
    assert verify(site, "C-2026-001", photo_of(old)).agrees
    with db.transaction(site) as session:
        items.place(session, "admin", lookup.item(session, "C-2026-001"), "archive")
        items.change_marking(session, "clara", lookup.item(session, "C-2026-001"), reason="review", level="secret")
    assert label_flag(site, "C-2026-001")
    outcome = verify(site, "C-2026-001", photo_of(old, seed=3))
    assert not outcome.agrees and outcome.differing == ("level",)
    assert label_flag(site, "C-2026-001")
    with site() as session:
        fresh = items.label_text(lookup.item(session, "C-2026-001"))
    assert fresh.level == "secret"
    assert verify(site, "C-2026-001", photo_of(fresh, seed=4)).agrees
    assert not label_flag(site, "C-2026-001")


def test_a_disputed_item_needs_a_label_at_the_protected_level(site: sessionmaker[Session]) -> None:
    with site() as session:
        before = items.label_text(lookup.item(session, "C-2026-001"))
    with db.transaction(site) as session:
        dispute_survey(session, ("secret", "Ministry"))
    outcome = verify(site, "C-2026-001", photo_of(before))
    assert outcome.differing == ("level",)


def noise_image() -> bytes:
    rng = np.random.default_rng(5)
    ok, png = cv2.imencode(".png", rng.integers(0, 255, (600, 800), dtype=np.uint8))
    assert ok
    return png.tobytes()


def test_an_unreadable_image_is_refused_and_changes_nothing(site: sessionmaker[Session]) -> None:
    with site() as session:
        text = items.label_text(lookup.item(session, "S-2026-001"))
    assert verify(site, "S-2026-001", photo_of(text)).agrees
    for image in [b"", b"not an image at all", noise_image()]:
        refused(
            site,
            "label.unreadable",
            lambda s, image=image: items.verify_label(s, "clara", lookup.item(s, "S-2026-001"), decode_label(image)),
        )
    assert not label_flag(site, "S-2026-001")


# ---- who knew (Art. 20) ------------------------------------------------------------------------------------
def read(who: str, key: str, venue: str) -> Callable[[Session], ItemAccess | None]:
    return lambda s: items.record_access(
        s,
        "gus",
        lookup.item(s, key),
        lookup.person(s, who),
        "read",
        items.AccessContext(venue=venue, reference="desk 3"),
    )


def test_a_reading_in_a_venue_is_recorded_and_journaled(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        access = read("bob", "S-2026-001", "archive")(session)
        assert access is not None
    with site() as session:
        row = session.execute(select(ItemAccess).where(ItemAccess.how == "read")).scalar_one()
        assert (row.person_id, row.recorded_by, row.context) == (lookup.person(session, "bob").id, "gus", "desk 3")
        assert row.venue_id == lookup.venue(session, "archive").id
        [logged] = entries(session, "access.recorded", "item:S-2026-001/1")[-1:]
        assert logged["kind"] == "read" and logged["person"] == "bob" and logged["venue"] == "archive"
    assert chain_ok(site)


def test_a_reading_the_register_would_not_allow_is_refused(site: sessionmaker[Session]) -> None:
    refused(site, "venue.ceiling", read("bob", "S-2026-001", "reading-room"))  # the reading room: confidential
    refused(site, "access.clearance", read("carol", "S-2026-001", "archive"))
    refused(site, "access.scope", read("dave", "S-2026-001", "archive"))  # cleared, but not an archive reader
    refused(site, "venue.ceiling", read("alice", "T-2026-001", "archive"))  # top secret is read in the vault
    with site() as session:
        assert session.execute(select(ItemAccess).where(ItemAccess.how == "read")).first() is None


def test_readings_below_secret_are_allowed_but_not_kept(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        assert read("carol", "C-2026-001", "reading-room")(session) is None
    with pytest.raises(InvalidInput) as missing, db.transaction(site) as session:
        items.record_access(session, "gus", lookup.item(session, "S-2026-001"), lookup.person(session, "bob"), "read")
    assert missing.value.field == "venue"


def test_a_carry_out_is_recorded_at_its_own_time_with_its_portal(site: sessionmaker[Session]) -> None:
    crossed = utc(2026, 6, 3, 17, 45, 12)
    with db.transaction(site) as session:
        items.record_access(
            session,
            "system",
            lookup.item(session, "S-2026-001"),
            lookup.person(session, "bob"),
            "carry_out",
            items.AccessContext(portal="main-exit", reference="exit.decision A-2026-0001", at=crossed),
        )
    with site() as session:
        row = session.execute(select(ItemAccess).where(ItemAccess.how == "carry_out")).scalar_one()
        assert row.at == crossed and row.portal_id == lookup.portal(session, "main-exit").id
        assert entries(session, "access.recorded", "item:S-2026-001/1")[-1]["portal"] == "main-exit"
    with pytest.raises(InvalidInput) as missing, db.transaction(site) as session:
        items.record_access(
            session, "system", lookup.item(session, "S-2026-001"), lookup.person(session, "bob"), "carry_out"
        )
    assert missing.value.field == "portal"


def test_custody_changes_are_access_records_too(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        items.hand_to(session, "admin", lookup.item(session, "S-2026-001"), "petra")
    with site() as session:
        kinds = session.execute(
            select(ItemAccess.how).where(ItemAccess.person_id == lookup.person(session, "petra").id)
        ).scalars()
        assert list(kinds) == ["custody"]
        assert entries(session, "access.recorded", "item:S-2026-001/1")[-1]["person"] == "petra"


# ---- top-secret transfers (Art. 29(1)) ---------------------------------------------------------------------
def send(sender: str, receiver: str, approval_ref: str | None, to_venue: str = "destruction-centre"):  # type: ignore[no-untyped-def]
    return lambda s: transfers.hand_over(
        s, sender, receiver=receiver, items=("T-2026-002",), to_venue=to_venue, approval_ref=approval_ref
    )


def test_a_top_secret_transfer_needs_an_approval_for_that_item(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        approve(session, "A-OTHER", "transfer", ("T-2026-001",), ("alice", "dave"))
    exc = refused(site, "approval.item", send("alice", "dave", "A-OTHER"))
    assert exc.details == ["T-2026-002/1"]
    refused(site, "transfer.top_secret_designated", send("alice", "dave", None))
    refused(site, "approval.kind", send("alice", "dave", "A-2026-0003"))  # a carry-out approval


def test_a_top_secret_transfer_with_an_expired_approval_is_refused(site: sessionmaker[Session]) -> None:
    weeks_ago = (NOW - dt.timedelta(days=60), NOW - dt.timedelta(days=21))
    with db.transaction(site) as session:
        approve(session, "A-OLD", "transfer", ("T-2026-002",), ("alice", "dave"), window=weeks_ago)
        approve(
            session,
            "A-LATER",
            "transfer",
            ("T-2026-002",),
            ("alice", "dave"),
            window=(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=2)),
        )
    refused(site, "approval.window", send("alice", "dave", "A-OLD"))
    refused(site, "approval.window", send("alice", "dave", "A-LATER"))


def test_a_top_secret_transfer_names_the_designated_sender_and_receiver(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        approve(session, "A-TS", "transfer", ("T-2026-002",), ("alice", "dave"), destination_venue="destruction-centre")
        pending = approvals.ApprovalRequest(
            ref="A-PENDING",
            kind="transfer",
            items=("T-2026-002",),
            people=("alice", "dave"),
            valid_from=OPEN_WINDOW[0],
            valid_until=OPEN_WINDOW[1],
        )
        approvals.request(session, "alice", pending)
    assert refused(site, "transfer.top_secret_designated", send("alice", "petra", "A-TS")).details == ["petra"]
    assert refused(site, "transfer.top_secret_designated", send("petra", "dave", "A-TS")).details == ["petra"]
    refused(site, "approval.state", send("alice", "dave", "A-PENDING"))
    refused(site, "transfer.destination", send("alice", "dave", "A-TS", to_venue="vault"))
    with db.transaction(site) as session:
        transfer = send("dave", "alice", "A-TS")(session)
        assert transfer.state == "in_transit"
        receipt = transfers.receive(session, "alice", transfer, ("T-2026-002",))
        assert receipt.complete
        assert entries(session, "transfer.sent", f"transfer:{transfer.id}")[0]["items"] == ["T-2026-002/1"]
        assert entries(session, "access.recorded", "item:T-2026-002/1")[-1]["person"] == "alice"
    assert chain_ok(site)


def test_an_inspection_says_what_was_inspected(site: sessionmaker[Session]) -> None:
    blank = dataclasses.replace(inspection(LI, ZHANG), subject=" ")
    refused(site, "inspection.subject", lambda s: inspections.record_inspection(s, "audrey", blank))


def test_an_approval_with_no_use_left_allows_no_transfer(site: sessionmaker[Session]) -> None:
    with db.transaction(site) as session:
        approve(session, "A-SPENT", "transfer", ("T-2026-002",), ("alice", "dave")).uses_left = 0
    refused(site, "approval.used_up", send("alice", "dave", "A-SPENT"))


def test_every_catalogued_rule_has_a_sentence_and_a_scenario_here() -> None:
    scenarios = Path(__file__).read_text()
    for rule_id, rule in rules.CATALOGUE.items():
        assert rule.id == rule_id and rule.source and rule.sentence.endswith(".")
        assert f'"{rule_id}"' in scenarios, f"no scenario refuses {rule_id}"

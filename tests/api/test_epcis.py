"""Journal entries to EPCIS 2.0 ObjectEvents: the conversion, and the export of a register validated against
GS1's EPCIS 2.0 JSON schema (tests/data/epcis, see SOURCE.md there for where it comes from)."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api import epcis
from registry import db, journal
from registry.journal import GENESIS, entry_hash
from registry.models import JournalEntry
from registry.services import destruction, lookup
from tests.api.conftest import Tokens

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "epcis" / "EPCIS-JSON-Schema.json"


@cache
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def assert_valid_epcis(document: object) -> None:
    errors = sorted(validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def entry(seq: int, payload: object, action: str = "movement.crossed") -> JournalEntry:
    body = json.dumps(payload)
    at = "2026-03-02T10:15:00.000000+00:00"
    digest = entry_hash(GENESIS, seq, at, "portal", action, "portal:main-exit", body)
    return JournalEntry(
        seq=seq,
        at=at,
        actor="portal",
        action=action,
        subject="portal:main-exit",
        payload=body,
        prev_hash=GENESIS,
        hash=digest,
    )


def test_incomplete_payloads_are_not_crossings() -> None:
    assert epcis.crossing_of(entry(1, {"portal": "main-exit"})) is None
    assert epcis.crossing_of(entry(2, ["not", "an", "object"])) is None
    assert epcis.crossing_of(entry(3, {"epc": "AB", "portal": "p", "time": "yesterday"})) is None


def test_a_crossing_without_time_takes_the_journal_time_and_a_naive_time_is_utc() -> None:
    untimed = epcis.crossing_of(entry(1, {"epc": "e2801170000002000000000a", "portal": "main-exit"}))
    assert untimed is not None
    assert untimed.time == dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.UTC)
    assert untimed.epc == "E2801170000002000000000A"
    naive = epcis.crossing_of(
        entry(2, {"epc": "E2801170000002000000000A", "portal": "p", "time": "2026-03-02T11:00:00"})
    )
    assert naive is not None and naive.time.tzinfo is dt.UTC


def test_event_fields_follow_the_crossing() -> None:
    crossing = epcis.crossing_of(
        entry(
            7,
            {
                "epc": "E28011700000020000000004E2801170",
                "portal": "archive door",
                "from_venue": "archive",
                "to_venue": "corridor",
                "direction": "out",
                "time": "2026-03-02T11:15:00+01:00",
            },
        )
    )
    assert crossing is not None
    event = epcis.object_event(crossing, "https://site.example/")
    assert event["epcList"] == ["urn:epc:raw:128.xE28011700000020000000004E2801170"]
    assert event["eventTime"] == "2026-03-02T10:15:00Z"
    assert event["readPoint"] == {"id": "https://site.example/portal/archive%20door"}
    assert event["sourceList"] == [{"type": "location", "source": "https://site.example/venue/archive"}]
    assert event["destinationList"] == [{"type": "location", "destination": "https://site.example/venue/corridor"}]
    assert event["eventID"] == epcis.object_event(crossing, "https://other.example")["eventID"]


def test_controller_payloads_with_time_us_and_outside() -> None:
    crossing = epcis.crossing_of(
        entry(
            9,
            {
                "epc": "E28011700000020000000006",
                "item": "T-2026-001/1",
                "portal": "vault-dock",
                "from_venue": "vault",
                "to_venue": "outside",
                "direction": "exit",
                "time_us": 1_772_446_500_000_000,
            },
        )
    )
    assert crossing is not None
    assert crossing.time == dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.UTC)
    event = epcis.object_event(crossing, "https://site.example")
    assert (event["bizStep"], event["disposition"]) == ("shipping", "in_transit")  # out of the unit
    assert "bizLocation" not in event and "destinationList" not in event


CROSSINGS = {
    # (from, to, direction) -> (bizStep, disposition) per the CBV
    ("corridor", "outside", "exit"): ("shipping", "in_transit"),
    ("outside", "corridor", "entry"): ("receiving", "in_progress"),
    ("archive", "corridor", "exit"): ("departing", "in_transit"),
    ("corridor", "archive", "entry"): ("arriving", "in_progress"),
}


@pytest.mark.parametrize(("route", "expected"), list(CROSSINGS.items()))
def test_crossings_map_to_cbv_steps_and_validate(route: tuple[str, str, str], expected: tuple[str, str]) -> None:
    source, target, direction = route
    payload = {"epc": "E28011700000020000000004", "portal": "p", "from_venue": source, "to_venue": target,
               "direction": direction, "time_us": 1_772_446_500_000_000}
    event = epcis.event_of(entry(1, payload), "https://site.example")
    assert event is not None and (event["bizStep"], event["disposition"]) == expected
    assert_valid_epcis(epcis.document([event], dt.datetime(2026, 3, 2, tzinfo=dt.UTC)))


def test_a_destruction_is_a_delete_with_destroying_and_destroyed() -> None:
    payload = {"record": 4, "witness": "wendy", "device": "degausser-1 + shredder-1", "approval": "A-2026-0002",
               "tag_retired": "E28011700000020000000005", "certificate_sha256": "ab" * 32}
    event = epcis.event_of(entry(9, payload, "item.destroyed"), "https://site.example")
    assert event is not None
    assert (event["action"], event["bizStep"], event["disposition"]) == ("DELETE", "destroying", "destroyed")
    assert event["readPoint"] == {"id": "https://site.example/device/degausser-1"}
    assert event["bizTransactionList"] == [{"bizTransaction": "https://site.example/approval/A-2026-0002"}]
    assert_valid_epcis(epcis.document([event], dt.datetime(2026, 3, 2, tzinfo=dt.UTC)))
    assert epcis.event_of(entry(10, {"record": 5}, "item.destroyed"), "https://x") is None  # no tag retired
    assert epcis.event_of(entry(11, payload, "item.registered"), "https://x") is None


def test_a_document_that_breaks_the_schema_is_caught() -> None:
    bad = epcis.document([{"type": "ObjectEvent", "action": "SHRED"}], dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    with pytest.raises(AssertionError):
        assert_valid_epcis(bad)


def test_the_export_of_a_register_validates_with_every_kind_of_event(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    moves = [("archive", "corridor", "exit"), ("corridor", "outside", "exit"), ("outside", "corridor", "entry"),
             ("corridor", "archive", "entry")]
    with db.transaction(factory) as session:
        for n, (source, target, direction) in enumerate(moves):
            journal.append(session, "system", "movement.crossed", "item:S-2026-001/1", {
                "epc": "E28011700000020000000004", "item": "S-2026-001/1", "portal": "main-exit",
                "from_venue": source, "to_venue": target, "direction": direction,
                "time_us": 1_772_446_500_000_000 + n,
            })
        now = journal.now_utc()
        evidence = destruction.DestructionEvidence("degausser-1 + shredder-1", "degauss then shred", now, now)
        destruction.record_destroyed(session, "otto", "wendy", lookup.item(session, "S-2026-002"), evidence, "ab" * 32)
    response = client.get("/api/epcis/movements", headers=tokens["audrey"])
    assert response.status_code == 200
    document = response.json()
    assert_valid_epcis(document)
    steps = [(e["bizStep"], e.get("disposition")) for e in document["epcisBody"]["eventList"]]
    assert steps == [("departing", "in_transit"), ("shipping", "in_transit"), ("receiving", "in_progress"),
                     ("arriving", "in_progress"), ("destroying", "destroyed")]

"""Journal entries to EPCIS 2.0 ObjectEvents: the pure conversion, without the web layer."""

from __future__ import annotations

import datetime as dt
import json

from api import epcis
from registry.journal import GENESIS, entry_hash
from registry.models import JournalEntry


def entry(seq: int, payload: object) -> JournalEntry:
    body = json.dumps(payload)
    at = "2026-03-02T10:15:00.000000+00:00"
    digest = entry_hash(GENESIS, seq, at, "portal", "movement.crossed", "portal:main-exit", body)
    return JournalEntry(
        seq=seq,
        at=at,
        actor="portal",
        action="movement.crossed",
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
    assert event["bizStep"] == "departing"
    assert "bizLocation" not in event and "destinationList" not in event

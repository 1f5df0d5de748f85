"""Movements as a GS1 EPCIS 2.0 JSON-LD document: one ObjectEvent (action OBSERVE) per journalled crossing.

Controllers journal a crossing as action `movement.crossed` with payload {"epc", "portal", "from_venue",
"to_venue", "direction", "time_us" or "time"}; "outside" means outside the unit. EPCs are stored as raw
hex, so they are written as TDS raw URIs (`urn:epc:raw:<bits>.x<hex>`); portals and venues become location
URIs under a configurable base. The event id is a UUID derived from the journal entry's hash, so an export
is repeatable and each event can be traced to its journal entry.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from registry.models import JournalEntry

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
OUTSIDE = "outside"
LEAVING = frozenset({"out", "outbound", "exit", "leaving", "departing"})


@dataclass(frozen=True, slots=True)
class Crossing:
    journal_seq: int
    journal_hash: str
    epc: str
    portal: str
    from_venue: str | None
    to_venue: str | None
    direction: str
    time: dt.datetime


def _time(data: dict[str, object], journal_at: str) -> dt.datetime:
    """The crossing's own time: `time_us` (µs since the epoch) or an ISO `time`, else the journal's time."""
    time_us = data.get("time_us")
    if isinstance(time_us, int):
        return dt.datetime.fromtimestamp(time_us / 1e6, dt.UTC)
    when = dt.datetime.fromisoformat(str(data.get("time") or journal_at))
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _venue(value: object) -> str | None:
    """A venue code, or None for the outside of the unit (which has no location of ours)."""
    return None if value in (None, "", OUTSIDE) else str(value)


def crossing_of(entry: JournalEntry) -> Crossing | None:
    """The crossing a journal entry records, or None if its payload is not a complete crossing."""
    try:
        data = json.loads(entry.payload)
        if not isinstance(data, dict):
            return None
        return Crossing(
            journal_seq=entry.seq,
            journal_hash=entry.hash,
            epc=str(data["epc"]).upper(),
            portal=str(data["portal"]),
            from_venue=_venue(data.get("from_venue")),
            to_venue=_venue(data.get("to_venue")),
            direction=str(data.get("direction", "")),
            time=_time(data, entry.at),
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def epc_uri(epc_hex: str) -> str:
    return f"urn:epc:raw:{len(epc_hex) * 4}.x{epc_hex}"


def _location(base: str, kind: str, code: str | None) -> str | None:
    return f"{base.rstrip('/')}/{kind}/{quote(code, safe='')}" if code else None


def object_event(c: Crossing, base: str) -> dict[str, object]:
    event: dict[str, object] = {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.UUID(hex=c.journal_hash[:32])}",
        "eventTime": c.time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [epc_uri(c.epc)],
        "action": "OBSERVE",
        "bizStep": "departing" if c.direction.lower() in LEAVING else "arriving",
        "readPoint": {"id": _location(base, "portal", c.portal)},
    }
    destination = _location(base, "venue", c.to_venue)
    if destination:
        event["bizLocation"] = {"id": destination}
    sources = [{"type": "location", "source": s} for s in [_location(base, "venue", c.from_venue)] if s]
    destinations = [{"type": "location", "destination": destination}] if destination else []
    if sources:
        event["sourceList"] = sources
    if destinations:
        event["destinationList"] = destinations
    return event


def document(crossings: Iterable[Crossing], base: str, created: dt.datetime) -> dict[str, object]:
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "epcisBody": {"eventList": [object_event(c, base) for c in crossings]},
    }

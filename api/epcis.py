"""The journal as a GS1 EPCIS 2.0 JSON-LD document of ObjectEvents, bizStep and disposition from the GS1 Core
Business Vocabulary (CBV 2.0):

| journal entry | action | bizStep | disposition |
|---|---|---|---|
| `movement.crossed` out of the unit (to "outside") | OBSERVE | shipping | in_transit |
| `movement.crossed` into the unit (from "outside") | OBSERVE | receiving | in_progress |
| `movement.crossed` out of a room, inside the unit | OBSERVE | departing | in_transit |
| `movement.crossed` into a room, inside the unit | OBSERVE | arriving | in_progress |
| `item.destroyed` (verified destruction, tag retired) | DELETE | destroying | destroyed |

Crossings carry {"epc", "portal", "from_venue", "to_venue", "direction", "time_us" or "time"}; "outside" means
outside the unit. A destruction carries the retired tag, the machines used and the approval. EPCs are stored
as raw hex, so they are written as TDS raw URIs (`urn:epc:raw:<bits>.x<hex>`); portals, venues, machines and
approvals become URIs under a configurable base. The event id is a UUID derived from the journal entry's hash,
so an export is repeatable and each event can be traced to its journal entry.
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
ACTIONS = ("movement.crossed", "item.destroyed")  # the journal actions an export reads


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

    @property
    def leaving(self) -> bool:
        return self.direction.lower() in LEAVING

    @property
    def biz_step(self) -> tuple[str, str]:
        """(bizStep, disposition): leaving or entering the unit is shipping or receiving; a room, departing or
        arriving."""
        if self.leaving:
            return ("shipping", "in_transit") if self.to_venue is None else ("departing", "in_transit")
        return ("receiving", "in_progress") if self.from_venue is None else ("arriving", "in_progress")


@dataclass(frozen=True, slots=True)
class Destruction:
    journal_seq: int
    journal_hash: str
    epc: str
    machines: tuple[str, ...]
    approval: str | None
    time: dt.datetime


def _time(data: dict[str, object], journal_at: str) -> dt.datetime:
    """The event's own time: `time_us` (µs since the epoch) or an ISO `time`, else the journal's time."""
    time_us = data.get("time_us")
    if isinstance(time_us, int):
        return dt.datetime.fromtimestamp(time_us / 1e6, dt.UTC)
    when = dt.datetime.fromisoformat(str(data.get("time") or journal_at))
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _venue(value: object) -> str | None:
    """A venue code, or None for the outside of the unit (which has no location of ours)."""
    return None if value in (None, "", OUTSIDE) else str(value)


def _payload(entry: JournalEntry) -> dict[str, object] | None:
    try:
        data = json.loads(entry.payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def crossing_of(entry: JournalEntry) -> Crossing | None:
    """The crossing a journal entry records, or None if its payload is not a complete crossing."""
    data = _payload(entry)
    if data is None:
        return None
    try:
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


def destruction_of(entry: JournalEntry) -> Destruction | None:
    """The verified destruction an `item.destroyed` entry records (its retired tag), or None."""
    data = _payload(entry)
    if data is None or not data.get("tag_retired"):
        return None
    try:
        machines = tuple(m.strip() for m in str(data.get("device", "")).split("+") if m.strip())
        approval = data.get("approval")
        return Destruction(
            journal_seq=entry.seq,
            journal_hash=entry.hash,
            epc=str(data["tag_retired"]).upper(),
            machines=machines,
            approval=str(approval) if approval else None,
            time=_time({}, entry.at),
        )
    except (TypeError, ValueError):
        return None


def epc_uri(epc_hex: str) -> str:
    return f"urn:epc:raw:{len(epc_hex) * 4}.x{epc_hex}"


def _location(base: str, kind: str, code: str | None) -> str | None:
    return f"{base.rstrip('/')}/{kind}/{quote(code, safe='')}" if code else None


def _common(journal_hash: str, when: dt.datetime) -> dict[str, object]:
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{uuid.UUID(hex=journal_hash[:32])}",
        "eventTime": when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": "+00:00",
    }


def object_event(c: Crossing, base: str) -> dict[str, object]:
    biz_step, disposition = c.biz_step
    event: dict[str, object] = {
        **_common(c.journal_hash, c.time),
        "epcList": [epc_uri(c.epc)],
        "action": "OBSERVE",
        "bizStep": biz_step,
        "disposition": disposition,
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


def destruction_event(d: Destruction, base: str) -> dict[str, object]:
    """The tag retired for good (action DELETE): CBV `destroying`, disposition `destroyed`; read at the first
    machine the item went through, the approval as the business transaction that authorised it."""
    event: dict[str, object] = {
        **_common(d.journal_hash, d.time),
        "epcList": [epc_uri(d.epc)],
        "action": "DELETE",
        "bizStep": "destroying",
        "disposition": "destroyed",
    }
    if d.machines:
        event["readPoint"] = {"id": _location(base, "device", d.machines[0])}
    if d.approval:
        event["bizTransactionList"] = [{"bizTransaction": _location(base, "approval", d.approval)}]
    return event


def event_of(entry: JournalEntry, base: str) -> dict[str, object] | None:
    """The EPCIS event a journal entry stands for, or None (another action, or an incomplete payload)."""
    if entry.action == "item.destroyed":
        destroyed = destruction_of(entry)
        return destruction_event(destroyed, base) if destroyed else None
    if entry.action.startswith("movement."):
        crossing = crossing_of(entry)
        return object_event(crossing, base) if crossing else None
    return None


def document(events: Iterable[dict[str, object]], created: dt.datetime) -> dict[str, object]:
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "epcisBody": {"eventList": list(events)},
    }

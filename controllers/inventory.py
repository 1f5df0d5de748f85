"""Inventory sweeps: read a venue with a handheld (Mercury) or its fixed antennas, reconcile with the register,
record the count and alarm on every discrepancy."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.alarms import AlarmBook, Evidence
from controllers.bus import LiveBus, LiveKind, Severity
from registry import db
from registry.models import Item
from registry.services import incidents, inventory, lookup
from tracking.results import InventoryResult


def to_count(
    result: InventoryResult, seen: set[str], epc_of: dict[int, str], name_of: dict[int, str], venue_items: Iterable[int]
) -> inventory.CountResult:
    flagged = set(result.elsewhere) | set(result.destroyed_seen)
    present = sorted(name_of[i] for i in venue_items if epc_of.get(i) in seen and i not in flagged)
    return inventory.CountResult(
        present=tuple(present),
        missing=tuple(sorted(name_of.get(i, str(i)) for i in result.missing)),
        elsewhere=tuple(sorted(name_of.get(i, str(i)) for i in result.elsewhere)),
        unregistered=tuple(sorted(result.unregistered)),
        destroyed_seen=tuple(sorted(name_of.get(i, str(i)) for i in result.destroyed_seen)),
    )


def sweep(
    reconcile: Callable[[int, list[str]], InventoryResult],
    factory: sessionmaker[Session],
    bus: LiveBus,
    *,
    venue_code: str,
    epcs: Iterable[str],
    actor: str,
    method: str,
    alarms: AlarmBook | None = None,
) -> inventory.CountResult:
    """Reconcile the EPCs seen in a venue (`reconcile` is the engine's) and record the count; a destroyed item
    seen opens an incident."""
    seen = {e.upper() for e in epcs}
    with factory() as session:
        venue = lookup.venue(session, venue_code)
        rows = session.execute(select(Item.id, Item.epc, Item.register_number, Item.copy_number, Item.venue_id)).all()
    epc_of = {r.id: r.epc for r in rows}
    name_of = {r.id: f"{r.register_number}/{r.copy_number}" for r in rows}
    in_venue = [r.id for r in rows if r.venue_id == venue.id]
    result = to_count(reconcile(venue.id, sorted(seen)), seen, epc_of, name_of, in_venue)
    with db.transaction(factory) as session:
        inventory.record_count(session, actor, venue_code, method, result)
        for name in result.destroyed_seen:
            incidents.open_incident(
                session, actor, "destroyed_item_seen", f"{name} seen during the inventory of {venue_code}"
            )
    now = time.time_ns() // 1000
    if result.clean:
        bus.publish(
            LiveKind.HEALTH,
            Severity.INFO,
            now,
            venue_code,
            f"inventory of {venue_code}: all present",
            (("present", str(len(result.present))),),
        )
    else:
        details = tuple(
            (k, ", ".join(v))
            for k, v in (
                ("missing", result.missing),
                ("registered elsewhere", result.elsewhere),
                ("unregistered", result.unregistered),
                ("destroyed but seen", result.destroyed_seen),
            )
            if v
        )
        if alarms is not None:  # the site's alarm book: the alarm gets an id a guard acknowledges it by
            text = "; ".join(f"{label}: {names}" for label, names in details)
            alarms.raise_alarm("inventory_discrepancy", now, venue_code, Evidence(detail=text), venue=venue_code)
        else:
            bus.publish(
                LiveKind.ALARM, Severity.CRITICAL, now, venue_code, f"inventory discrepancy in {venue_code}", details
            )
    return result

"""Inventory counts (domain-rules 8): a venue sweep reconciled with the register, with its discrepancies."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry import journal
from registry.models import InventoryCount
from registry.services import lookup


@dataclass(frozen=True, slots=True)
class CountResult:
    present: tuple[str, ...]  # register/copy of items seen where the register has them
    missing: tuple[str, ...]
    elsewhere: tuple[str, ...]
    unregistered: tuple[str, ...]  # EPCs
    destroyed_seen: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not (self.missing or self.elsewhere or self.unregistered or self.destroyed_seen)


def record_count(session: Session, actor: str, venue_code: str, method: str, result: CountResult) -> InventoryCount:
    venue = lookup.venue(session, venue_code)
    body = {
        "missing": list(result.missing),
        "elsewhere": list(result.elsewhere),
        "unregistered": list(result.unregistered),
        "destroyed_seen": list(result.destroyed_seen),
    }
    count = InventoryCount(
        venue_id=venue.id,
        at=journal.now_utc(),
        counted_by=actor,
        method=method,
        present=len(result.present),
        result_json=json.dumps(body, sort_keys=True),
    )
    session.add(count)
    session.flush()
    journal.append(
        session,
        actor,
        "inventory.counted",
        f"venue:{venue_code}",
        {"count": count.id, "present": len(result.present), **body, "method": method},
    )
    return count

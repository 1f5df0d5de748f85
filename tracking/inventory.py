"""Inventory reconciliation of a venue sweep (fixed antennas or a handheld) against the register."""

from __future__ import annotations

from typing import Protocol

from tracking.results import InventoryResult


class _SweepingCore(Protocol):
    def sweep(self, venue_id: int, epcs: list[str]) -> tuple[list[int], list[int], list[str], list[int]]: ...


def reconcile(core: _SweepingCore, venue_id: int, epcs: list[str]) -> InventoryResult:
    """Compare the EPCs seen in a venue with the items the core believes are there.

    Items destroyed in the register are never 'missing'; if seen they are 'destroyed_seen'.
    """
    missing, elsewhere, unregistered, destroyed = core.sweep(venue_id, list(epcs))
    return InventoryResult(venue_id, tuple(missing), tuple(elsewhere), tuple(unregistered), tuple(destroyed))

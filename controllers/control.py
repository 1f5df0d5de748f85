"""What the API may ask of a running site. The API never opens a device; it calls this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.services.inventory import CountResult


@dataclass(frozen=True, slots=True)
class DoorState:
    portal: str
    locked: bool
    open: bool
    released_by_fire_alarm: bool
    panel_online: bool
    readers_online: bool


@dataclass(frozen=True, slots=True)
class DeviceState:
    name: str
    kind: str
    health: str  # online | degraded | offline
    reason: str


@dataclass(frozen=True, slots=True)
class DestructionOutcome:
    item: str
    destroyed: bool
    reason: str
    record_id: int | None
    certificate_sha256: str | None


class SiteControl(Protocol):
    """Implemented by the running site (controllers); a test double may implement it too."""

    def doors(self) -> list[DoorState]: ...

    def devices(self) -> list[DeviceState]: ...

    def acknowledge(self, alarm_id: int, username: str) -> None: ...

    def override(self, portal: str, username: str, reason: str) -> None:
        """A guard lets a blocked exit through with their own credentials and a written reason."""
        ...

    def run_destruction(
        self, station: str, item_keys: list[str], operator: str, witness: str
    ) -> list[DestructionOutcome]: ...

    def place_on_intake(self, station: str, epc: str) -> None:
        """Demo only: an item's tag placed on the station's simulated intake reader (LookupError: none)."""
        ...

    def sweep(self, venue: str, actor: str) -> CountResult:
        """Inventory a venue with its handheld reader and record the count (LookupError: no reader there)."""
        ...

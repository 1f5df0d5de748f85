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
class DeviceProbe:
    """What a device says it is and how it is, asked now (the administrator's "probe" button)."""

    name: str
    kind: str
    health: str  # online | degraded | offline | unknown
    identity: str  # "" when the device did not say
    detail: str  # the endpoint and the health reason, or why it could not be asked


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

    def probe(self, device: str) -> DeviceProbe:
        """Ask a device of the running site for its identity and health (KeyError: no such device)."""
        ...

    def acknowledge(self, alarm_id: int, username: str) -> None: ...

    def override(self, portal: str, username: str, reason: str) -> None:
        """A guard lets a blocked exit through with their own credentials and a written reason."""
        ...

    def forgive(self, person: str, username: str, reason: str) -> None:
        """A guard forgives a person's anti-passback state (their next badge is not checked against it)."""
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

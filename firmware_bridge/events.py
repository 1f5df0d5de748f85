"""Typed events every driver emits. Times are microseconds since the Unix epoch (device clock if given)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Health(enum.StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A device changed health state; `reason` says why in words an operator understands."""

    device: str
    health: Health
    reason: str
    time_us: int


@dataclass(frozen=True, slots=True)
class TagRead:
    """One RFID tag observation reported by a reader antenna."""

    reader: str
    antenna: int
    epc: str  # upper-case hex
    time_us: int
    rssi_dbm: float = float("nan")
    tid: str | None = None
    stale: bool = False  # reported after a link outage, not live


@dataclass(frozen=True, slots=True)
class CardRead:
    """A credential presented at an access panel's reader."""

    panel: str
    reader: int
    card_hex: str
    bits: int
    format: str
    time_us: int
    stale: bool = False


@dataclass(frozen=True, slots=True)
class InputChange:
    """A supervised input on a panel changed: door contact, request-to-exit, fire alarm, tamper, power."""

    panel: str
    input: str
    active: bool
    time_us: int
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeyPress:
    """Keys typed on a panel's keypad (digits, '*' and '#'), as one burst."""

    panel: str
    reader: int
    keys: str
    time_us: int
    stale: bool = False


DeviceEvent = HealthEvent | TagRead | CardRead | InputChange | KeyPress

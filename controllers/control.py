"""What the API may ask of a running site. The API never opens a device; it calls this."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from registry.services.inventory import CountResult

if TYPE_CHECKING:
    from controllers.alarms import AlarmView


class ControlError(Exception):
    """A command the site refused; the message is a sentence a guard can read."""


class UnknownAlarm(ControlError, LookupError):
    """No alarm with that id is in the alarm book (HTTP 404)."""


class AlarmConflict(ControlError):
    """The alarm is not in a state that allows this step (already acknowledged, not yet acknowledged: 409)."""


class UnknownPortal(ControlError, LookupError):
    """The site has no portal with that code (404)."""


class OverrideRefused(ControlError):
    """The override was not taken (409); `reason` is the engine's stable reason id when it decided."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class NoFreshBlock(OverrideRefused):
    """No block at that portal, or the one there is too old to override (409)."""


class PasswordRefused(OverrideRefused):
    """The guard's password, entered for the override, is not theirs (403)."""


class RegisterUnavailable(ControlError):
    """The command needs the register (to check a password) and it cannot be reached (503)."""


class SiteUnreachable(ControlError):
    """The centre has no live path to the site that owns the door: the command was not applied (503)."""


@dataclass(frozen=True, slots=True)
class DoorState:
    portal: str
    locked: bool
    open: bool
    released_by_fire_alarm: bool
    panel_online: bool
    readers_online: bool
    block: BlockState | None = None  # a fresh block a guard may override, if any
    links: str = "unknown"  # its panel and readers together: online | degraded | offline | unknown (no report yet)


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
class BlockState:
    """The current block at a door, as the guard may override it."""

    alarm_id: int | None
    person: str
    items: tuple[str, ...]
    reasons: tuple[str, ...]
    time_us: int  # the badge time
    fresh_until_us: int  # after this the block can no longer be overridden
    direction: str = "exit"  # the way the refused badge was presented: exit | entry
    kept_shut: tuple[str, ...] = ()  # a sentence per resting item that kept the door shut (which, since when)


@dataclass(frozen=True, slots=True)
class OverrideOutcome:
    """An override the engine took: the door was opened for the blocked person and items."""

    portal: str
    guard: str
    person: str
    items: tuple[str, ...]
    overridden: tuple[str, ...]  # the reasons of the block it overrode
    time_us: int


@dataclass(frozen=True, slots=True)
class DestructionOutcome:
    item: str
    destroyed: bool
    reason: str
    record_id: int | None
    certificate_sha256: str | None
    # The particle analysis could not verify the lot, which is still in the output tray: the run's operator,
    # with its witness, may take another image of it (the item stays "destruction failed" until then).
    verification_pending: bool = False


@dataclass(frozen=True, slots=True)
class PendingVerification:
    """A station's lot waiting for another image: why it could not be verified and its latest evidence."""

    station: str
    item: str
    operator: str
    witness: str
    frames: int  # taken so far
    max_frames: int
    reason: str
    evidence_image_sha256: str


@dataclass(frozen=True, slots=True)
class SiteAlarm:
    """An alarm of one site's book as the centre holds it. `ack_sent_by` / `resolve_sent_by`: a guard at the centre
    acknowledged / resolved it and the site has not confirmed yet (it applies the command whenever it is
    reachable). `refused`: the site's refusal of the last command sent for it, as its receipt said."""

    site: str
    alarm: AlarmView
    ack_sent_by: str = ""
    resolve_sent_by: str = ""
    refused: str = ""

    @property
    def sent_by(self) -> str:
        return self.ack_sent_by or self.resolve_sent_by


class CentreDesk(Protocol):
    """What the centre's guard stations may ask: every site's alarm book, commands to the site owning it."""

    def alarms(self, *, resolved: bool = False) -> list[SiteAlarm]: ...

    def acknowledge(self, site: str, alarm_id: int, username: str, note: str = "") -> SiteAlarm:
        """Sent to the site (never lost); returns once the site confirmed, or after a short wait with
        `ack_sent_by` set. UnknownAlarm, AlarmConflict when it is not open."""
        ...

    def resolve(self, site: str, alarm_id: int, username: str, note: str) -> SiteAlarm:
        """As `acknowledge`, for an acknowledged alarm, with a note saying what was done (AlarmConflict when it is
        open or resolved already)."""
        ...

    def procedure(self, kind: str) -> tuple[str, ...]: ...

    def override(
        self, site: str, portal: str, username: str, password: str, reason: str, *, alarm_id: int | None = None
    ) -> OverrideOutcome:
        """As `SiteControl.override`, decided by the site's own edge over a live path; SiteUnreachable when
        there is none (nothing is queued)."""
        ...


class SiteControl(Protocol):
    """Implemented by the running site (controllers); a test double may implement it too."""

    def doors(self) -> list[DoorState]: ...

    def devices(self) -> list[DeviceState]: ...

    def probe(self, device: str) -> DeviceProbe:
        """Ask a device of the running site for its identity and health (KeyError: no such device)."""
        ...

    def alarms(self, *, resolved: bool = False) -> list[AlarmView]: ...

    def acknowledge(self, alarm_id: int, username: str, note: str = "") -> AlarmView:
        """UnknownAlarm, AlarmConflict when it is not open."""
        ...

    def resolve(self, alarm_id: int, username: str, note: str) -> AlarmView: ...

    def alarm_frame(self, alarm_id: int) -> Path | None:
        """The camera frame kept with an alarm, if there is one."""
        ...

    def procedure(self, kind: str) -> tuple[str, ...]:
        """The standard operating steps shown with alarms of this kind (the site's own, or the default)."""
        ...

    def set_procedure(self, kind: str, steps: list[str], username: str) -> tuple[str, ...]: ...

    def override(
        self, portal: str, username: str, password: str, reason: str, *, alarm_id: int | None = None
    ) -> OverrideOutcome:
        """A guard lets the current, fresh block at a door through, with their own password entered now and a
        written reason (the engine decides; UnknownPortal, NoFreshBlock, OverrideRefused, PasswordRefused)."""
        ...

    def forgive(self, person: str, username: str, reason: str) -> None:
        """A guard forgives a person's anti-passback state (their next badge is not checked against it)."""
        ...

    def run_destruction(
        self, station: str, item_keys: list[str], operator: str, witness: str
    ) -> list[DestructionOutcome]: ...

    def reimage_destruction(self, station: str, operator: str, witness: str) -> DestructionOutcome:
        """Another frame of the lot the station could not verify, judged with its earlier frames (LookupError:
        no such station; RuleViolation: nothing pending there, or not that run's operator and witness)."""
        ...

    def give_up_destruction(self, station: str, operator: str) -> DestructionOutcome:
        """The run's operator stops re-imaging: the item stays "destruction failed", with the reason."""
        ...

    def pending_verifications(self) -> list[PendingVerification]: ...

    def place_on_intake(self, station: str, epc: str) -> None:
        """Demo only: an item's tag placed on the station's simulated intake reader (LookupError: none)."""
        ...

    def sweep(self, venue: str, actor: str) -> CountResult:
        """Inventory a venue with its handheld reader and record the count (LookupError: no reader there)."""
        ...

"""A running site: the register compiled into the tracking engine, the portal controller, the recorder and
the destruction stations, behind the `SiteControl` interface the API calls.

The register is recompiled and swapped into the engine whenever people, items, venues or approvals change
(watched through the journal), so a fresh approval applies from the next event on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus, LiveKind, Severity
from controllers.control import DestructionOutcome, DeviceState, DoorState
from controllers.destruction import DestructionStation
from controllers.portal import DoorPanels, Names, PortalController, PortalWiring
from controllers.recorder import Record, Recorder
from firmware_bridge import kinds
from firmware_bridge.events import HealthEvent
from firmware_bridge.kinds import Role
from registry.compile import site_model
from registry.errors import RegistryError
from registry.models import Approval, Device, Item, JournalEntry, Person, Portal, Venue
from registry.services import approvals, incidents
from tracking.engine import Backend, Engine
from tracking.model import EngineConfig
from tracking.results import InventoryResult
from tracking.snapshot import build_snapshot

log = logging.getLogger(__name__)
# Journal actions after which the engine needs a fresh snapshot of the register.
REGISTER_CHANGES = ("approval.%", "item.%", "person.%", "site.%", "transfer.%")
RELOAD_EVERY_S = 1.0


def _names(session: Session) -> Names:
    items = session.execute(select(Item.id, Item.register_number, Item.copy_number, Item.epc)).all()
    return Names(
        portals=dict(session.execute(select(Portal.id, Portal.code)).all()),
        venues=dict(session.execute(select(Venue.id, Venue.code)).all()),
        items={i.id: f"{i.register_number}/{i.copy_number}" for i in items},
        epcs={i.id: i.epc for i in items},
        people=dict(session.execute(select(Person.id, Person.username)).all()),
    )


def _wiring(session: Session) -> list[PortalWiring]:
    wiring = {}
    for portal in session.execute(select(Portal).order_by(Portal.id)).scalars():
        wiring[portal.id] = PortalWiring(
            portal_id=portal.id,
            code=portal.code,
            inside_ceiling=portal.inside_venue.ceiling,
            fail_secure_level=portal.inside_venue.fail_secure_level,
        )
    readers: dict[int, list[str]] = {}
    for device in session.execute(select(Device).where(Device.portal_id.is_not(None))).scalars():
        w = wiring[device.portal_id]  # type: ignore[index]
        role = kinds.kind(device.kind).role
        if role is Role.PANEL:
            w.panel = device.name
            settings = kinds.parse_device(device.name, device.kind, json.loads(device.settings_json)).settings
            w.strike_s = settings.strike_ms / 1000
        elif role in (Role.PORTAL_READER, Role.HANDHELD):
            readers.setdefault(w.portal_id, []).append(device.name)
        elif role is Role.CAMERA:
            w.camera = device.name
    for portal_id, names in readers.items():
        wiring[portal_id].readers = tuple(names)
    return list(wiring.values())


def _journal_head(session: Session) -> int:
    return session.execute(select(func.coalesce(func.max(JournalEntry.seq), 0))).scalar_one()


def _register_changed(session: Session, after_seq: int) -> bool:
    """Whether an entry after `after_seq` changed what the engine compiles (a primary-key range scan)."""
    clauses = [JournalEntry.action.like(pattern) for pattern in REGISTER_CHANGES]
    found = session.execute(select(JournalEntry.seq).where(JournalEntry.seq > after_seq, or_(*clauses)).limit(1))
    return found.first() is not None


# ---- register effects applied by the recorder, each inside its own savepoint ----
def _consume_approvals(session: Session, record: Record) -> None:
    for approval_id in record.payload.get("approvals", []):
        approval = session.get(Approval, approval_id)
        if approval is not None:
            approvals.consume(session, record.actor, approval, context=record.subject)


def _move_item(session: Session, record: Record) -> None:
    item = session.get(Item, record.payload["item_id"])
    if item is not None:
        item.venue_id = record.payload.get("to_venue_id")


def _open_incident(session: Session, record: Record) -> None:
    kind = record.action.split(".", 1)[1]
    detail = record.payload.get("detail") or record.payload.get("reason") or ""
    what = record.payload.get("item") or ", ".join(record.payload.get("items", []))
    incidents.open_incident(
        session,
        record.actor,
        kind,
        f"{kind.replace('_', ' ')} at {record.subject}: {what} {detail}".strip(),
        item_id=record.payload.get("item_id"),
        portal_id=record.payload.get("portal_id"),
    )


def _guarded(effect: Callable[[Session, Record], None]) -> Callable[[Session, Record], None]:
    """A register rule refusing an effect must not block the batch: the refusal itself is journaled."""

    def run(session: Session, record: Record) -> None:
        try:
            with session.begin_nested():
                effect(session, record)
        except RegistryError as exc:
            record.payload["effect_refused"] = str(exc)

    return run


EFFECTS = {
    "consume_approvals": _guarded(_consume_approvals),
    "move_item": _guarded(_move_item),
    "open_incident": _guarded(_open_incident),
}


class SiteRuntime:
    def __init__(
        self,
        factory: sessionmaker[Session],
        bus: LiveBus,
        spool_dir: Path,
        *,
        backend: Backend = "numba",
        config: EngineConfig | None = None,
        panels: DoorPanels | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.factory = factory
        self.bus = bus
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.recorder = Recorder(factory, spool_dir / "recorder.jsonl", EFFECTS, on_db_health=self._db_health)
        with factory() as session:
            model = site_model(session)
            names = _names(session)
            wiring = _wiring(session)
            self._compiled_at = _journal_head(session)  # journal position the snapshot reflects
            self._device_kinds = {d.name: d.kind for d in session.execute(select(Device)).scalars()}
        self.engine = Engine(build_snapshot(model), config or EngineConfig(), backend=backend)
        kwargs = {"clock": clock} if clock else {}
        self.portals = PortalController(self.engine, wiring, names, bus, self.recorder, panels=panels, **kwargs)
        self._health: dict[str, tuple[str, str]] = {name: ("unknown", "no report yet") for name in self._device_kinds}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.stations: dict[str, DestructionStation] = {}

    # ---- lifecycle ----
    def start(self) -> SiteRuntime:
        self.recorder.start()
        self.portals.start()
        self._watcher = threading.Thread(target=self._watch_register, name="register-watch", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        """Decide what is queued, write what is decided, then stop: nothing accepted is lost."""
        self._stop.set()
        self.portals.stop()
        self.recorder.flush(timeout_s=10.0)
        self.recorder.stop()
        if self._watcher is not None:
            self._watcher.join(5)

    def submit(self, event: object) -> None:
        """Entry point for every driver's events (any thread)."""
        if isinstance(event, HealthEvent):
            self._health[event.device] = (str(event.health), event.reason)
        self.portals.submit(event)

    def reload(self) -> None:
        with self.factory() as session:
            head = _journal_head(session)
            model = site_model(session)
            self.portals.names = _names(session)
        self._compiled_at = head
        with self.portals.engine_lock:
            self.engine.swap_snapshot(build_snapshot(model))

    def reconcile(self, venue_id: int, epcs: list[str]) -> InventoryResult:
        with self.portals.engine_lock:
            return self.engine.reconcile(venue_id, epcs)

    def _watch_register(self) -> None:
        while not self._stop.wait(RELOAD_EVERY_S):
            try:
                with self.factory() as session:
                    head = _journal_head(session)
                    changed = head > self._compiled_at and _register_changed(session, self._compiled_at)
                if changed:
                    self.reload()
                else:
                    self._compiled_at = max(self._compiled_at, head)
            except Exception as exc:
                log.warning("register watch failed, keeping the current snapshot: %s", exc)

    def _db_health(self, ok: bool, reason: str) -> None:
        self.bus.publish(
            LiveKind.HEALTH,
            Severity.INFO if ok else Severity.CRITICAL,
            time.time_ns() // 1000,
            "database",
            "database reachable" if ok else "DATABASE UNAVAILABLE: decisions continue from the snapshot",
            (("reason", reason),),
        )

    # ---- SiteControl ----
    def doors(self) -> list[DoorState]:
        return self.portals.doors()

    def devices(self) -> list[DeviceState]:
        return [DeviceState(name, self._device_kinds[name], *self._health[name]) for name in sorted(self._device_kinds)]

    def acknowledge(self, alarm_id: int, username: str) -> None:
        self.bus.publish(
            LiveKind.ACK,
            Severity.INFO,
            time.time_ns() // 1000,
            username,
            f"alarm {alarm_id} acknowledged by {username}",
            alarm_id=alarm_id,
        )
        self.recorder.submit(Record(username, "alarm.acknowledged", f"alarm:{alarm_id}", {}))

    def override(self, portal: str, username: str, reason: str) -> None:
        self.portals.override(portal, username, reason)

    def run_destruction(
        self, station: str, item_keys: list[str], operator: str, witness: str
    ) -> list[DestructionOutcome]:
        found = self.stations.get(station)
        if found is None:
            raise KeyError(station)
        outcomes = found.run(item_keys, operator, witness)
        self.reload()  # a destroyed tag must alarm from the next read on
        return outcomes

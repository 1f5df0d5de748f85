"""A running site: the register compiled into the tracking engine, the portal controller, the recorder and
the destruction stations, behind the `SiteControl` interface the API calls.

The register is recompiled and swapped into the engine whenever it changes (the register's typed change
signal, `registry.changes`: at once for writes in this process, within `RELOAD_EVERY_S` for another
process's), so a fresh approval applies from the next event on. Changes the site's own recorder made
(approval uses, item moves) are what the engine already did, and do not trigger a reload. A change of the
site's configuration (venues, portals, devices) also rewires the portal controller, then tells whoever opened
the drivers (`on_site_changed`), so a portal or device added from the administrator's pages comes online.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from controllers import people
from controllers.alarms import ESCALATE_AFTER_S, AlarmBook, AlarmView, Evidence
from controllers.bus import LiveBus, LiveKind, Severity
from controllers.control import (
    DestructionOutcome,
    DeviceProbe,
    DeviceState,
    DoorState,
    OverrideOutcome,
    OverrideRefused,
    PasswordRefused,
    PendingVerification,
    RegisterUnavailable,
    UnknownPortal,
)
from controllers.destruction import DestructionStation
from controllers.portal import DoorPanels, Names, PortalController, PortalWiring
from controllers.recorder import Recorder
from firmware_bridge import kinds
from firmware_bridge.events import HealthEvent
from firmware_bridge.kinds import Role
from registry import changes, db
from registry.compile import site_model
from registry.errors import NotFound
from registry.models import Device, Item, Person, Portal, Venue
from registry.passwords import check_password
from registry.services import alarms as register_alarms
from registry.services import lookup
from registry.services.inventory import CountResult
from registry.sitefile import site_time_zone
from tracking.engine import Backend, Engine, warm_up
from tracking.model import EngineConfig
from tracking.results import InventoryResult
from tracking.snapshot import build_snapshot

log = logging.getLogger(__name__)
RELOAD_EVERY_S = 1.0
OVERRIDE_ANSWER_S = 5.0  # how long the API waits for the engine to decide an override


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
        wiring[portal.id] = PortalWiring(portal_id=portal.id, code=portal.code)
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


class SiteRuntime:
    def __init__(
        self,
        factory: sessionmaker[Session],
        bus: LiveBus,
        log_dir: Path,
        *,
        backend: Backend = "numba",
        config: EngineConfig | None = None,
        panels: DoorPanels | None = None,
        clock: Callable[[], int] | None = None,
        site: str = "site",
        record_consumers: tuple[str, ...] = (),
        escalate_after_s: float = ESCALATE_AFTER_S,
        time_zone: str | None = None,
    ) -> None:
        """time_zone: the IANA zone guards read times in (None: registry.sitefile.site_time_zone's fallback)."""
        self.factory = factory
        self.time_zone = time_zone or site_time_zone()
        self.bus = bus
        self.recorder = Recorder(
            factory, log_dir, site=site, on_db_health=self._db_health, on_alarm=self._alarm, consumers=record_consumers
        )
        self.alarms_book = AlarmBook(
            self.recorder,
            bus,
            frames_dir=log_dir.parent / "frames",
            escalate_after_s=escalate_after_s,
            **({"clock": clock} if clock else {}),
        )
        with factory() as session:
            model = site_model(session)
            names = _names(session)
            wiring = _wiring(session)
            self._changes_seen = changes.latest(session)  # the register change the snapshot reflects
            self._device_kinds = {d.name: d.kind for d in session.execute(select(Device)).scalars()}
        snapshot, config = build_snapshot(model), config or EngineConfig()
        if backend == "numba":
            warm_up(snapshot, config)  # before any door depends on it
        self.engine = Engine(snapshot, config, backend=backend)
        kwargs = {"clock": clock} if clock else {}
        self.portals = PortalController(
            self.engine,
            wiring,
            names,
            bus,
            self.recorder,
            panels=panels,
            alarms=self.alarms_book,
            zone=ZoneInfo(self.time_zone),
            **kwargs,
        )
        self._health: dict[str, tuple[str, str]] = {name: ("unknown", "no report yet") for name in self._device_kinds}
        self._stop = threading.Event()
        self._poke = threading.Event()  # a change in this process: look now
        self._reload_due = False
        self._site_due = False  # the site's configuration changed: drivers to open or close after the reload
        # Set by whoever opens the drivers (custodian.wiring): called after a reload that changed the site's
        # configuration, and asked for a live device's identity and health.
        self.on_site_changed: Callable[[], None] | None = None
        self.prober: Callable[[str], DeviceProbe] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._watcher: threading.Thread | None = None
        self.stations: dict[str, DestructionStation] = {}
        self.sweeps: dict[str, Callable[[str], CountResult]] = {}  # venue -> sweep it as this user

    # ---- lifecycle ----
    def start(self) -> SiteRuntime:
        self.recorder.start()
        # records an earlier run accepted and the register did not take yet: compile again once delivered
        self._reload_due = self.recorder.backlog() > 0
        # The book starts from the register: an earlier run's alarms should be in it first.
        self.recorder.flush(5.0)
        with self.factory() as session:
            self.alarms_book.load(session, undelivered=self.recorder.backlog())
        for damage in self.recorder.damage:  # once the book has its ids from the register, one record each
            self._alarm("local_log_damaged", damage.describe())
        self._unsubscribe = changes.subscribe(self._changed_here)
        self.portals.start()
        self._watcher = threading.Thread(target=self._watch_register, name="register-watch", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> int:
        """Decide what is queued, deliver what is accepted, then stop. Returns how many accepted records stay
        in the local log because the register did not take them (the next start delivers them)."""
        self._stop.set()
        self._poke.set()
        self.portals.stop()
        left = self.recorder.stop(timeout_s=10.0)
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._watcher is not None:
            self._watcher.join(5)
        return left

    def submit(self, event: object) -> None:
        """Entry point for every driver's events (any thread)."""
        if isinstance(event, HealthEvent):
            self._health[event.device] = (str(event.health), event.reason)
        self.portals.submit(event)

    def reload(self, *, wait_s: float = 0.0) -> bool:
        """Recompile the register into the engine; False when it must be tried again later.

        The engine's own records (approval uses, item moves) must be in the register before its snapshot
        replaces the engine's state, or the swap would undo them (a used approval would open a door twice).
        So this waits up to `wait_s` for the recorder to deliver what it accepted, and gives up if the engine
        accepted more such records while the snapshot was being built."""
        accepted = self.recorder.effects_accepted
        if not self.recorder.flush(wait_s):
            return False
        with self.factory() as session:
            model = site_model(session)
            names = _names(session)
            wiring = _wiring(session)
            device_kinds = {d.name: d.kind for d in session.execute(select(Device)).scalars()}
        snapshot = build_snapshot(model)
        with self.portals.engine_lock:  # held by the controller from engine.advance to the records' accept
            if self.recorder.effects_accepted != accepted:
                return False
            self.engine.swap_snapshot(snapshot)
            self.portals.names = names
            self.portals.rewire(wiring)
            self._device_kinds = device_kinds
        return True

    def reconcile(self, venue_id: int, epcs: list[str]) -> InventoryResult:
        with self.portals.engine_lock:
            return self.engine.reconcile(venue_id, epcs)

    def _changed_here(self, signal: changes.RegisterChanged) -> None:
        if signal.origin != self.recorder.origin:
            self._poke.set()

    def _watch_register(self) -> None:
        while not self._stop.is_set():
            self._poke.wait(RELOAD_EVERY_S)
            self._poke.clear()
            if self._stop.is_set():
                return
            try:
                with self.factory() as session:
                    found = changes.since(session, self._changes_seen)
                if found:
                    self._changes_seen = found[-1].position
                    theirs = [c for c in found if c.origin != self.recorder.origin]
                    self._reload_due |= bool(theirs)
                    self._site_due |= any(changes.Topic.SITE in c.topics for c in theirs)
                if self._reload_due:
                    self._reload_due = not self.reload()
                if self._site_due and not self._reload_due and self.on_site_changed is not None:
                    self._site_due = False
                    self.on_site_changed()
            except Exception as exc:
                log.warning("register watch failed, keeping the current snapshot: %s", exc)
            try:
                self.alarms_book.escalate_due()
            except Exception:
                log.exception("alarm escalation failed")

    def _db_health(self, ok: bool, reason: str) -> None:
        now = time.time_ns() // 1000
        self.bus.publish(
            LiveKind.HEALTH,
            Severity.INFO if ok else Severity.CRITICAL,
            now,
            "database",
            "database reachable" if ok else "DATABASE UNAVAILABLE: decisions continue from the snapshot",
            (("reason", reason),),
        )
        if ok:
            self.alarms_book.clear("database_unavailable", "database", "the register database is reachable again")
        else:
            self.alarms_book.raise_alarm("database_unavailable", now, "database", Evidence(detail=reason))

    def _alarm(self, kind: str, detail: str) -> None:
        self.alarms_book.raise_alarm(kind, time.time_ns() // 1000, "recorder", Evidence(detail=detail))

    # ---- SiteControl ----
    def doors(self) -> list[DoorState]:
        return [replace(door, links=self._links(door.portal)) for door in self.portals.doors()]

    def _links(self, portal: str) -> str:
        """The worst health of a door's panel and readers; "unknown" until each has reported."""
        wiring = self.portals.by_code[portal]
        states = {self._health.get(name, ("unknown", ""))[0] for name in (wiring.panel, *wiring.readers) if name}
        return next((s for s in ("offline", "unknown", "degraded") if s in states), "online")

    def devices(self) -> list[DeviceState]:
        kinds_now, unknown = self._device_kinds, ("unknown", "no report yet")
        return [DeviceState(name, kinds_now[name], *self._health.get(name, unknown)) for name in sorted(kinds_now)]

    def probe(self, device: str) -> DeviceProbe:
        """Through whoever opened the drivers; without one (no devices opened here), the last health report.
        KeyError for a device the register does not have (asked there, not in the last snapshot)."""
        with self.factory() as session:
            kind = session.execute(select(Device.kind).where(Device.name == device)).scalar()
        if kind is None:
            raise KeyError(device)
        if self.prober is not None:
            return self.prober(device)
        health, reason = self._health.get(device, ("unknown", "no report yet"))
        return DeviceProbe(device, kind, health, "", f"last report: {reason}")

    def alarms(self, *, resolved: bool = False) -> list[AlarmView]:
        return self.alarms_book.alarms(resolved=resolved)

    def acknowledge(self, alarm_id: int, username: str, note: str = "") -> AlarmView:
        return self.alarms_book.acknowledge(alarm_id, username, note)

    def resolve(self, alarm_id: int, username: str, note: str) -> AlarmView:
        return self.alarms_book.resolve(alarm_id, username, note)

    def alarm_frame(self, alarm_id: int) -> Path | None:
        return self.alarms_book.frame_path(alarm_id)

    def procedure(self, kind: str) -> tuple[str, ...]:
        return self.alarms_book.procedure(kind)

    def set_procedure(self, kind: str, steps: list[str], username: str) -> tuple[str, ...]:
        """The site's own operating steps for an alarm kind, written to the register (journalled)."""
        with db.transaction(self.factory) as session:
            row = register_alarms.set_procedure(session, username, kind, steps)
            kept = tuple(json.loads(row.steps_json))
        self.alarms_book.set_procedure(kind, kept)
        return self.alarms_book.procedure(kind)

    def override(
        self, portal: str, username: str, password: str, reason: str, *, alarm_id: int | None = None
    ) -> OverrideOutcome:
        """Check the guard's password now, then queue the override to the engine and wait for its answer.
        The engine takes it only for the current, fresh block at that door (see tracking.engine)."""
        if portal not in self.portals.by_code:
            raise UnknownPortal(f"there is no door {portal} at this site")
        if not reason.strip():
            raise OverrideRefused("an override needs a written reason")
        try:
            with self.factory() as session:
                try:
                    guard = lookup.person(session, username)
                except NotFound:
                    guard = None
                ok = guard is not None and guard.status == "active" and check_password(guard.password_hash, password)
                guard_id = guard.id if guard is not None else 0
                is_guard = guard is not None and "guard" in guard.role_names
        except DBAPIError as exc:
            raise RegisterUnavailable(
                "your password cannot be checked while the register is unavailable, so no override can be taken"
            ) from exc
        if not ok:
            raise PasswordRefused("that password is not yours; the door stays shut")
        if not is_guard:
            raise OverrideRefused(f"{username} is not a guard; only a guard may override a block")
        answer = self.portals.request_override(portal, guard_id, username, reason.strip(), alarm_id)
        try:
            return answer.result(OVERRIDE_ANSWER_S)
        except TimeoutError:
            raise OverrideRefused("the door controller did not answer in time; the door stays shut") from None

    def forgive(self, person: str, username: str, reason: str) -> None:
        people.forgive(self.portals, person, username, reason)

    def place_on_intake(self, station: str, epc: str) -> None:
        found = self.stations.get(station)
        if found is None:
            raise KeyError(station)
        found.place_simulated(epc)

    def sweep(self, venue: str, actor: str) -> CountResult:
        found = self.sweeps.get(venue)
        if found is None:
            raise LookupError(f"no handheld reader is assigned to {venue}")
        return found(actor)

    def reimage_destruction(self, station: str, operator: str, witness: str) -> DestructionOutcome:
        found = self.stations.get(station)
        if found is None:
            raise KeyError(station)
        outcome = found.reimage(operator, witness)
        if outcome.destroyed:
            self._reload_after_destruction()
        return outcome

    def give_up_destruction(self, station: str, operator: str) -> DestructionOutcome:
        found = self.stations.get(station)
        if found is None:
            raise KeyError(station)
        return found.give_up(operator)

    def pending_verifications(self) -> list[PendingVerification]:
        return [p for s in self.stations.values() if (p := s.pending()) is not None]

    def run_destruction(
        self, station: str, item_keys: list[str], operator: str, witness: str
    ) -> list[DestructionOutcome]:
        found = self.stations.get(station)
        if found is None:
            raise KeyError(station)
        outcomes = found.run(item_keys, operator, witness)
        self._reload_after_destruction()
        return outcomes

    def _reload_after_destruction(self) -> None:
        # A destroyed tag must alarm from the next read on; if the engine is busy, the watcher retries.
        if not self.reload(wait_s=5.0):
            self._reload_due = True
            self._poke.set()

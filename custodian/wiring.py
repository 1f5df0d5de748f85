"""Wire a site together: the register's devices become drivers whose events feed the site runtime.

Devices are described by their kind (`firmware_bridge.kinds`): settings are parsed once, from the
register's `settings_json`, and each kind's backend opens its driver and, with `simulate=True`, starts a
simulator speaking its protocol on a pty or loopback port first: the same code path as real hardware,
only the endpoints differ. Drivers are placed by role: panels drive the doors, portal readers stream into
the portal controller, handhelds answer sweeps and destruction intakes, machines serve the stations.

The register's devices are followed while the site runs: when the site's configuration changes (an
administrator adds a device to a portal), `RunningSite.rewire_devices` opens drivers for the new devices,
starting their simulators first on a simulated site, and closes those of removed or changed ones. Machines
and stations are wired at start only: a destruction centre needs a restart to get a new machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers import inventory
from controllers.alarms import ESCALATE_AFTER_S
from controllers.bus import LiveBus
from controllers.control import DeviceProbe
from controllers.destruction import DestructionStation, StationConfig
from controllers.portal import PeopleCount
from controllers.site import SiteRuntime
from firmware_bridge.errors import BridgeError
from firmware_bridge.kinds import Device, Role, parse_device
from firmware_bridge.modbus.driver import ModbusDevice
from firmware_bridge.osdp.driver import DEFAULT_STALE_WINDOW_S, OsdpLine
from firmware_bridge.osdp.vocabulary import LedColor, LedPattern
from firmware_bridge.people_counter_mqtt import MqttPeopleCounter
from firmware_bridge.rfid.mercury_simulator import FieldTag, MercurySimulator
from firmware_bridge.rfid.reader import TagReader
from firmware_bridge.site import (
    OpenContext,
    SimulationOptions,
    SimulatorHandle,
    open_drivers,
    start_simulators,
)
from firmware_bridge.site import probe as probe_devices
from registry.models import Device as DeviceRecord
from registry.models import Venue
from registry.services.inventory import CountResult
from tracking.model import EngineConfig
from vision import particles, segmentation, synthetic
from vision.shred_levels import find_level

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 3.0


def _parsed(d: DeviceRecord) -> Device[Any]:
    return parse_device(
        d.name,
        d.kind,
        json.loads(d.settings_json),
        antennas=[a.number for a in d.antennas],
        portal=d.portal.code if d.portal else None,
        venue=d.venue.code if d.venue else None,
    )


def site_devices(factory: sessionmaker[Session]) -> list[Device[Any]]:
    """The register's devices, each one's settings parsed (and checked) by its kind."""
    with factory() as session:
        return [_parsed(d) for d in session.execute(select(DeviceRecord).order_by(DeviceRecord.name)).scalars()]


def _parsed_devices(factory: sessionmaker[Session]) -> tuple[list[Device[Any]], dict[str, tuple[str, str]]]:
    """The register's devices whose settings parse, and (kind, why) for those left out (a running site)."""
    found, refused = [], {}
    with factory() as session:
        for d in session.execute(select(DeviceRecord).order_by(DeviceRecord.name)).scalars():
            try:
                found.append(_parsed(d))
            except (BridgeError, ValueError) as exc:
                refused[d.name] = (d.kind, str(exc))
    return found, refused


@dataclass(frozen=True, slots=True)
class SimulatedIntake:
    """Demo: the destruction page puts an item's tag in the simulated intake reader's field (antenna 1)."""

    simulator: MercurySimulator

    def place(self, epc: str) -> None:
        self.simulator.place(FieldTag(epc, 1, -45))

    def remove(self, epc: str) -> None:
        self.simulator.remove(epc)


class PanelRouter:
    """One `DoorPanels` over several OSDP lines (the controller addresses panels by name)."""

    def __init__(self, lines: dict[str, OsdpLine]) -> None:
        self.lines = lines  # panel name -> its line

    def pulse_strike(self, panel: str, seconds: float) -> None:
        self.lines[panel].pulse_strike(panel, seconds)

    def set_strike(self, panel: str, released: bool) -> None:
        self.lines[panel].set_strike(panel, released)

    def set_led(self, panel: str, color: LedColor, pattern: LedPattern = LedPattern.STEADY) -> None:
        self.lines[panel].set_led(panel, color, pattern)

    def buzz(self, panel: str, *, on_s: float = 0.2, off_s: float = 0.2, repeats: int = 1) -> None:
        self.lines[panel].buzz(panel, on_s=on_s, off_s=off_s, repeats=repeats)


TrayLot = Literal["compliant", "oversized", "touching"]
TOUCHING_SEED = 2  # a tray of this seed shows its touching pieces end to side (the analysis: cannot_verify)


@dataclass
class SimulatedOutputTray:
    """The output tray of a simulated station, drawn by `vision.synthetic`: each cycle drops a lot of particles
    well inside the level, or (asked for by the demo or a test, for the next lot only) one with an oversized
    strip, or one with pieces touching end to side. The same lot photographed again (`frame` > 1) lies as the
    operator left it when they asked for another image: touching pieces spread apart, nothing else moved."""

    next_lot: TrayLot = "compliant"
    _lot: tuple[TrayLot, int] = ("compliant", 0)

    def photograph(self, level: str, *, frame: int = 1) -> np.ndarray:
        if frame == 1:
            self._lot = (self.next_lot, TOUCHING_SEED if self.next_lot == "touching" else int(time.time()))
            self.next_lot = "compliant"
        kind, seed = self._lot
        spec = find_level(level)
        area = spec.max_area_mm2 if spec and spec.max_area_mm2 else 10.0
        limit_width = spec.max_width_mm if spec and spec.max_width_mm else None
        if kind == "touching":
            # Strips, so that two meeting end to side are over the level's area together, within it apart.
            width = 0.6 * limit_width if limit_width else 0.3 * area**0.5
            length = 0.6 * area / width
        else:
            width = 0.6 * (limit_width or area**0.5)
            length = min(3 * width, 0.5 * area / width)
        return synthetic.shred_tray(
            size_px=(2400, 1800),
            px_per_mm=15.0,
            particle_mm=(width, length),
            count=300,
            oversized_mm=[(8.0, 30.0)] if kind == "oversized" else [],
            t_pairs=2 if kind == "touching" else 0,
            spread=frame > 1,
            seed=seed,
        ).image


@dataclass
class RunningSite:
    runtime: SiteRuntime
    bus: LiveBus
    lines: dict[str, OsdpLine] = field(default_factory=dict)  # panel name -> its line
    readers: dict[str, TagReader] = field(default_factory=dict)  # portal readers, streaming
    handhelds: dict[str, TagReader] = field(default_factory=dict)  # readers read on demand
    handheld_venue: dict[str, str] = field(default_factory=dict)  # handheld reader -> venue it sweeps
    machines: dict[str, ModbusDevice] = field(default_factory=dict)
    people_sensors: dict[str, MqttPeopleCounter] = field(default_factory=dict)  # portal people counters over MQTT
    stations: dict[str, DestructionStation] = field(default_factory=dict)
    sims: SimulatorHandle | None = None
    output_trays: dict[str, SimulatedOutputTray] = field(default_factory=dict)  # a simulated site's stations
    devices: list[Device[Any]] = field(default_factory=list)
    added_sims: dict[str, SimulatorHandle] = field(default_factory=dict)  # simulators of devices added live
    not_opened: dict[str, tuple[str, str]] = field(default_factory=dict)  # device -> (kind, why it stays closed)
    _rewiring: threading.Lock = field(default_factory=threading.Lock)
    _stopped: bool = False

    def stop(self) -> None:
        """Stop reading devices, decide and persist what is queued, then close everything."""
        with self._rewiring:
            self._stopped = True  # a register change arriving now opens nothing
        for reader in self.readers.values():
            reader.stop()
        for sensor in self.people_sensors.values():
            sensor.stop()
        for line in set(self.lines.values()):
            line.stop()
        self.runtime.stop()
        for machine in self.machines.values():
            machine.close()
        for handheld in self.handhelds.values():
            handheld.stop()
        if self.sims is not None:
            self.sims.stop()
        for handle in self.added_sims.values():
            handle.stop()

    # ---- following the register ----
    def rewire_devices(self) -> None:
        """Open drivers for devices the register gained, close those it lost or changed (the runtime calls
        this after a reload that changed the site's configuration). A device whose settings cannot be used
        or opened is left closed, with the reason its probe reports; the others still come online, and it is
        tried again at the next change."""
        with self._rewiring:
            if self._stopped:
                return
            parsed, self.not_opened = _parsed_devices(self.runtime.factory)
            wanted = {d.name: d for d in parsed}
            current = {d.name: d for d in self.devices}
            gone = {name for name, d in current.items() if wanted.get(name) != d}
            for name in sorted(gone):
                gone |= self._close(name)  # panels sharing a line with a closed one reopen with it
            new = [d for name, d in wanted.items() if name in gone or name not in current]
            opened = self._open_live(new) if new else set()
            kept = {name for name in current if name not in gone}
            self.devices = [d for name, d in wanted.items() if name in opened or name in kept]
            for name, (kind, why) in self.not_opened.items():
                log.warning("device %s (%s) left closed: %s", name, kind, why)

    def _close(self, name: str) -> set[str]:
        """Stop a device's driver (and a simulator started for it live); the other panels of its line."""
        sharing: set[str] = set()
        line = self.lines.pop(name, None)
        if line is not None:
            sharing = {n for n, other in self.lines.items() if other is line}
            for n in sharing:
                del self.lines[n]
            line.stop()
        for table in (self.readers, self.handhelds):
            reader = table.pop(name, None)
            if reader is not None:
                reader.stop()
        self.handheld_venue.pop(name, None)
        handle = self.added_sims.pop(name, None)
        if handle is not None:
            handle.stop()
        return sharing

    def _open_live(self, devices: list[Device[Any]]) -> set[str]:
        """Drivers (after simulators, on a simulated site) for devices added while running; the names opened."""
        endpoints = dict(self.sims.endpoints) if self.sims is not None else {}
        opened: set[str] = set()
        for device in devices:
            try:
                if self.sims is not None:
                    handle = start_simulators([device], SimulationOptions())
                    self.added_sims[device.name] = handle
                    endpoints.update(handle.endpoints)
                drivers = open_drivers([device], OpenContext(self.runtime.submit, endpoints))
            except (BridgeError, OSError) as exc:
                self.not_opened[device.name] = (device.kind, str(exc))
                handle = self.added_sims.pop(device.name, None)
                if handle is not None:
                    handle.stop()
                continue
            _place(self, [device], drivers)
            driver = drivers.get(device.name)
            streaming = device.name in self.lines or device.name in self.readers  # handhelds read on demand
            if streaming and isinstance(driver, OsdpLine | TagReader):
                driver.start()
            opened.add(device.name)
        return opened

    def probe(self, name: str) -> DeviceProbe:
        """Identity and health of a device, asked through its running driver; a device with no driver
        running is probed afresh (a camera has none: its last report stands)."""
        device = next((d for d in self.devices if d.name == name), None)
        if device is None:
            if name in self.not_opened:
                kind, why = self.not_opened[name]
                return DeviceProbe(name, kind, "offline", "", f"not opened on this site: {why}")
            raise KeyError(name)
        line = self.lines.get(name)
        reader = self.readers.get(name) or self.handhelds.get(name)
        machine = self.machines.get(name)
        identity = ""
        if line is not None:
            health, reason = str(line.health(name)), line.health_reason(name)
            with contextlib.suppress(BridgeError):
                ident = line.identity(name)
                identity = (
                    f"OSDP vendor {ident.vendor_code:06X} model {ident.model} "
                    f"serial {ident.serial_number} firmware {ident.firmware_version:06X}"
                )
            return DeviceProbe(name, device.kind, health, identity, reason)
        if reader is not None or machine is not None:
            driver = reader if reader is not None else machine
            assert driver is not None
            try:
                identity = str(driver.identify())
            except BridgeError as exc:
                return DeviceProbe(name, device.kind, "offline", "", str(exc))
            return DeviceProbe(name, device.kind, str(driver.health.health), identity, driver.health.reason)
        [result] = probe_devices([device], timeout_s=PROBE_TIMEOUT_S) or [None]
        if result is None or result.health is None:
            state = next((s for s in self.runtime.devices() if s.name == name), None)
            health, reason = (state.health, state.reason) if state else ("unknown", "no report yet")
            return DeviceProbe(name, device.kind, health, "", f"no driver to ask; last report: {reason}")
        return DeviceProbe(name, device.kind, str(result.health), result.identity, result.detail)

    def wait_ready(self, timeout_s: float = 15.0) -> bool:
        """Until every panel and portal reader reports online (panels after Secure Channel is up) and every
        portal reader has reported an inventory round (before that a door stays shut to the cap)."""
        watched = {d.name for d in self.devices if d.description.role in (Role.PANEL, Role.PORTAL_READER)}
        readers = {d.name for d in self.devices if d.description.role == Role.PORTAL_READER}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = {d.name: d.health for d in self.runtime.devices() if d.name in watched}
            panels_secure = self.sims is None or all(p.secure for p in self.sims.panels.values())
            rounds = readers <= self.runtime.portals.readers_reporting_rounds()
            if panels_secure and rounds and all(h == "online" for h in states.values()):
                # A card read within the stale window of a panel coming online counts as replayed.
                time.sleep(DEFAULT_STALE_WINDOW_S)
                return True
            time.sleep(0.05)
        return False

    def sweep(self, venue: str, actor: str) -> CountResult:
        """Inventory a venue with its handheld reader and record the count with its discrepancies."""
        reader = next((self.handhelds[n] for n, v in self.handheld_venue.items() if v == venue), None)
        if reader is None:
            raise LookupError(f"no handheld reader is assigned to {venue}")
        return inventory.sweep(
            self.runtime.reconcile,
            self.runtime.factory,
            self.bus,
            venue_code=venue,
            epcs=reader.inventory().epc_hex(),
            actor=actor,
            method="handheld",
            alarms=self.runtime.alarms_book,
        )

    def people_count(self, camera: str, count: int, frame_png: bytes | None = None) -> None:
        self.runtime.submit(PeopleCount(camera, count, time.time_ns() // 1000, frame_png))


def start_site(
    factory: sessionmaker[Session],
    bus: LiveBus,
    state_dir: Path,
    *,
    simulate: bool,
    backend: str = "numba",
    record_consumers: tuple[str, ...] = (),
    config: EngineConfig | None = None,
    escalate_after_s: float = ESCALATE_AFTER_S,
    time_zone: str | None = None,
) -> RunningSite:
    """record_consumers: readers of the recorder's local log besides the register (an edge's shipper).
    time_zone: the site's (registry.sitefile.site_time_zone)."""
    devices = site_devices(factory)
    if any(d.description.role == Role.MACHINE for d in devices):
        _warm_particle_check()  # before any device line needs the interpreter
    sims = start_simulators(devices, SimulationOptions()) if simulate else None
    lines: dict[str, OsdpLine] = {}
    router = PanelRouter(lines)
    try:
        runtime = SiteRuntime(
            factory,
            bus,
            state_dir / "spool",
            backend=backend,
            panels=router,  # type: ignore[arg-type]
            record_consumers=record_consumers,
            config=config,
            escalate_after_s=escalate_after_s,
            time_zone=time_zone,
        )
    except BaseException:
        if sims is not None:
            sims.stop()
        raise
    site = RunningSite(runtime, bus, lines=lines, sims=sims, devices=devices)
    runtime.on_site_changed = site.rewire_devices
    runtime.prober = site.probe
    try:
        runtime.start()
        drivers = open_drivers(devices, OpenContext(runtime.submit, sims.endpoints if sims else {}))
        _place(site, devices, drivers)
        for line in set(lines.values()):
            line.start()
        for reader in site.readers.values():
            reader.start()
        for sensor in site.people_sensors.values():
            sensor.start()
        _stations(site, factory, state_dir, devices)
        # The API names a station by its venue or by any machine in it.
        runtime.stations = {
            **site.stations,
            **{d.name: site.stations[d.venue] for d in devices if d.venue in site.stations and d.name in site.machines},
        }
        runtime.sweeps = {venue: partial(site.sweep, venue) for venue in site.handheld_venue.values()}
    except BaseException:
        site.stop()
        raise
    return site


def _place(site: RunningSite, devices: list[Device[Any]], drivers: dict[str, object]) -> None:
    """Each driver where its role puts it."""
    for device in devices:
        driver = drivers.get(device.name)
        role = device.description.role
        if isinstance(driver, OsdpLine) and role is Role.PANEL:
            site.lines[device.name] = driver
        elif isinstance(driver, TagReader) and role is Role.PORTAL_READER:
            site.readers[device.name] = driver
        elif isinstance(driver, TagReader) and role is Role.HANDHELD:
            site.handhelds[device.name] = driver
            if device.venue:
                site.handheld_venue[device.name] = device.venue
        elif isinstance(driver, ModbusDevice) and role is Role.MACHINE:
            site.machines[device.name] = driver
        elif isinstance(driver, MqttPeopleCounter) and role is Role.CAMERA:
            site.people_sensors[device.name] = driver


@cache
def _warm_particle_check() -> None:
    """Compile (or load from Numba's cache) the particle check's kernels on a small tray, once per process.
    On a first run after an install the compiler holds the interpreter for tens of seconds; during a
    destruction that starved the panel lines until libosdp dropped the panels."""
    tray = synthetic.shred_tray(size_px=(1400, 1000), px_per_mm=6.0, particle_mm=(2.0, 12.0), count=30, seed=1)
    particles.analyse(tray.image, "P-2")
    # A bent piece is measured along its medial axis; the small tray need not hold one.
    bent = np.zeros((40, 40), np.uint8)
    bent[5:35, 5:12] = bent[28:35, 5:35] = 1
    segmentation.medial_axis(bent)


def _stations(site: RunningSite, factory: sessionmaker[Session], state_dir: Path, devices: list[Device[Any]]) -> None:
    """One destruction station per destruction venue that has machines; its intake is the handheld reader there."""
    with factory() as session:
        centres = [v.code for v in session.execute(select(Venue).where(Venue.destruction.is_(True))).scalars()]
    for centre in centres:
        here = [d for d in devices if d.venue == centre]
        shredder = next((site.machines[d.name] for d in here if d.kind == "modbus_shredder"), None)
        degausser = next((site.machines[d.name] for d in here if d.kind == "modbus_degausser"), None)
        intake_name = next((d.name for d in here if d.name in site.handhelds), None)
        intake = site.handhelds.get(intake_name) if intake_name else None
        intake_sim = site.sims.mercury.get(intake_name) if site.sims is not None and intake_name else None
        if shredder is None and degausser is None:
            continue
        tray = site.output_trays[centre] = SimulatedOutputTray()

        def read_intake(reader: TagReader | None = intake) -> set[str]:
            return set(reader.inventory().epc_hex()) if reader is not None else set()

        config = StationConfig(
            centre, "Example Institute", centre, state_dir / "certificates", shredder=shredder, degausser=degausser
        )
        site.stations[centre] = DestructionStation(
            config,
            factory,
            site.bus,
            intake=read_intake,
            camera=tray.photograph if site.sims is not None else None,
            analyse=particles.analyse,
            analyse_lot=particles.judge_frames,
            simulated_intake=SimulatedIntake(intake_sim) if intake_sim is not None else None,
        )

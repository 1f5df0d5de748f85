"""Wire a site together: the register's devices become drivers whose events feed the site runtime.

With `simulate=True` every device gets a simulator speaking its protocol on a pty or loopback port first
(OSDP panels, LLRP readers, Mercury readers, Modbus machines), and the drivers are pointed at them: the
same code path as real hardware, only the endpoints differ.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers import inventory
from controllers.bus import LiveBus
from controllers.destruction import DestructionStation, StationConfig
from controllers.portal import PeopleCount
from controllers.site import SiteRuntime
from firmware_bridge.modbus.driver import ModbusDevice
from firmware_bridge.modbus.model import DegausserModel
from firmware_bridge.modbus.profile import Profile, load_profile
from firmware_bridge.modbus.simulator import ModbusSimulator
from firmware_bridge.osdp.driver import DEFAULT_STALE_WINDOW_S, OsdpLine, PanelConfig
from firmware_bridge.osdp.simulator import PanelBus, PanelSimulator
from firmware_bridge.osdp.vocabulary import LedColor, LedPattern
from firmware_bridge.rfid.llrp_reader import LlrpReader
from firmware_bridge.rfid.llrp_simulator import LlrpSimulator
from firmware_bridge.rfid.mercury_reader import MercuryReader
from firmware_bridge.rfid.mercury_simulator import MercurySimulator
from registry.models import Device, Venue
from registry.services.inventory import CountResult
from vision import particles, synthetic
from vision.shred_levels import find_level

SIMULATED_DEGAUSSER_OE = 20000  # an evaluated HDD degausser class machine


@dataclass(frozen=True, slots=True)
class DeviceRow:
    name: str
    kind: str
    portal: str | None
    venue: str | None
    settings: dict[str, object]
    antennas: tuple[int, ...]

    @property
    def address(self) -> int:
        """Bus address (OSDP) or unit id (Modbus)."""
        return int(str(self.settings.get("address", 1)))

    def profile(self) -> Profile:
        """The Modbus device profile the site file names, or the generic one for the kind."""
        return load_profile(str(self.settings.get("profile", self.kind.removeprefix("modbus_") + "_generic")))


def device_rows(factory: sessionmaker[Session]) -> list[DeviceRow]:
    with factory() as session:
        return [
            DeviceRow(
                d.name,
                d.kind,
                d.portal.code if d.portal else None,
                d.venue.code if d.venue else None,
                json.loads(d.settings_json),
                tuple(a.number for a in d.antennas),
            )
            for d in session.execute(select(Device).order_by(Device.name)).scalars()
        ]


def panel_key(row: DeviceRow, simulate: bool) -> bytes:
    """The panel's Secure Channel key from the variable its `scbk_env` names; a fresh one for simulations."""
    variable = str(row.settings.get("scbk_env", ""))
    value = os.environ.get(variable) if variable else None
    if value:
        key = bytes.fromhex(value)
        if len(key) != 16:
            raise ValueError(f"{variable} must hold 32 hex digits")
        return key
    if simulate:
        return secrets.token_bytes(16)
    raise ValueError(f"{row.name}: set {variable or 'scbk_env'} to the panel's Secure Channel key")


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


@dataclass
class Simulators:
    panel_lines: dict[str, PanelBus] = field(default_factory=dict)
    panels: dict[str, PanelSimulator] = field(default_factory=dict)
    llrp: dict[str, LlrpSimulator] = field(default_factory=dict)
    mercury: dict[str, MercurySimulator] = field(default_factory=dict)
    machines: dict[str, ModbusSimulator] = field(default_factory=dict)

    def stop(self) -> None:
        for line in self.panel_lines.values():
            line.close()
        for sim in self.llrp.values():
            sim.stop()
        for msim in self.mercury.values():
            msim.stop()
        for machine in self.machines.values():
            machine.close()


@dataclass
class RunningSite:
    runtime: SiteRuntime
    bus: LiveBus
    lines: dict[str, OsdpLine] = field(default_factory=dict)
    readers: dict[str, LlrpReader] = field(default_factory=dict)
    handhelds: dict[str, MercuryReader] = field(default_factory=dict)
    handheld_venue: dict[str, str] = field(default_factory=dict)  # handheld reader -> venue it sweeps
    machines: dict[str, ModbusDevice] = field(default_factory=dict)
    stations: dict[str, DestructionStation] = field(default_factory=dict)
    sims: Simulators | None = None
    output_trays: dict[str, bool] = field(default_factory=dict)  # station -> next tray has an oversized strip

    def stop(self) -> None:
        """Stop reading devices, decide and persist what is queued, then close everything."""
        for reader in self.readers.values():
            reader.stop()
        for line in set(self.lines.values()):
            line.stop()
        self.runtime.stop()
        for machine in self.machines.values():
            machine.close()
        for handheld in self.handhelds.values():
            handheld.close()
        if self.sims is not None:
            self.sims.stop()

    def wait_ready(self, timeout_s: float = 15.0) -> bool:
        """Until every panel and portal reader reports online (panels after Secure Channel is up)."""
        watched = {d.name for d in self.runtime.devices() if d.kind in ("osdp_panel", "llrp_reader")}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = {d.name: d.health for d in self.runtime.devices() if d.name in watched}
            panels_secure = self.sims is None or all(p.secure for p in self.sims.panels.values())
            if panels_secure and all(h == "online" for h in states.values()):
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
        epcs = [t.epc for t in reader.inventory()]
        return inventory.sweep(
            self.runtime.reconcile,
            self.runtime.factory,
            self.bus,
            venue_code=venue,
            epcs=epcs,
            actor=actor,
            method="handheld",
        )

    def people_count(self, camera: str, count: int, frame_png: bytes | None = None) -> None:
        self.runtime.submit(PeopleCount(camera, count, time.time_ns() // 1000, frame_png))


def _start_simulators(rows: list[DeviceRow], keys: dict[str, bytes]) -> tuple[Simulators, dict[str, str]]:
    sims = Simulators()
    endpoints: dict[str, str] = {}
    try:
        for row in rows:
            if row.kind == "osdp_panel":
                panel = PanelSimulator(row.address, keys[row.name])
                line = PanelBus([panel]).start()
                sims.panels[row.name], sims.panel_lines[row.name] = panel, line
                endpoints[row.name] = line.path
            elif row.kind == "llrp_reader":
                sims.llrp[row.name] = LlrpSimulator(antennas=max(row.antennas or (4,))).start()
                endpoints[row.name] = f"127.0.0.1:{sims.llrp[row.name].port}"
            elif row.kind == "mercury_reader":
                sims.mercury[row.name] = MercurySimulator().start()
                endpoints[row.name] = sims.mercury[row.name].path
            elif row.kind in ("modbus_shredder", "modbus_degausser"):
                profile = row.profile()
                model = DegausserModel(profile, 0.3, SIMULATED_DEGAUSSER_OE) if row.kind == "modbus_degausser" else None
                transport = "rtu" if row.settings.get("transport") == "pty" else "tcp"
                machine = ModbusSimulator(profile, transport=transport, model=model, unit_id=row.address).power_on()
                sims.machines[row.name] = machine
                endpoints[row.name] = machine.url
    except BaseException:
        sims.stop()
        raise
    return sims, endpoints


def start_site(
    factory: sessionmaker[Session],
    bus: LiveBus,
    state_dir: Path,
    *,
    simulate: bool,
    backend: str = "numba",
) -> RunningSite:
    rows = device_rows(factory)
    keys = {r.name: panel_key(r, simulate) for r in rows if r.kind == "osdp_panel"}
    sims, endpoints = _start_simulators(rows, keys) if simulate else (None, {})
    lines: dict[str, OsdpLine] = {}
    router = PanelRouter(lines)
    runtime = SiteRuntime(factory, bus, state_dir / "spool", backend=backend, panels=router)  # type: ignore[arg-type]
    site = RunningSite(runtime, bus, lines=lines, sims=sims)
    try:
        runtime.start()
        for row in rows:
            _open_driver(site, row, endpoints, keys, lines)
        for line in set(lines.values()):
            line.start()
        for reader in site.readers.values():
            reader.start()
        _stations(site, factory, state_dir, rows)
        # The API names a station by its venue or by any machine in it.
        runtime.stations = {
            **site.stations,
            **{r.name: site.stations[r.venue] for r in rows if r.venue in site.stations and r.name in site.machines},
        }
    except BaseException:
        site.stop()
        raise
    return site


def _open_driver(
    site: RunningSite, row: DeviceRow, endpoints: dict[str, str], keys: dict[str, bytes], lines: dict[str, OsdpLine]
) -> None:
    sink = site.runtime.submit
    settings = row.settings
    if row.kind == "osdp_panel":
        url = endpoints.get(row.name) or str(settings.get("transport"))
        config = PanelConfig(row.name, row.address, keys[row.name])
        lines[row.name] = OsdpLine(url, [config], sink=sink)
    elif row.kind == "llrp_reader":
        host, port = (
            endpoints[row.name].rsplit(":", 1)
            if row.name in endpoints
            else (str(settings.get("host", "127.0.0.1")), str(settings.get("port", 5084)))
        )
        site.readers[row.name] = LlrpReader(
            row.name, host, int(port), antennas=row.antennas or (1, 2, 3, 4), keepalive_s=1.0, sink=sink
        )
    elif row.kind == "mercury_reader":
        url = endpoints.get(row.name) or str(settings.get("transport"))
        handheld = MercuryReader(row.name, url, reply_timeout_s=2.0, sink=sink)
        handheld.open()
        site.handhelds[row.name] = handheld
        if row.venue:
            site.handheld_venue[row.name] = row.venue
    elif row.kind in ("modbus_shredder", "modbus_degausser"):
        url = endpoints.get(row.name) or str(settings.get("transport"))
        profile = row.profile()
        site.machines[row.name] = ModbusDevice(
            row.name,
            url,
            profile,
            unit_id=row.address,
            on_health=sink,
        )


def _stations(site: RunningSite, factory: sessionmaker[Session], state_dir: Path, rows: list[DeviceRow]) -> None:
    """One destruction station per destruction venue that has machines; its intake is a Mercury module there."""
    with factory() as session:
        centres = [v.code for v in session.execute(select(Venue).where(Venue.destruction.is_(True))).scalars()]
    for centre in centres:
        here = [r for r in rows if r.venue == centre]
        shredder = next((site.machines[r.name] for r in here if r.kind == "modbus_shredder"), None)
        degausser = next((site.machines[r.name] for r in here if r.kind == "modbus_degausser"), None)
        intake = next((site.handhelds[r.name] for r in here if r.kind == "mercury_reader"), None)
        if shredder is None and degausser is None:
            continue
        site.output_trays[centre] = False

        def read_intake(reader: MercuryReader | None = intake) -> set[str]:
            return {t.epc for t in reader.inventory()} if reader is not None else set()

        def photograph(level: str, centre: str = centre) -> np.ndarray:
            # Simulated output camera: particles well inside the level, plus an oversized strip on request.
            spec = find_level(level)
            area = spec.max_area_mm2 if spec and spec.max_area_mm2 else 10.0
            width = 0.6 * (spec.max_width_mm if spec and spec.max_width_mm else area**0.5)
            length = min(3 * width, 0.5 * area / width)
            oversized = site.output_trays.get(centre, False)
            site.output_trays[centre] = False
            return synthetic.shred_tray(
                size_px=(2400, 1800),
                px_per_mm=15.0,
                particle_mm=(width, length),
                count=300,
                oversized_mm=[(8.0, 30.0)] if oversized else [],
                seed=int(time.time()),
            ).image

        config = StationConfig(
            centre, "Example Institute", centre, state_dir / "certificates", shredder=shredder, degausser=degausser
        )
        site.stations[centre] = DestructionStation(
            config,
            factory,
            site.bus,
            intake=read_intake,
            camera=photograph if site.sims is not None else None,
            analyse=particles.analyse,
        )

"""What `custodian devices simulate|probe` calls for the devices a site file names.

Each device is a TOML table, e.g. `{name="vault-door", kind="osdp_panel", transport="pty", address=1,
scbk="hex"}` or `{name="shredder-1", kind="modbus_shredder", transport="socket://127.0.0.1:1502",
profile="shredder_generic"}`. Handled here: `osdp_panel`, `modbus_shredder`, `modbus_degausser`; RFID
kinds are passed to `firmware_bridge.rfid.site` when that module is present.

`transport="pty"` means a simulated serial line found at a fixed path (`pty_link`), so a simulator
started by one process can be probed from another. OSDP panels with the same transport share one
line; for "pty" the optional `line` key groups them (default: one line per panel).
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

from firmware_bridge.errors import BridgeError
from firmware_bridge.events import Health

OSDP = "osdp_panel"
MODBUS_KINDS = {"modbus_shredder": "shredder_generic", "modbus_degausser": "degausser_generic"}
RFID_KINDS = {"llrp_reader", "mercury_reader"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

if TYPE_CHECKING:
    from firmware_bridge.modbus.profile import Profile
    from firmware_bridge.modbus.simulator import ModbusSimulator
    from firmware_bridge.osdp.simulator import PanelBus, PanelSimulator

DeviceSpec = Mapping[str, object]


class _RfidHandle(Protocol):
    def endpoints(self) -> dict[str, str]: ...
    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One device's probe result, whatever its kind."""

    name: str
    kind: str
    health: Health  # ONLINE / DEGRADED if it answered, OFFLINE with the reason otherwise
    identity: str  # what the device says it is; "" if it did not answer
    detail: str  # endpoint probed and health reason, or why the probe failed


def pty_link(kind: str, name: str) -> Path:
    """The fixed path of a simulated serial line (`kind` "osdp", "modbus" or "mercury")."""
    return Path(tempfile.gettempdir()) / f"custodian-{kind}-{name}"


@dataclass
class SimulatorHandle:
    """Every simulator started for a site; `stop()` (or leaving the `with`) shuts them all down."""

    panel_lines: dict[str, PanelBus] = field(default_factory=dict)  # line key -> its simulated line
    panels: dict[str, PanelSimulator] = field(default_factory=dict)  # device name -> door panel
    machines: dict[str, ModbusSimulator] = field(default_factory=dict)  # device name -> machine
    rfid: _RfidHandle | None = None  # firmware_bridge.rfid.site.SimulatorHandle, loaded lazily
    urls: dict[str, str] = field(default_factory=dict)  # device name -> what a driver opens

    def endpoints(self) -> dict[str, str]:
        rfid = self.rfid.endpoints() if self.rfid is not None else {}
        return {**self.urls, **rfid}

    def stop(self) -> None:
        for bus in self.panel_lines.values():
            bus.close()
        for sim in self.machines.values():
            sim.close()
        if self.rfid is not None:
            self.rfid.stop()
        self.panel_lines.clear()
        self.panels.clear()
        self.machines.clear()
        self.rfid = None

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _rfid_site() -> ModuleType | None:
    if importlib.util.find_spec("firmware_bridge.rfid.site") is None:
        return None
    return importlib.import_module("firmware_bridge.rfid.site")


def _line_key(dev: DeviceSpec) -> str:
    transport = str(dev.get("transport", "pty"))
    return f"pty:{dev.get('line', dev['name'])}" if transport == "pty" else transport


def _line_url(key: str) -> str:
    return str(pty_link("osdp", key.removeprefix("pty:"))) if key.startswith("pty:") else key


def _scbk(dev: DeviceSpec) -> bytes | None:
    value = dev.get("scbk")
    if value in (None, ""):
        return None
    key = bytes.fromhex(str(value))
    if len(key) != 16:
        raise ValueError(f"{dev['name']}: scbk must be 32 hex digits (16 bytes)")
    return key


def _int(dev: DeviceSpec, key: str, default: int) -> int:
    value = dev.get(key, default)
    if not isinstance(value, int | str):
        raise ValueError(f"{dev.get('name')}: {key} must be an integer")
    return int(value)


def _profile(dev: DeviceSpec) -> Profile:
    from firmware_bridge.modbus.profile import load_profile

    return load_profile(str(dev.get("profile", MODBUS_KINDS[str(dev["kind"])])))


def start_simulators(devices: Iterable[DeviceSpec]) -> SimulatorHandle:
    """Start a simulator for each device whose transport is "pty" or a loopback `socket://` URL.

    Devices on real ports are left alone (there is real hardware there). Raises ValueError for a
    device entry that cannot be simulated as written.
    """
    devices = list(devices)
    handle = SimulatorHandle()
    try:
        panels_by_line: dict[str, list[DeviceSpec]] = {}
        for dev in devices:
            kind, transport = str(dev.get("kind")), str(dev.get("transport", "pty"))
            if kind == OSDP and transport == "pty":
                panels_by_line.setdefault(_line_key(dev), []).append(dev)
            elif kind in MODBUS_KINDS:
                _start_machine(handle, dev, transport)
        for key, members in panels_by_line.items():
            _start_panel_line(handle, key, members)
        rfid = [d for d in devices if d.get("kind") in RFID_KINDS]
        if rfid and (rfid_site := _rfid_site()) is not None:
            handle.rfid = rfid_site.start_simulators(rfid)
    except BaseException:
        handle.stop()
        raise
    return handle


def _start_panel_line(handle: SimulatorHandle, key: str, members: list[DeviceSpec]) -> None:
    from firmware_bridge.osdp.simulator import PanelBus, PanelSimulator

    sims = []
    for dev in members:
        scbk = _scbk(dev)
        sim = PanelSimulator(_int(dev, "address", 1), scbk,
                             install_mode=bool(dev.get("install_mode", scbk is None)))
        handle.panels[str(dev["name"])] = sim
        sims.append(sim)
    bus = PanelBus(sims, link=Path(_line_url(key)))
    handle.panel_lines[key] = bus
    bus.start()
    for dev in members:
        handle.urls[str(dev["name"])] = bus.path


def _start_machine(handle: SimulatorHandle, dev: DeviceSpec, transport: str) -> None:
    from firmware_bridge.modbus.simulator import ModbusSimulator

    name = str(dev["name"])
    unit_id = _int(dev, "address", 1)
    if transport == "pty":
        sim = ModbusSimulator(_profile(dev), transport="rtu", link=pty_link("modbus", name), unit_id=unit_id)
    elif transport.startswith("socket://"):
        parsed = urlparse(transport)
        if parsed.hostname not in LOOPBACK:
            return  # a network device elsewhere: real hardware
        sim = ModbusSimulator(_profile(dev), transport="tcp", port=parsed.port or 502, unit_id=unit_id)
    else:
        return
    handle.machines[name] = sim
    sim.power_on()
    handle.urls[name] = sim.url


def probe(devices: Iterable[DeviceSpec], *, timeout_s: float = 3.0) -> list[ProbeResult]:
    """Connect to each device once; report identity and health. Never raises for a dead device."""
    devices = list(devices)
    results: dict[str, ProbeResult] = {}
    lines: dict[str, list[DeviceSpec]] = {}
    for dev in devices:
        kind = str(dev.get("kind"))
        if kind == OSDP:
            lines.setdefault(_line_key(dev), []).append(dev)
        elif kind in MODBUS_KINDS:
            results[str(dev["name"])] = _probe_machine(dev, timeout_s)
    for key, members in lines.items():
        for result in _probe_panel_line(key, members, timeout_s):
            results[result.name] = result
    rfid = [d for d in devices if d.get("kind") in RFID_KINDS]
    if rfid and (rfid_site := _rfid_site()) is not None:
        for result in rfid_site.probe(rfid, timeout_s=timeout_s):
            results[result.name] = result
    order = [str(d["name"]) for d in devices]
    return [results[name] for name in order if name in results]


def _probe_panel_line(key: str, members: list[DeviceSpec], timeout_s: float) -> list[ProbeResult]:
    from firmware_bridge.osdp.driver import OsdpLine, PanelConfig

    url = _line_url(key)
    try:
        configs = [PanelConfig(str(d["name"]), _int(d, "address", 1), _scbk(d),
                               install_mode=bool(d.get("install_mode", False))) for d in members]
    except ValueError as exc:
        return [ProbeResult(str(d["name"]), OSDP, Health.OFFLINE, "", f"{url}: {exc}") for d in members]
    results = []
    with OsdpLine(url, configs) as line:
        for config in configs:
            line.wait_online(config.name, timeout_s)
        for config in configs:
            health, reason = line.health(config.name), line.health_reason(config.name)
            identity = ""
            if health is not Health.OFFLINE:
                with contextlib.suppress(BridgeError):
                    ident = line.identity(config.name)
                    identity = (f"OSDP vendor {ident.vendor_code:06X} model {ident.model} "
                                f"serial {ident.serial_number} firmware {ident.firmware_version:06X}")
            results.append(ProbeResult(config.name, OSDP, health, identity, f"{url}: {reason}"))
    return results


def _probe_machine(dev: DeviceSpec, timeout_s: float) -> ProbeResult:
    from firmware_bridge.modbus.driver import ModbusDevice

    name, kind = str(dev["name"]), str(dev["kind"])
    transport = str(dev.get("transport", "pty"))
    url = str(pty_link("modbus", name)) if transport == "pty" else transport
    try:
        profile = _profile(dev)
        with ModbusDevice(name, url, profile, unit_id=_int(dev, "address", 1),
                          timeout_s=timeout_s) as device:
            info = device.identify()
            counter = device.read("cycle_counter")
    except (BridgeError, ValueError) as exc:
        return ProbeResult(name, kind, Health.OFFLINE, "", f"{url}: {exc}")
    identity = f"{info.vendor} {info.product_code} rev {info.revision}, profile {profile.name}"
    return ProbeResult(name, kind, Health.ONLINE, identity, f"{url}: cycle counter {counter}")

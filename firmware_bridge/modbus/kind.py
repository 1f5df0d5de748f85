"""The `modbus_shredder` and `modbus_degausser` device kinds: settings, simulator, probe and driver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from firmware_bridge.errors import BridgeError, NoIdentification
from firmware_bridge.events import Health
from firmware_bridge.kinds import Device, KindBackend, SettingProblem
from firmware_bridge.modbus.driver import ModbusDevice
from firmware_bridge.modbus.profile import Profile, load_profile
from firmware_bridge.modbus.simulator import ModbusSimulator, build_model
from firmware_bridge.site import (
    Endpoint,
    OpenContext,
    ProbeResult,
    Simulated,
    SimulationOptions,
    loopback_port,
    pty_link,
)


@dataclass(frozen=True, slots=True)
class ModbusSettings:
    transport: str = "pty"  # "pty" (simulated RTU line), a serial device path (RTU) or socket://host:port (TCP)
    address: int = 1  # unit id
    profile: str = ""  # register map: a shipped profile name or a .toml path (default: <machine>_generic)
    baudrate: int = 115200
    timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.address <= 247:
            raise SettingProblem("address", "must be a Modbus unit id, 1..247")
        if not 0 < self.timeout_s <= 30:
            raise SettingProblem("timeout_s", "must be above 0 and at most 30 s")


Machine = Device[ModbusSettings]


def profile_of(device: Machine) -> Profile:
    return load_profile(device.settings.profile or device.kind.removeprefix("modbus_") + "_generic")


def _url(device: Machine) -> str:
    transport = device.settings.transport
    return str(pty_link("modbus", device.name)) if transport == "pty" else transport


def _simulate(devices: Sequence[Machine], options: SimulationOptions) -> Simulated:
    out = Simulated()
    for device in devices:
        s = device.settings
        profile = profile_of(device)
        model = build_model(profile, options.cycle_s, options.degausser_coil_oe)
        if s.transport == "pty":
            link = pty_link("modbus", device.name) if options.fixed_endpoints else None
            sim = ModbusSimulator(profile, transport="rtu", link=link, unit_id=s.address, model=model,
                                  baudrate=s.baudrate)
        elif s.transport.startswith("socket://") and (port := loopback_port(s.transport)) is not None:
            sim = ModbusSimulator(profile, transport="tcp", port=port if options.fixed_endpoints else 0,
                                  unit_id=s.address, model=model)
        else:
            continue  # a real device path or a machine elsewhere on the network
        out.stops.append(sim.close)
        sim.power_on()
        out.devices[device.name] = sim
        out.endpoints[device.name] = Endpoint(sim.url)
    return out


def _open(devices: Sequence[Machine], context: OpenContext) -> dict[str, object]:
    drivers: dict[str, object] = {}
    for device in devices:
        found = context.endpoints.get(device.name)
        s = device.settings
        drivers[device.name] = ModbusDevice(device.name, found.url if found else _url(device), profile_of(device),
                                            unit_id=s.address, timeout_s=s.timeout_s, baudrate=s.baudrate,
                                            on_health=context.sink)
    return drivers


def _probe(devices: Sequence[Machine], timeout_s: float) -> list[ProbeResult]:
    results = []
    for device in devices:
        url = _url(device)
        try:
            profile = profile_of(device)
            with ModbusDevice(device.name, url, profile, unit_id=device.settings.address, timeout_s=timeout_s,
                              baudrate=device.settings.baudrate) as machine:
                try:
                    info = machine.identify()
                    identity = f"{info.vendor} {info.product_code} rev {info.revision}"
                except NoIdentification:
                    identity = "no identification objects"
                counter = machine.read("cycle_counter")
        except BridgeError as exc:
            results.append(ProbeResult(device.name, device.kind, Health.OFFLINE, "", f"{url}: {exc}"))
            continue
        results.append(ProbeResult(device.name, device.kind, Health.ONLINE, f"{identity}, profile {profile.name}",
                                   f"{url}: cycle counter {counter}"))
    return results


MODBUS_SHREDDER: KindBackend[ModbusSettings] = KindBackend(ModbusSettings, open=_open, simulate=_simulate,
                                                           probe=_probe)
MODBUS_DEGAUSSER: KindBackend[ModbusSettings] = MODBUS_SHREDDER

"""The seam between a site's devices and the bridge: start simulators, probe, open drivers, by kind.

Everything here dispatches through `firmware_bridge.kinds`: the one simulator starter serves the demo and
`custodian run --simulate` (ephemeral ports and unnamed ptys, fresh panel keys), `custodian devices
simulate` (the endpoints the site file names, so another process can probe them) and the tests.

Endpoints: `transport = "pty"` is a simulated serial line; with `SimulationOptions.fixed_endpoints` it is
found at a fixed path (`pty_link`), so a simulator started by one process can be probed from another.
Devices on real ports (a device path, a non-loopback host) are left alone: real hardware is there.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from firmware_bridge.events import DeviceEvent, Health
from firmware_bridge.kinds import KINDS, Device, kind

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a driver opens: a path, `host:port` or pyserial URL, and a secret a simulation shares."""

    url: str
    secret: bytes | None = None  # e.g. an OSDP panel's Secure Channel key, generated for a simulation

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True, slots=True)
class SimulationOptions:
    """How simulators are started (one starter, these knobs)."""

    fixed_endpoints: bool = False  # the site file's ports and fixed pty paths (False: ephemeral, no clashes)
    fresh_keys: bool = True  # a random Secure Channel key per simulated panel whose variable is unset
    traffic: bool = False  # background tags for a person watching `devices simulate`
    degausser_coil_oe: int = 20000  # simulated degaussers are evaluated HDD-class machines
    cycle_s: float = 0.3  # simulated machines' cycle time


@dataclass
class Simulated:
    """What a kind's simulators are: each device's endpoint and simulator object, and how to stop them."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    devices: dict[str, object] = field(default_factory=dict)  # device name -> the simulator a drill acts on
    stops: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OpenContext:
    """What opening drivers needs besides the devices: where events go and the simulators' endpoints."""

    sink: Callable[[DeviceEvent], None]
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One device's probe result, whatever its kind."""

    name: str
    kind: str
    health: Health | None  # ONLINE / DEGRADED if it answered, OFFLINE with the reason; None: not probed
    identity: str  # what the device says it is; "" if it did not answer
    detail: str  # endpoint probed and health reason, or why the probe failed


def pty_link(family: str, name: str) -> Path:
    """The fixed path of a simulated serial line (`family` "osdp", "modbus" or "mercury")."""
    return Path(tempfile.gettempdir()) / f"custodian-{family}-{name}"


def loopback_port(url: str) -> int | None:
    """The port of a `socket://` URL or `host:port` on this machine (None: elsewhere, or not a socket)."""
    parsed = urlparse(url if "://" in url else f"socket://{url}")
    if parsed.hostname not in LOOPBACK:
        return None
    return parsed.port or 0


def by_kind(devices: Iterable[Device[Any]]) -> dict[str, list[Device[Any]]]:
    groups: dict[str, list[Device[Any]]] = defaultdict(list)
    for device in devices:
        groups[device.kind].append(device)
    return groups


@dataclass
class SimulatorHandle:
    """Every simulator started for a site; `stop()` (or leaving the `with`) shuts them all down."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # device name -> what its driver opens
    devices: dict[str, object] = field(default_factory=dict)  # device name -> its simulator
    kinds: dict[str, str] = field(default_factory=dict)  # device name -> kind
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def of_family(self, family: str) -> dict[str, Any]:
        return {n: d for n, d in self.devices.items() if KINDS[self.kinds[n]].family == family}

    @property
    def panels(self) -> dict[str, Any]:  # name -> osdp.simulator.PanelSimulator
        return self.of_family("osdp")

    @property
    def llrp(self) -> dict[str, Any]:  # name -> rfid.llrp_simulator.LlrpSimulator
        return self.of_family("llrp")

    @property
    def mercury(self) -> dict[str, Any]:  # name -> rfid.mercury_simulator.MercurySimulator
        return self.of_family("mercury")

    @property
    def machines(self) -> dict[str, Any]:  # name -> modbus.simulator.ModbusSimulator
        return self.of_family("modbus")

    def add(self, kind_name: str, simulated: Simulated) -> None:
        self.endpoints.update(simulated.endpoints)
        self.devices.update(simulated.devices)
        self.kinds.update({name: kind_name for name in simulated.endpoints})
        self._stops += simulated.stops

    def stop(self) -> None:
        stops, self._stops = self._stops, []
        for stop in reversed(stops):
            stop()
        self.devices.clear()
        self.endpoints.clear()

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulators(devices: Sequence[Device[Any]], options: SimulationOptions | None = None) -> SimulatorHandle:
    """Start a simulator for each device whose endpoint can be simulated (pty, loopback port).

    Raises a BridgeError (SettingsError, BackendUnavailable, TransportError) or OSError for a device that
    cannot be simulated as written; whatever had started is stopped first.
    """
    options = options or SimulationOptions()
    handle = SimulatorHandle()
    try:
        for kind_name, group in by_kind(devices).items():
            backend = kind(kind_name).backend()
            if backend.simulate is not None:
                handle.add(kind_name, backend.simulate(group, options))
    except BaseException:
        handle.stop()
        raise
    return handle


def probe(devices: Sequence[Device[Any]], *, timeout_s: float = 3.0) -> list[ProbeResult]:
    """Connect to each device once; report identity and health. Never raises for a dead device."""
    results: dict[str, ProbeResult] = {}
    for kind_name, group in by_kind(devices).items():
        backend = kind(kind_name).backend()
        if backend.probe is None:
            for d in group:
                results[d.name] = ProbeResult(d.name, kind_name, None, "", "not probed: no driver in the bridge")
            continue
        for result in backend.probe(group, timeout_s):
            results[result.name] = result
    return [results[d.name] for d in devices if d.name in results]


def open_drivers(devices: Sequence[Device[Any]], context: OpenContext) -> dict[str, object]:
    """Each device's driver, constructed but not started (device name -> driver; shared lines repeat)."""
    drivers: dict[str, object] = {}
    for kind_name, group in by_kind(devices).items():
        backend = kind(kind_name).backend()
        if backend.open is not None:
            drivers.update(backend.open(group, context))
    return drivers

"""What `custodian devices simulate|probe` needs for RFID readers named in a site file.

Device entries are the site file's tables: `{name, kind="llrp_reader", host, port, antennas}` and
`{name, kind="mercury_reader", transport="pty" | "/dev/ttyUSB0" | pyserial URL}`. Other kinds are
ignored here (other firmware_bridge modules handle them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from firmware_bridge.errors import BridgeError
from firmware_bridge.events import Health
from firmware_bridge.rfid.llrp_reader import LlrpReader
from firmware_bridge.rfid.llrp_simulator import LlrpSimulator, WalkStep
from firmware_bridge.rfid.mercury_reader import MercuryReader
from firmware_bridge.rfid.mercury_simulator import FieldTag, MercurySimulator
from firmware_bridge.site import ProbeResult
from firmware_bridge.site import pty_link as common_pty_link

LLRP = "llrp_reader"
MERCURY = "mercury_reader"
DEMO_WALK_PERIOD_S = 10.0

DeviceSpec = Mapping[str, object]


def pty_link(name: str) -> Path:
    """Where a simulated Mercury module named `name` is found when its transport is "pty"."""
    return common_pty_link("mercury", name)


def demo_walk(antennas: Sequence[int]) -> list[WalkStep]:
    """Three tagged items carried through a portal: first the outer antennas, then the inner ones."""
    ants = list(antennas) or [1]
    outer, inner = ants[: max(1, len(ants) // 2)], ants[max(1, len(ants) // 2) :] or ants
    steps: list[WalkStep] = []
    for item in range(3):
        epc = f"30340242201D8840000000{item + 1:02X}"
        for k in range(6):
            side = outer if k < 3 else inner
            steps.append(WalkStep(1.0 + item * 0.15 + k * 0.4, epc, side[k % len(side)], -62 + 3 * min(k, 5 - k)))
    return steps


@dataclass
class SimulatorHandle:
    """The running RFID simulators; `stop()` shuts every one down."""

    llrp: dict[str, LlrpSimulator] = field(default_factory=dict)
    mercury: dict[str, MercurySimulator] = field(default_factory=dict)

    def endpoints(self) -> dict[str, str]:
        out = {name: f"{sim.host}:{sim.port}" for name, sim in self.llrp.items()}
        out |= {name: sim.path for name, sim in self.mercury.items()}
        return out

    def stop(self) -> None:
        for sim in self.llrp.values():
            sim.stop()
        for name, msim in self.mercury.items():
            msim.stop()
            pty_link(name).unlink(missing_ok=True)
        self.llrp.clear()
        self.mercury.clear()

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulators(devices: Iterable[DeviceSpec]) -> SimulatorHandle:
    """Start a simulator for every RFID reader in `devices`; Mercury readers only when transport="pty"."""
    handle = SimulatorHandle()
    try:
        for dev in devices:
            name, kind = str(dev["name"]), dev.get("kind")
            if kind == LLRP:
                antennas = _antennas(dev)
                sim = LlrpSimulator(demo_walk(antennas), host=str(dev.get("host", "127.0.0.1")),
                                    port=_int(dev.get("port", 5084)), antennas=max(antennas),
                                    repeat_walk_s=DEMO_WALK_PERIOD_S)
                handle.llrp[name] = sim.start()
            elif kind == MERCURY and dev.get("transport", "pty") == "pty":
                msim = MercurySimulator(link=pty_link(name)).start()
                for item in range(2):
                    msim.place(FieldTag(f"E28011700000020A{item + 1:08X}", 1, -58 - 4 * item))
                handle.mercury[name] = msim
    except BaseException:
        handle.stop()
        raise
    return handle


def probe(devices: Iterable[DeviceSpec], *, timeout_s: float = 2.0) -> list[ProbeResult]:
    """Connect to each RFID reader once and report what it says it is; never raises for a dead device."""
    results: list[ProbeResult] = []
    for dev in devices:
        name, kind = str(dev["name"]), str(dev.get("kind"))
        if kind == LLRP:
            host, port = str(dev.get("host", "127.0.0.1")), _int(dev.get("port", 5084))
            endpoint = f"{host}:{port}"
            try:
                caps = LlrpReader(name, host, port, reply_timeout_s=timeout_s).identify()
            except BridgeError as exc:
                results.append(ProbeResult(name, kind, Health.OFFLINE, "", f"{endpoint}: {exc}"))
                continue
            identity = f"LLRP vendor {caps.manufacturer} model {caps.model}, firmware {caps.firmware}, " \
                       f"{caps.antennas} antennas"
            results.append(ProbeResult(name, kind, Health.ONLINE, identity, endpoint))
        elif kind == MERCURY:
            transport = str(dev.get("transport", "pty"))
            url = str(pty_link(name)) if transport == "pty" else transport
            reader = MercuryReader(name, url, reply_timeout_s=timeout_s)
            try:
                version = reader.version()
                region = reader.get_region()
            except BridgeError as exc:
                results.append(ProbeResult(name, kind, Health.OFFLINE, "", f"{url}: {exc}"))
                continue
            finally:
                reader.close()
            identity = f"Mercury hardware {version.hardware}, firmware {version.firmware} " \
                       f"({version.firmware_date}), region {region.name}"
            results.append(ProbeResult(name, kind, Health.ONLINE, identity, url))
    return results


def _antennas(dev: DeviceSpec) -> list[int]:
    raw = dev.get("antennas", [1, 2, 3, 4])
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError(f"device {dev.get('name')}: antennas must be a non-empty list")
    return [_int(a) for a in raw]


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)

"""The RFID device kinds: `llrp_reader` (fixed portal readers), `mercury_reader` (Mercury modules read on
demand) and `mercury_portal` (a Mercury module streaming at a portal), their settings, simulators, probes
and drivers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from firmware_bridge.errors import BridgeError
from firmware_bridge.events import Health
from firmware_bridge.kinds import Device, KindBackend, SettingProblem
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_codec import RoundReporting
from firmware_bridge.rfid.llrp_reader import SEARCH_MODES, LlrpReader
from firmware_bridge.rfid.llrp_simulator import LlrpSimulator, WalkStep
from firmware_bridge.rfid.mercury_codec import Region
from firmware_bridge.rfid.mercury_reader import MercuryReader
from firmware_bridge.rfid.mercury_simulator import FieldTag, MercurySimulator
from firmware_bridge.rfid.reader import TagReader
from firmware_bridge.site import (
    Endpoint,
    OpenContext,
    ProbeResult,
    Simulated,
    SimulationOptions,
    loopback_port,
    pty_link,
)

DEMO_WALK_PERIOD_S = 10.0
SIMULATED_MAKER = {"impinj": llrp.IMPINJ_PEN, "zebra": llrp.ZEBRA_PEN}


@dataclass(frozen=True, slots=True)
class LlrpSettings:
    host: str = "127.0.0.1"
    port: int = 5084
    profile: Literal["auto", "generic", "impinj", "zebra"] = "auto"  # auto: by the maker the reader announces
    read_tid: bool = False  # read each tag's TID (clone detection): in the report (Impinj) or by AccessSpec
    session: int | None = None  # Gen2 session; default: the profile's portal setting
    search_mode: str | None = None  # Impinj search mode (dual_target, single_target, tag_focus, reader_selected)
    reader_mode: int | None = None  # the reader's RF mode identifier; default: the reader's own
    rounds: Literal["aispec_end", "duration", "none"] = "aispec_end"  # how round ends are reported
    round_ms: int = 25  # length of each antenna's AISpec when rounds = "duration"
    keepalive_ms: int = 1000

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingProblem("port", "must be a TCP port, 1..65535")
        if self.session is not None and not 0 <= self.session <= 3:
            raise SettingProblem("session", "must be a Gen2 session, 0..3")
        if self.search_mode is not None and self.search_mode not in SEARCH_MODES:
            raise SettingProblem("search_mode", f"must be one of {', '.join(SEARCH_MODES)}")
        if not 5 <= self.round_ms <= 10_000:
            raise SettingProblem("round_ms", "must be 5..10000 ms")


@dataclass(frozen=True, slots=True)
class MercurySettings:
    transport: str = "pty"  # "pty" (a simulated module), a serial device path or a pyserial URL
    baudrate: int = 115200
    region: str = "NA"  # regulatory region (NA, EU3, JP, ...)
    read_tid: bool = False
    read_timeout_ms: int = 100  # how long each READ_TAG_MULTIPLE searches
    reply_timeout_ms: int = 2000

    def __post_init__(self) -> None:
        if self.region not in Region.__members__:
            raise SettingProblem("region", f"must be one of {', '.join(Region.__members__)}")
        if not 10 <= self.read_timeout_ms <= 65_535:
            raise SettingProblem("read_timeout_ms", "must be 10..65535 ms")


LlrpDevice = Device[LlrpSettings]
MercuryDevice = Device[MercurySettings]


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


# ---------------------------------------------------------------------------------------------- LLRP


def _llrp_simulate(devices: Sequence[LlrpDevice], options: SimulationOptions) -> Simulated:
    out = Simulated()
    for device in devices:
        s = device.settings
        if loopback_port(f"{s.host}:{s.port}") is None:
            continue  # a reader elsewhere on the network
        antennas = device.antennas or (1, 2, 3, 4)
        sim = LlrpSimulator(demo_walk(antennas) if options.traffic else (), host=s.host,
                            port=s.port if options.fixed_endpoints else 0, antennas=max(antennas),
                            repeat_walk_s=DEMO_WALK_PERIOD_S if options.traffic else None,
                            manufacturer=SIMULATED_MAKER.get(s.profile, 0))
        sim.start()
        out.stops.append(sim.stop)
        out.devices[device.name] = sim
        out.endpoints[device.name] = Endpoint(sim.endpoint)
    return out


def llrp_driver(device: LlrpDevice, context: OpenContext | None = None, *, reply_timeout_s: float = 2.0) -> LlrpReader:
    s = device.settings
    found = context.endpoints.get(device.name) if context else None
    host, port = found.url.rsplit(":", 1) if found else (s.host, str(s.port))
    return LlrpReader(device.name, host, int(port), antennas=device.antennas or (1, 2, 3, 4), profile=s.profile,
                      read_tid=s.read_tid, session=s.session, search_mode=s.search_mode, reader_mode=s.reader_mode,
                      rounds=RoundReporting(s.rounds), round_ms=s.round_ms, keepalive_s=s.keepalive_ms / 1000,
                      reply_timeout_s=reply_timeout_s, sink=context.sink if context else None)


def _llrp_open(devices: Sequence[LlrpDevice], context: OpenContext) -> dict[str, object]:
    return {device.name: llrp_driver(device, context) for device in devices}


def _endpoint_text(reader: TagReader) -> str:
    if isinstance(reader, LlrpReader):
        return f"{reader.host}:{reader.port}"
    assert isinstance(reader, MercuryReader)
    return reader.url


def _probe_readers(devices: Sequence[Device[object]], readers: Sequence[TagReader]) -> list[ProbeResult]:
    results = []
    for device, reader in zip(devices, readers, strict=True):
        endpoint = _endpoint_text(reader)
        try:
            identity = reader.identify()
        except BridgeError as exc:
            results.append(ProbeResult(device.name, device.kind, Health.OFFLINE, "", f"{endpoint}: {exc}"))
            continue
        finally:
            reader.stop()
        results.append(ProbeResult(device.name, device.kind, Health.ONLINE, str(identity), endpoint))
    return results


def _llrp_probe(devices: Sequence[LlrpDevice], timeout_s: float) -> list[ProbeResult]:
    return _probe_readers(devices, [llrp_driver(d, reply_timeout_s=timeout_s) for d in devices])


# ---------------------------------------------------------------------------------------------- Mercury


def _mercury_url(device: MercuryDevice) -> str:
    transport = device.settings.transport
    return str(pty_link("mercury", device.name)) if transport == "pty" else transport


def _mercury_simulate(devices: Sequence[MercuryDevice], options: SimulationOptions) -> Simulated:
    out = Simulated()
    for device in devices:
        if device.settings.transport != "pty":
            continue  # a real module on a serial port
        antennas = device.antennas or (1,)
        sim = MercurySimulator(link=pty_link("mercury", device.name) if options.fixed_endpoints else None,
                               antennas=max(4, *antennas)).start()
        out.stops.append(sim.stop)
        if options.traffic:
            for item in range(2):
                sim.place(FieldTag(f"E28011700000020A{item + 1:08X}", antennas[0], -58 - 4 * item))
        out.devices[device.name] = sim
        out.endpoints[device.name] = Endpoint(sim.path)
    return out


def mercury_driver(device: MercuryDevice, context: OpenContext | None = None, *,
                   reply_timeout_s: float | None = None) -> MercuryReader:
    s = device.settings
    found = context.endpoints.get(device.name) if context else None
    return MercuryReader(device.name, found.url if found else _mercury_url(device), baudrate=s.baudrate,
                         region=Region[s.region], antennas=device.antennas or (1,), read_tid=s.read_tid,
                         read_timeout_ms=s.read_timeout_ms,
                         reply_timeout_s=reply_timeout_s or s.reply_timeout_ms / 1000,
                         sink=context.sink if context else None)


def _mercury_open(devices: Sequence[MercuryDevice], context: OpenContext) -> dict[str, object]:
    return {device.name: mercury_driver(device, context) for device in devices}


def _mercury_probe(devices: Sequence[MercuryDevice], timeout_s: float) -> list[ProbeResult]:
    return _probe_readers(devices, [mercury_driver(d, reply_timeout_s=timeout_s) for d in devices])


LLRP_READER: KindBackend[LlrpSettings] = KindBackend(LlrpSettings, open=_llrp_open, simulate=_llrp_simulate,
                                                     probe=_llrp_probe)
MERCURY_READER: KindBackend[MercurySettings] = KindBackend(MercurySettings, open=_mercury_open,
                                                           simulate=_mercury_simulate, probe=_mercury_probe)
# The same module and driver streaming at a portal: its role (PORTAL_READER) makes wiring start it.
MERCURY_PORTAL: KindBackend[MercurySettings] = MERCURY_READER

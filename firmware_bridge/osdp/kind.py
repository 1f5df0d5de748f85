"""The `osdp_panel` device kind: settings, simulator, probe and driver of OSDP door panels.

Panels on the same line share one RS-485 line (one `OsdpLine`, one simulated `PanelBus`): with
`transport = "pty"` the optional `line` setting groups them (default: one line per panel); panels with
the same serial transport share it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.errors import BridgeError, SettingsError
from firmware_bridge.events import Health
from firmware_bridge.kinds import Device, KindBackend, SettingProblem
from firmware_bridge.osdp.driver import OsdpLine, PanelConfig
from firmware_bridge.osdp.simulator import PanelBus, PanelSimulator
from firmware_bridge.site import Endpoint, OpenContext, ProbeResult, Simulated, SimulationOptions, pty_link


@dataclass(frozen=True, slots=True)
class OsdpSettings:
    transport: str = "pty"  # "pty" (a simulated line), a serial device path or a pyserial URL
    address: int = 1  # the panel's address on its line
    scbk_env: str = ""  # environment variable holding the panel's Secure Channel base key (32 hex digits)
    install_mode: bool = False  # provision the key to a factory-fresh panel (then configure without it)
    line: str = ""  # panels with the same line share one simulated RS-485 line
    strike_ms: int = 3000  # how long an allowed exit keeps the strike released
    baudrate: int = 115200

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 126:
            raise SettingProblem("address", "must be 0..126 (OSDP addresses; 127 is broadcast)")
        if not 100 <= self.strike_ms <= 60_000:
            raise SettingProblem("strike_ms", "must be 100..60000 ms")


Panel = Device[OsdpSettings]


def panel_key(device: Panel) -> bytes | None:
    """The Secure Channel key from the variable `scbk_env` names; None if that variable is unset."""
    variable = device.settings.scbk_env
    value = os.environ.get(variable) if variable else None
    if not value:
        return None
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != 16:
        raise SettingsError(device.name, "scbk_env", f"names {variable}, which must hold 32 hex digits (16 bytes)")
    return key


def _line_key(device: Panel) -> str:
    s = device.settings
    return f"pty:{s.line or device.name}" if s.transport == "pty" else s.transport


def _lines(devices: Sequence[Panel]) -> dict[str, list[Panel]]:
    lines: dict[str, list[Panel]] = defaultdict(list)
    for device in devices:
        lines[_line_key(device)].append(device)
    return lines


def _simulate(devices: Sequence[Panel], options: SimulationOptions) -> Simulated:
    out = Simulated()
    for key, members in _lines(devices).items():
        if not key.startswith("pty:"):
            continue  # a real line: real panels are on it
        sims = []
        secrets_of: dict[str, bytes | None] = {}
        for device in members:
            secret = panel_key(device)
            if secret is None and options.fresh_keys:
                secret = secrets.token_bytes(16)
            sim = PanelSimulator(device.settings.address, secret,
                                 install_mode=device.settings.install_mode or secret is None)
            out.devices[device.name] = sim
            secrets_of[device.name] = secret
            sims.append(sim)
        link = pty_link("osdp", key.removeprefix("pty:")) if options.fixed_endpoints else None
        bus = PanelBus(sims, link=link, baudrate=members[0].settings.baudrate).start()
        out.stops.append(bus.close)
        for device in members:
            out.endpoints[device.name] = Endpoint(bus.path, secrets_of[device.name])
    return out


def _url(key: str, members: Sequence[Panel], endpoints: dict[str, Endpoint] | None = None) -> str:
    found = endpoints.get(members[0].name) if endpoints else None
    if found is not None:
        return found.url
    return str(pty_link("osdp", key.removeprefix("pty:"))) if key.startswith("pty:") else key


def _open(devices: Sequence[Panel], context: OpenContext) -> dict[str, object]:
    drivers: dict[str, object] = {}
    for key, members in _lines(devices).items():
        configs = []
        for device in members:
            found = context.endpoints.get(device.name)
            secret = found.secret if found is not None and found.secret else panel_key(device)
            if secret is None and not device.settings.install_mode:
                raise SettingsError(device.name, "scbk_env", "must name a variable holding the panel's Secure "
                                    "Channel key (plain-text OSDP is refused)")
            configs.append(PanelConfig(device.name, device.settings.address, secret,
                                       install_mode=device.settings.install_mode))
        line = OsdpLine(_url(key, members, dict(context.endpoints)), configs, sink=context.sink,
                        baudrate=members[0].settings.baudrate)
        drivers.update({device.name: line for device in members})
    return drivers


def _probe(devices: Sequence[Panel], timeout_s: float) -> list[ProbeResult]:
    results = []
    for key, members in _lines(devices).items():
        url = _url(key, members)
        try:
            configs = [PanelConfig(d.name, d.settings.address, panel_key(d), install_mode=d.settings.install_mode)
                       for d in members]
        except BridgeError as exc:
            results += [ProbeResult(d.name, d.kind, Health.OFFLINE, "", f"{url}: {exc}") for d in members]
            continue
        if not Path(url).exists() and "://" not in url:
            results += [ProbeResult(d.name, d.kind, Health.OFFLINE, "", f"{url}: no such serial port")
                        for d in members]
            continue
        with OsdpLine(url, configs, baudrate=members[0].settings.baudrate) as line:
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
                results.append(ProbeResult(config.name, "osdp_panel", health, identity, f"{url}: {reason}"))
    return results


OSDP_PANEL: KindBackend[OsdpSettings] = KindBackend(OsdpSettings, open=_open, simulate=_simulate, probe=_probe)

"""The one simulator starter, probe and driver opener (`custodian devices simulate|probe`, wiring, tests)."""

from __future__ import annotations

import socket

import pytest

from firmware_bridge.events import Health
from firmware_bridge.kinds import device_from_table
from firmware_bridge.modbus.driver import ModbusDevice
from firmware_bridge.osdp.driver import OsdpLine
from firmware_bridge.rfid.llrp_reader import LlrpReader
from firmware_bridge.rfid.llrp_simulator import FieldTag
from firmware_bridge.rfid.mercury_reader import MercuryReader
from firmware_bridge.site import OpenContext, SimulationOptions, open_drivers, probe, pty_link, start_simulators
from tests.firmware_bridge.helpers import collect, rows, wait_for

KEY = "00112233445566778899AABBCCDDEEFF"
FIXED = SimulationOptions(fixed_endpoints=True, fresh_keys=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site(llrp_port: int, modbus_port: int) -> list:
    tables = [
        {"name": "t-vault-door", "kind": "osdp_panel", "transport": "pty", "line": "t-doors", "address": 1,
         "scbk_env": "T_SCBK"},
        {"name": "t-annex-door", "kind": "osdp_panel", "transport": "pty", "line": "t-doors", "address": 2,
         "scbk_env": "T_SCBK"},
        {"name": "t-shredder", "kind": "modbus_shredder", "transport": f"socket://127.0.0.1:{modbus_port}"},
        {"name": "t-degausser", "kind": "modbus_degausser", "transport": "pty", "address": 3},
        {"name": "t-portal", "kind": "llrp_reader", "port": llrp_port,
         "antennas": [{"number": 1, "side": "inside"}, {"number": 2, "side": "outside"}]},
        {"name": "t-hand", "kind": "mercury_reader", "transport": "pty"},
        {"name": "t-camera", "kind": "camera", "portal": "p", "source": "synthetic"},
    ]
    return [device_from_table(t) for t in tables]


def test_simulate_then_probe_a_site_as_two_processes_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SCBK", KEY)
    llrp_port, modbus_port = free_port(), free_port()
    devices = site(llrp_port, modbus_port)
    with start_simulators(devices, FIXED) as handle:
        endpoints = {name: str(e) for name, e in handle.endpoints.items()}
        assert endpoints["t-vault-door"] == endpoints["t-annex-door"] == str(pty_link("osdp", "t-doors"))
        assert endpoints["t-shredder"] == f"socket://127.0.0.1:{modbus_port}"
        assert endpoints["t-portal"] == f"127.0.0.1:{llrp_port}"
        assert endpoints["t-hand"] == str(pty_link("mercury", "t-hand"))
        assert "t-camera" not in endpoints  # counted by vision, nothing to simulate here
        assert set(handle.panels) == {"t-vault-door", "t-annex-door"} and set(handle.llrp) == {"t-portal"}
        results = {r.name: r for r in probe(devices)}
    assert list(results) == [d.name for d in devices]
    assert results.pop("t-camera").health is None
    assert all(r.health is Health.ONLINE for r in results.values()), results
    assert "serial 2" in results["t-annex-door"].identity
    # Each machine names itself, though both simulators share this process (pymodbus keeps one identity).
    assert results["t-shredder"].identity.startswith("Custodian simulator shredder rev 1.0")
    assert results["t-degausser"].identity.startswith("Custodian simulator degausser rev 1.0")
    assert "custodian-sim" in results["t-portal"].identity and "2 antennas" in results["t-portal"].identity
    assert "region NA" in results["t-hand"].identity
    assert not pty_link("osdp", "t-doors").exists() and not pty_link("mercury", "t-hand").exists()


def test_probe_of_absent_devices_reports_offline_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_BAD", "abcd")
    devices = [device_from_table(t) for t in (
        {"name": "gone-door", "kind": "osdp_panel", "transport": "pty", "address": 1},
        {"name": "gone-shredder", "kind": "modbus_shredder", "transport": f"socket://127.0.0.1:{free_port()}"},
        {"name": "bad-key", "kind": "osdp_panel", "transport": "pty", "line": "bad", "scbk_env": "T_BAD"},
        {"name": "gone-portal", "kind": "llrp_reader", "port": free_port()},
        {"name": "gone-hand", "kind": "mercury_reader", "transport": "/dev/does-not-exist-custodian"},
    )]
    results = probe(devices, timeout_s=0.5)
    assert [r.health for r in results] == [Health.OFFLINE] * 5
    assert "must hold 32 hex digits" in results[2].detail
    assert results[1].detail.startswith("socket://127.0.0.1:")
    assert "cannot connect" in results[3].detail and "does-not-exist" in results[4].detail


def test_simulated_serial_lines_leave_no_names_behind() -> None:
    devices = [device_from_table(t) for t in (
        {"name": "t-leftover", "kind": "modbus_shredder", "transport": "pty"},
        {"name": "t-leftover-door", "kind": "osdp_panel", "transport": "pty"},
    )]
    with start_simulators(devices, FIXED):
        assert pty_link("modbus", "t-leftover").is_symlink()
        assert pty_link("osdp", "t-leftover-door").is_symlink()
    assert not pty_link("modbus", "t-leftover").exists()
    assert not pty_link("osdp", "t-leftover-door").is_symlink()


def test_in_process_simulation_has_fresh_endpoints_and_keys_the_drivers_open() -> None:
    """What wiring does for `custodian demo`: ephemeral ports and ptys, a fresh key per panel."""
    llrp_port, modbus_port = free_port(), free_port()
    devices = [d for d in site(llrp_port, modbus_port) if d.kind != "camera"]
    events: list[object] = []
    with start_simulators(devices, SimulationOptions()) as handle:
        assert str(handle.endpoints["t-portal"]) != f"127.0.0.1:{llrp_port}"
        assert str(handle.endpoints["t-hand"]) != str(pty_link("mercury", "t-hand"))
        assert handle.endpoints["t-vault-door"].secret is not None  # generated: no variable needed
        drivers = open_drivers(devices, OpenContext(events.append, handle.endpoints))
        line = drivers["t-vault-door"]
        assert isinstance(line, OsdpLine) and drivers["t-annex-door"] is line  # one line, two panels
        assert isinstance(drivers["t-portal"], LlrpReader) and isinstance(drivers["t-hand"], MercuryReader)
        machine = drivers["t-degausser"]
        assert isinstance(machine, ModbusDevice)
        with line:
            assert line.wait_online("t-vault-door", 15) and line.secure("t-vault-door")
        with machine:
            assert machine.identify().product_code == "degausser"
            assert machine.read("coil_rating") == 20000  # the simulated HDD-class degausser
        handle.llrp["t-portal"].place(FieldTag("3034257BF7194E4000001A85", 1, -50))
        with drivers["t-portal"]:
            assert wait_for(lambda: bool(rows(events)), 20)  # into the sink wiring gives it


def test_traffic_option_walks_tags_past_a_simulated_reader() -> None:
    devices = [device_from_table({"name": "t-portal", "kind": "llrp_reader", "port": free_port(),
                                  "antennas": [1, 2, 3, 4]})]
    with start_simulators(devices, SimulationOptions(traffic=True)) as handle:
        host, port = str(handle.endpoints["t-portal"]).rsplit(":", 1)
        with LlrpReader("t-portal", host, int(port)) as reader:
            events = collect(reader, lambda ev: len({r.epc for r in rows(ev)}) >= 3)
    assert {r.epc[-2:] for r in rows(events)} >= {"01", "02", "03"}

"""site.start_simulators / site.probe: the functions behind `custodian devices simulate|probe`."""

from __future__ import annotations

import socket

from firmware_bridge.events import Health
from firmware_bridge.site import probe, pty_link, start_simulators

KEY = "00112233445566778899AABBCCDDEEFF"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_simulate_then_probe_a_site(tmp_path) -> None:
    port = free_port()
    devices = [
        {"name": "t-vault-door", "kind": "osdp_panel", "transport": "pty", "line": "t-doors", "address": 1,
         "scbk": KEY},
        {"name": "t-annex-door", "kind": "osdp_panel", "transport": "pty", "line": "t-doors", "address": 2,
         "scbk": KEY},
        {"name": "t-shredder", "kind": "modbus_shredder", "transport": f"socket://127.0.0.1:{port}"},
        {"name": "t-degausser", "kind": "modbus_degausser", "transport": "pty", "address": 3},
    ]
    with start_simulators(devices) as handle:
        assert handle.endpoints()["t-vault-door"] == str(pty_link("osdp", "t-doors"))
        assert handle.endpoints()["t-shredder"] == f"socket://127.0.0.1:{port}"
        assert len(handle.panel_lines) == 1  # both panels share one simulated RS-485 line
        results = {r.name: r for r in probe(devices)}
    assert [r for r in results] == [d["name"] for d in devices]
    assert all(r.health is Health.ONLINE for r in results.values()), results
    assert "serial 2" in results["t-annex-door"].identity
    assert "shredder" in results["t-shredder"].identity
    assert "degausser_generic" in results["t-degausser"].identity
    assert not pty_link("osdp", "t-doors").exists()


def test_probe_of_absent_devices_reports_offline_without_raising() -> None:
    devices = [
        {"name": "gone-door", "kind": "osdp_panel", "transport": "pty", "address": 1, "scbk": KEY},
        {"name": "gone-shredder", "kind": "modbus_shredder", "transport": f"socket://127.0.0.1:{free_port()}"},
        {"name": "bad-key", "kind": "osdp_panel", "transport": "pty", "scbk": "abcd"},
    ]
    results = probe(devices, timeout_s=0.5)
    assert [r.health for r in results] == [Health.OFFLINE] * 3
    assert "scbk must be 32 hex digits" in results[2].detail
    assert results[1].detail.startswith("socket://127.0.0.1:")


def test_simulated_serial_lines_leave_no_names_behind() -> None:
    devices = [{"name": "t-leftover", "kind": "modbus_shredder", "transport": "pty"},
               {"name": "t-leftover-door", "kind": "osdp_panel", "transport": "pty", "scbk": KEY}]
    with start_simulators(devices):
        assert pty_link("modbus", "t-leftover").is_symlink()
        assert pty_link("osdp", "t-leftover-door").is_symlink()
    assert not pty_link("modbus", "t-leftover").exists()
    assert not pty_link("osdp", "t-leftover-door").is_symlink()

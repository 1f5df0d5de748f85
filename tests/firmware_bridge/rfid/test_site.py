"""site.start_simulators and site.probe, as `custodian devices simulate|probe` will call them."""

from __future__ import annotations

import socket

from firmware_bridge.events import Health
from firmware_bridge.rfid import site


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_simulate_then_probe_finds_every_reader() -> None:
    devices: list[dict[str, object]] = [
        {"name": "portal-1", "kind": "llrp_reader", "host": "127.0.0.1", "port": _free_port(),
         "antennas": [1, 2, 3, 4]},
        {"name": "hand-1", "kind": "mercury_reader", "transport": "pty"},
        {"name": "shredder", "kind": "modbus_shredder"},  # not ours: ignored
    ]
    with site.start_simulators(devices) as handle:
        assert set(handle.endpoints()) == {"portal-1", "hand-1"}
        assert site.pty_link("hand-1").exists()
        results = {r.name: r for r in site.probe(devices)}
    assert set(results) == {"portal-1", "hand-1"}
    assert all(r.health == Health.ONLINE for r in results.values())
    assert "custodian-sim" in results["portal-1"].identity and "4 antennas" in results["portal-1"].identity
    assert "region NA" in results["hand-1"].identity
    assert not site.pty_link("hand-1").exists()  # stop() removes the link


def test_probe_reports_dead_devices_offline_with_a_reason() -> None:
    devices = [
        {"name": "portal-9", "kind": "llrp_reader", "host": "127.0.0.1", "port": _free_port()},
        {"name": "hand-9", "kind": "mercury_reader", "transport": "/dev/does-not-exist-custodian"},
    ]
    results = site.probe(devices, timeout_s=0.3)
    assert [r.health for r in results] == [Health.OFFLINE, Health.OFFLINE]
    assert "cannot connect" in results[0].detail and "does-not-exist" in results[1].detail


def test_demo_walk_crosses_from_outer_to_inner_antennas() -> None:
    steps = site.demo_walk([1, 2, 3, 4])
    for epc in {s.epc for s in steps}:
        seen = [s.antenna for s in sorted(steps, key=lambda s: s.t_s) if s.epc == epc]
        assert set(seen[:3]) <= {1, 2} and set(seen[3:]) <= {3, 4}

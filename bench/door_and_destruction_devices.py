"""Firmware bridge figures: OSDP card-to-unlock on the wire, panel (re)connect times, Modbus latencies.

Card-to-unlock: a simulated panel on a pty reports a card; the driver's event callback answers at once
with a strike pulse; the figure is the time until that command reaches the panel's command handler
(both ends stamped with the same clock). Modbus: one point read through ModbusDevice vs the bare
pymodbus client in the same run (the driver's overhead ratio), over TCP loopback and RTU on a pty.
Run: .venv/bin/python bench/door_and_destruction_devices.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from firmware_bridge.events import CardRead, DeviceEvent
from firmware_bridge.health import now_us
from firmware_bridge.modbus.driver import ModbusDevice
from firmware_bridge.modbus.profile import load_profile
from firmware_bridge.modbus.simulator import ModbusSimulator
from firmware_bridge.osdp.driver import OsdpLine, PanelConfig
from firmware_bridge.osdp.simulator import PanelBus, PanelSimulator

KEY = bytes(range(16))
TARGET_CARD_TO_UNLOCK_P99_MS = 100.0
ROUNDS = 4


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def osdp_figures(reads: int, cuts: int, folder: Path) -> dict[str, float]:
    panel = PanelSimulator(1, KEY)
    bus = PanelBus([panel], link=folder / "ttyBENCH").start()
    seen = threading.Event()
    line: OsdpLine | None = None

    def on_event(event: DeviceEvent) -> None:
        if isinstance(event, CardRead) and not event.stale and line is not None:
            line.pulse_strike(event.panel, 3.0)  # the decision stand-in: unlock at once
            seen.set()

    started = time.monotonic()
    line = OsdpLine(bus.path, [PanelConfig("door", 1, KEY)], sink=on_event, stale_window_s=0.2).start()
    try:
        line.wait_online("door", 10)
        online_s = time.monotonic() - started
        time.sleep(0.3)
        latencies: list[float] = []
        for i in range(reads):
            before = len(panel.commands)
            seen.clear()
            t0 = now_us()
            panel.present_card(f"{i:08X}", 32)
            deadline = time.monotonic() + 2
            while len(panel.commands) == before and time.monotonic() < deadline:
                time.sleep(0.001)
            if len(panel.commands) > before:
                latencies.append((panel.commands[-1].time_us - t0) / 1000)
        reconnects: list[float] = []
        for _ in range(cuts):
            bus.stop()
            line_wait_offline = time.monotonic() + 5
            while line.health("door").value != "offline" and time.monotonic() < line_wait_offline:
                time.sleep(0.01)
            t0s = time.monotonic()
            bus.start()
            if line.wait_online("door", 30):
                reconnects.append(time.monotonic() - t0s)
    finally:
        line.stop()
        bus.close()
    return {
        "osdp_online_s": online_s,
        "card_to_unlock_reads": len(latencies),
        "card_to_unlock_p50_ms": statistics.median(latencies),
        "card_to_unlock_p95_ms": percentile(latencies, 0.95),
        "card_to_unlock_p99_ms": percentile(latencies, 0.99),
        "card_to_unlock_p99_vs_target": percentile(latencies, 0.99) / TARGET_CARD_TO_UNLOCK_P99_MS,
        "osdp_reconnect_median_s": statistics.median(reconnects) if reconnects else float("nan"),
    }


def modbus_figures(reads: int) -> dict[str, float]:
    profile = load_profile("shredder_generic")
    figures: dict[str, float] = {}
    for transport in ("tcp", "rtu"):
        with ModbusSimulator(profile, transport=transport, cycle_s=0.3) as sim:
            bare: list[float] = []
            ours: list[float] = []
            for _ in range(ROUNDS):  # alternate blocks (a serial port takes one client at a time)
                raw = (ModbusTcpClient("127.0.0.1", port=sim.port, timeout=1, retries=0) if transport == "tcp"
                       else ModbusSerialClient(sim.url, baudrate=115200, timeout=1, retries=0))
                raw.connect()
                for _ in range(reads // ROUNDS):
                    t0 = time.perf_counter()
                    raw.read_input_registers(0, count=2)
                    bare.append(time.perf_counter() - t0)
                raw.close()
                with ModbusDevice("bench", sim.url, profile) as dev:
                    for _ in range(reads // ROUNDS):
                        t0 = time.perf_counter()
                        dev.read("cycle_counter")
                        ours.append(time.perf_counter() - t0)
            with ModbusDevice("bench", sim.url, profile) as dev:
                t0 = time.perf_counter()
                report = dev.run_cycle(poll_s=0.02)
                cycle_s = time.perf_counter() - t0
        figures[f"modbus_{transport}_read_ms"] = statistics.median(ours) * 1000
        figures[f"modbus_{transport}_bare_read_ms"] = statistics.median(bare) * 1000
        figures[f"modbus_{transport}_driver_overhead_ratio"] = statistics.median(ours) / statistics.median(bare)
        figures[f"modbus_{transport}_cycle_overhead_s"] = cycle_s - 0.3 if report.ok else float("nan")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 60 s)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    reads, cuts, mb_reads = (50, 1, 100) if args.quick else (300, 3, 500)
    with tempfile.TemporaryDirectory() as folder:
        figures = osdp_figures(reads, cuts, Path(folder))
    figures |= modbus_figures(mb_reads)
    print(f"{'figure':40} {'value':>12}")
    for key, value in figures.items():
        print(f"{key:40} {value:12.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps({"bench": "firmware_bridge", "quick": args.quick, **figures}))


if __name__ == "__main__":
    main()

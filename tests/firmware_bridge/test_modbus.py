"""Modbus: the cycle driver against shredder and degausser simulators over loopback TCP and RTU on a pty."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from firmware_bridge.errors import (
    DeviceOffline,
    DeviceRefused,
    DeviceTimeout,
    NoIdentification,
    ProfileError,
    ProtocolError,
    TransportError,
)
from firmware_bridge.events import Health, HealthEvent
from firmware_bridge.modbus.driver import ModbusDevice
from firmware_bridge.modbus.model import Fault
from firmware_bridge.modbus.profile import Profile, load_profile
from firmware_bridge.modbus.simulator import ModbusSimulator
from tests.firmware_bridge.helpers import wait_for

SHREDDER = load_profile("shredder_generic")
DEGAUSSER = load_profile("degausser_generic")
FAST_RETRY = dict(timeout_s=1.0)


@pytest.fixture(params=["tcp", "rtu"])
def shredder(request: pytest.FixtureRequest) -> Iterator[tuple[ModbusSimulator, ModbusDevice, list[HealthEvent]]]:
    health: list[HealthEvent] = []
    with ModbusSimulator(SHREDDER, transport=request.param, cycle_s=0.2) as sim, \
            ModbusDevice("shredder-1", sim.url, SHREDDER, on_health=health.append, **FAST_RETRY) as dev:
        yield sim, dev, health


@pytest.fixture(params=["tcp", "rtu"])
def degausser(request: pytest.FixtureRequest) -> Iterator[tuple[ModbusSimulator, ModbusDevice]]:
    with ModbusSimulator(DEGAUSSER, transport=request.param, cycle_s=0.2) as sim, \
            ModbusDevice("degausser-1", sim.url, DEGAUSSER, **FAST_RETRY) as dev:
        yield sim, dev


def test_shredder_cycle_reports_counter_cut_size_and_current(shredder) -> None:
    sim, dev, health = shredder
    report = dev.run_cycle(cut_size_mm=0.8, max_cut_size_mm=1.0, poll_s=0.02)
    assert report.ok, report.reasons
    assert (report.counter_before, report.counter_after) == (0, 1)
    assert report.cut_size_mm == pytest.approx(0.8)
    assert sim.model.get("cutting_size") == pytest.approx(0.8)  # the setting reached the machine
    assert report.max_motor_current_a is not None and report.max_motor_current_a > 5
    assert report.started_us < report.ended_us
    assert not sim.model.get("cycle_start")  # the start coil is released for the next cycle
    assert [e.health for e in health] == [Health.ONLINE]
    second = dev.run_cycle(poll_s=0.02)
    assert second.ok and (second.counter_before, second.counter_after) == (1, 2)


def test_shredder_jam_mid_cycle_fails_the_report(shredder) -> None:
    sim, dev, _ = shredder
    sim.inject(Fault.JAM)
    report = dev.run_cycle(poll_s=0.02)
    assert not report.ok
    assert "fault code 1" in report.faults
    assert report.counter_after == report.counter_before == 0
    assert any("cycle aborted" in r for r in report.reasons)
    refused = dev.run_cycle(poll_s=0.02)  # still jammed: the cycle must not even start
    assert not refused.ok and refused.reasons[0].startswith("not started") and "jam" in refused.faults
    sim.model.clear()
    assert dev.run_cycle(poll_s=0.02).ok


def test_door_opened_mid_cycle_and_cut_size_too_coarse(shredder) -> None:
    sim, dev, _ = shredder
    sim.inject(Fault.DOOR_OPENED)
    report = dev.run_cycle(poll_s=0.02)
    assert not report.ok and "door open" in report.faults
    sim.model.clear()
    coarse = dev.run_cycle(cut_size_mm=6.0, max_cut_size_mm=2.0, poll_s=0.02)
    assert not coarse.ok and coarse.reasons == ("cutting size 6 mm exceeds 2 mm",)
    assert coarse.counter_after == coarse.counter_before + 1  # the machine did run; the verdict says no


def test_bin_full_prevents_the_start(shredder) -> None:
    sim, dev, _ = shredder
    sim.inject(Fault.BIN_FULL)
    sim.model.on_start(0.0)  # the bin fills as the machine is readied
    report = dev.run_cycle(poll_s=0.02)
    assert not report.ok and "bin full" in report.faults and report.counter_after is None


def test_degausser_reports_peak_field_and_catches_a_weak_pulse(degausser) -> None:
    sim, dev = degausser
    good = dev.run_cycle(min_field_oe=5000, poll_s=0.02)
    assert good.ok, good.reasons
    assert good.coil_rating_oe == 10000
    assert good.peak_field_oe is not None and good.peak_field_oe >= 5000
    sim.inject(Fault.WEAK_FIELD)
    weak = dev.run_cycle(min_field_oe=5000, poll_s=0.02)
    assert not weak.ok and weak.peak_field_oe is not None and weak.peak_field_oe < 5000
    assert weak.counter_after == weak.counter_before + 1  # the device thinks all went well
    assert "below the required 5000 Oe" in weak.reasons[0]


def test_degausser_door_opened_mid_cycle(degausser) -> None:
    sim, dev = degausser
    sim.inject(Fault.DOOR_OPENED)
    report = dev.run_cycle(poll_s=0.02)
    assert not report.ok and "device fault" in report.faults and report.peak_field_oe is None


def test_power_loss_goes_offline_then_online_after_power_returns(shredder) -> None:
    sim, dev, health = shredder
    assert dev.read("cycle_counter") == 0
    sim.model.set("cycle_counter", 41)  # history kept in the PLC survives the power cut
    sim.power_off()
    with pytest.raises((DeviceTimeout, TransportError, DeviceOffline)):
        dev.read("cycle_counter")
    assert health[-1].health is Health.OFFLINE
    report = dev.run_cycle(poll_s=0.02, contact_grace_s=0.5)
    assert not report.ok and "lost contact" in report.reasons[0]
    sim.power_on()

    def answers() -> bool:
        try:
            return dev.read("cycle_counter") == 41
        except (DeviceTimeout, TransportError, DeviceOffline):
            return False

    assert wait_for(answers, 15)
    assert health[-1].health is Health.ONLINE
    assert [e.health for e in health][-2:] == [Health.OFFLINE, Health.ONLINE]


def test_power_loss_mid_cycle_is_reported_not_raised() -> None:
    with ModbusSimulator(SHREDDER, cycle_s=5.0) as sim, ModbusDevice("s", sim.url, SHREDDER) as dev:
        timer = threading.Timer(0.3, sim.power_off)
        timer.start()
        report = dev.run_cycle(poll_s=0.02, timeout_s=10, contact_grace_s=1.0)
        timer.join()
    assert not report.ok and report.counter_before == 0 and report.counter_after is None
    assert "lost contact with the device" in report.reasons[0]


def test_identity_and_point_access(shredder) -> None:
    _sim, dev, _ = shredder
    info = dev.identify()
    assert (info.vendor, info.product_code) == ("Custodian simulator", "shredder")
    values = dev.read_all()
    assert values["door_interlock"] is True and values["cutting_size"] == pytest.approx(2.0)
    with pytest.raises(ProfileError, match="cannot be written"):
        dev.write("jam", True)
    with pytest.raises(ProfileError, match="no point"):
        dev.read("laser")


def test_register_outside_the_device_map_gives_protocol_error_and_stays_usable(shredder) -> None:
    _sim, dev, health = shredder
    bogus = replace(SHREDDER.points["fault_code"], name="bogus", address=900)
    dev.profile = Profile(SHREDDER.name, SHREDDER.kind, "", {**SHREDDER.points, "bogus": bogus})
    with pytest.raises(ProtocolError):
        dev.read("bogus")
    assert health[-1].health is Health.DEGRADED and dev.health.counters["exception_replies"] == 1
    assert dev.read("cycle_counter") == 0
    assert health[-1].health is Health.ONLINE


def test_device_answering_nonsense_is_survived() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def babble() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.1)
                while not stop.is_set():
                    try:
                        if not conn.recv(256):
                            break
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    conn.sendall(b"\x00\x07\x00\x00\x00\x03\x01\x83\x02garbage\xff\xfe")

    thread = threading.Thread(target=babble)
    thread.start()
    try:
        dev = ModbusDevice("liar", f"socket://127.0.0.1:{server.getsockname()[1]}", SHREDDER, timeout_s=0.3)
        with dev, pytest.raises((DeviceTimeout, ProtocolError, TransportError)):
            dev.read("cycle_counter")
        assert dev.health.health is not Health.ONLINE and dev.health.reason
    finally:
        stop.set()
        thread.join()
        server.close()


def test_unknown_profile_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no shipped profile"):
        load_profile("toaster")
    bad = tmp_path / "bad.toml"
    bad.write_text('[device]\nname="x"\nkind="shredder"\n[points.jam]\ntype="discrete"\naddress=0\n')
    with pytest.raises(ProfileError, match="needs points"):
        load_profile(bad)


def test_lost_replies_mid_cycle_are_retried_not_fatal(shredder) -> None:
    sim, dev, _ = shredder
    sim.drop_replies(2)  # the first two replies of the cycle vanish on the wire
    report = dev.run_cycle(poll_s=0.02)
    assert report.ok, report.reasons
    assert (report.counter_before, report.counter_after) == (0, 1)
    assert dev.health.counters["comm_failures"] == 2


def test_device_busy_mid_cycle_is_retried_and_the_cycle_completes(shredder) -> None:
    sim, dev, _ = shredder
    started = threading.Event()

    def busy_once_running() -> None:
        started.wait(5)
        sim.refuse(0x06, count=3)  # SERVER DEVICE BUSY while the PLC runs the cycle

    helper = threading.Thread(target=busy_once_running)
    helper.start()
    original = sim.model.on_start

    def on_start(now: float) -> None:
        original(now)
        started.set()

    sim.model.on_start = on_start  # type: ignore[method-assign]
    try:
        report = dev.run_cycle(poll_s=0.02)
    finally:
        helper.join()
    assert report.ok, report.reasons
    assert (report.counter_before, report.counter_after) == (0, 1)
    assert dev.health.counters["busy_replies"] == 3
    assert not sim.model.get("cycle_start")  # released once, after completion


def test_device_busy_beyond_the_cycles_budget_is_reported_by_name(shredder) -> None:
    sim, dev, _ = shredder
    sim.refuse(0x06, count=10_000)
    report = dev.run_cycle(poll_s=0.02, timeout_s=0.5)
    assert not report.ok and "SERVER DEVICE BUSY" in report.reasons[0] and "lost contact" not in report.reasons[0]


@pytest.mark.parametrize(("code", "name"), [(0x01, "ILLEGAL FUNCTION"), (0x02, "ILLEGAL DATA ADDRESS"),
                                            (0x03, "ILLEGAL DATA VALUE"), (0x04, "SERVER DEVICE FAILURE")])
def test_exception_replies_are_reported_by_their_name_not_as_lost_contact(shredder, code: int, name: str) -> None:
    sim, dev, health = shredder
    sim.refuse(code)
    with pytest.raises(DeviceRefused) as caught:
        dev.read("cycle_counter")
    assert (caught.value.code, caught.value.name) == (code, name)
    assert health[-1].health is Health.DEGRADED and name in health[-1].reason
    sim.refuse(code, count=50)
    report = dev.run_cycle(poll_s=0.02)
    assert not report.ok and name in report.reasons[0] and "lost contact" not in report.reasons[0]


def test_a_device_without_identification_objects_says_so() -> None:
    with ModbusSimulator(SHREDDER, identity=None) as sim, ModbusDevice("plc", sim.url, SHREDDER) as dev:
        with pytest.raises(NoIdentification, match="no identification objects"):
            dev.identify()
        assert dev.read("cycle_counter") == 0  # it answers everything else


def test_two_machines_in_one_process_each_name_themselves() -> None:
    with ModbusSimulator(SHREDDER) as a, ModbusSimulator(DEGAUSSER) as b, \
            ModbusDevice("s", a.url, SHREDDER) as shredder, ModbusDevice("d", b.url, DEGAUSSER) as degausser:
        assert (shredder.identify().product_code, degausser.identify().product_code) == ("shredder", "degausser")

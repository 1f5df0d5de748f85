"""OSDP: the control-panel driver against door-panel simulators on a pty line with Secure Channel."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_bridge.errors import DeviceOffline
from firmware_bridge.events import CardRead, Health, HealthEvent, InputChange, KeyPress
from firmware_bridge.osdp.driver import OsdpLine, PanelConfig
from firmware_bridge.osdp.simulator import PanelBus, PanelSimulator
from firmware_bridge.osdp.vocabulary import LedColor, LedPattern, OutputCode
from tests.firmware_bridge.helpers import next_matching, wait_for

VAULT_KEY = bytes.fromhex("0102030405060708090A0B0C0D0E0F10")
ANNEX_KEY = bytes.fromhex("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
STALE_WINDOW_S = 0.3


def when_online(line: OsdpLine, panel: str, command: Callable[[], None], timeout_s: float = 30.0) -> None:
    """Send a command, riding out a brief offline spell (a starved CPU makes libosdp drop panels)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            command()
            return
        except DeviceOffline:
            if time.monotonic() > deadline:
                raise
            line.wait_online(panel, 1.0)


def went_offline(events: list[object]) -> bool:
    return any(isinstance(e, HealthEvent) and e.health is Health.OFFLINE for e in events)


@pytest.fixture
def line_with_two_doors(tmp_path: Path) -> Iterator[tuple[PanelBus, OsdpLine]]:
    vault, annex = PanelSimulator(1, VAULT_KEY), PanelSimulator(2, ANNEX_KEY)
    bus = PanelBus([vault, annex], link=tmp_path / "ttyDOORS").start()
    line = OsdpLine(bus.path, [PanelConfig("vault", 1, VAULT_KEY), PanelConfig("annex", 2, ANNEX_KEY)],
                    stale_window_s=STALE_WINDOW_S)
    try:
        line.start()
        assert line.wait_online("vault", 30) and line.wait_online("annex", 30)
        time.sleep(STALE_WINDOW_S)  # reads from here on are live, not replayed
        yield bus, line
    finally:
        line.stop()
        bus.close()


def test_two_panels_share_a_line_each_with_its_own_secure_channel(line_with_two_doors) -> None:
    bus, line = line_with_two_doors
    assert line.secure("vault") and line.secure("annex")
    assert line.health_reason("vault") == "secure channel established"
    assert line.identity("annex").serial_number == 2
    assert line.identity("vault").vendor_code == bus.panels[1].identity.vendor_code


def test_card_read_reaches_the_right_panel_with_its_bits(line_with_two_doors) -> None:
    bus, line = line_with_two_doors
    bus.panels[2].present_card("0A1B2C40", 26)
    passed: list[object] = []
    read = next_matching(line.get_event, CardRead, seen=passed)
    assert (read.panel, read.card_hex, read.bits, read.format) == ("annex", "0A1B2C40", 26, "wiegand")
    assert read.stale is went_offline(passed)  # live, unless the link flapped while it was in flight
    bus.panels[1].type_keys("1234#")
    keys = next_matching(line.get_event, KeyPress)
    assert (keys.panel, keys.keys) == ("vault", "1234#")


def test_strike_pulse_unlocks_the_door_then_relocks(line_with_two_doors) -> None:
    bus, line = line_with_two_doors
    door = bus.panels[1]
    assert not door.open_door()  # locked: pulling the handle does nothing
    when_online(line, "vault", lambda: line.pulse_strike("vault", 2.0))
    assert wait_for(lambda: door.strike_active, 20)
    assert door.open_door()
    opened = next_matching(line.get_event, InputChange, lambda e: e.input == "door_contact" and e.active)
    assert opened.panel == "vault"
    output = [c for c in door.commands if c.kind == "output"][-1]
    assert output.field("control_code") == OutputCode.TEMPORARY_ON and output.field("timer_count") == 20
    assert wait_for(lambda: not door.strike_active, 10)  # relocks by itself
    door.close_door()
    next_matching(line.get_event, InputChange, lambda e: e.input == "door_contact" and not e.active)
    assert not bus.panels[2].commands or all(c.kind != "output" for c in bus.panels[2].commands)


def test_held_release_and_forced_door_and_alarm_inputs(line_with_two_doors) -> None:
    bus, line = line_with_two_doors
    door = bus.panels[2]
    assert door.open_door(force=True)  # forced while locked
    next_matching(line.get_event, InputChange, lambda e: (e.panel, e.input, e.active) == ("annex",
                                                                                        "door_contact", True))
    door.raise_fire_alarm()
    next_matching(line.get_event, InputChange, lambda e: e.input == "fire_alarm" and e.active)
    when_online(line, "annex", lambda: line.set_strike("annex", released=True))
    assert wait_for(lambda: door.strike_active, 20)
    door.set_tamper()
    door.set_power_failure()
    door.press_exit_button()
    names = {next_matching(line.get_event, InputChange, lambda e: e.active).input for _ in range(3)}
    assert names == {"tamper", "power_failure", "request_to_exit"}
    when_online(line, "annex", lambda: line.set_strike("annex", released=False))
    assert wait_for(lambda: not door.strike_active, 20)


def test_led_and_buzzer_commands_arrive_with_their_parameters(line_with_two_doors) -> None:
    bus, line = line_with_two_doors
    when_online(line, "vault", lambda: line.set_led("vault", LedColor.RED, LedPattern.FAST_BLINK, seconds=2.0))
    when_online(line, "vault", lambda: line.buzz("vault", on_s=0.3, off_s=0.1, repeats=3))
    door = bus.panels[1]
    assert wait_for(lambda: {c.kind for c in door.commands} >= {"led", "buzzer"}, 20)
    led = next(c for c in door.commands if c.kind == "led")
    assert (led.field("on_color"), led.field("on_count"), led.field("off_count")) == (LedColor.RED, 2, 2)
    assert led.field("temporary") is True and led.field("timer_count") == 20
    buzzer = next(c for c in door.commands if c.kind == "buzzer")
    assert (buzzer.field("on_count"), buzzer.field("off_count"), buzzer.field("rep_count")) == (3, 1, 3)


def test_line_cut_and_restored_reports_offline_then_online_and_loses_nothing(line_with_two_doors) -> None:
    bus, line = line_with_two_doors
    bus.stop()  # the line is cut (the simulator dies)
    for panel in ("vault", "annex"):  # the link's loss is the reason given, whatever libosdp saw first
        assert wait_for(lambda p=panel: "link lost" in line.health_reason(p), 10)
        assert line.health(panel) is Health.OFFLINE
    with pytest.raises(DeviceOffline):
        line.pulse_strike("vault", 1.0)
    bus.panels[1].present_card("CAFE01", 24)  # buffered by the panel while nobody listens
    bus.panels[1].raise_fire_alarm()
    bus.start()
    assert line.wait_online("vault", 30) and line.wait_online("annex", 30)
    replayed = next_matching(line.get_event, CardRead)
    assert (replayed.card_hex, replayed.bits, replayed.stale) == ("CAFE01", 24, True)
    next_matching(line.get_event, InputChange, lambda e: e.input == "fire_alarm" and e.active)
    assert wait_for(lambda: bus.panels[1].pending_events == 0, 10)  # each delivery was confirmed


def test_install_mode_provisions_a_factory_fresh_panel_with_its_key(tmp_path: Path) -> None:
    fresh = PanelSimulator(7, None, install_mode=True)
    with PanelBus([fresh], link=tmp_path / "ttyNEW") as bus:
        with OsdpLine(bus.path, [PanelConfig("new-door", 7, VAULT_KEY, install_mode=True)]):
            assert wait_for(lambda: fresh.scbk == VAULT_KEY, 20)
            keyset = next(c for c in fresh.commands if c.kind == "keyset")
            assert keyset.field("data") == VAULT_KEY
        bus.stop()
        bus.start()  # the panel reboots with its new key; a line in normal mode now reaches it securely
        assert not fresh.install_mode
        with OsdpLine(bus.path, [PanelConfig("new-door", 7, VAULT_KEY)]) as keyed:
            assert keyed.wait_online("new-door", 10) and keyed.secure("new-door")


def test_wrong_key_never_comes_online(tmp_path: Path) -> None:
    with PanelBus([PanelSimulator(3, VAULT_KEY)], link=tmp_path / "ttyBAD") as bus, \
            OsdpLine(bus.path, [PanelConfig("imposter", 3, ANNEX_KEY)]) as line:
        assert not line.wait_online("imposter", 2.0)
        assert line.health("imposter") is Health.OFFLINE


def test_noise_on_the_line_is_survived_and_later_frames_are_read(line_with_two_doors) -> None:
    bus, line = line_with_two_doors
    noise = random.Random(4)
    for _ in range(20):
        bus.inject_noise(bytes(noise.randrange(256) for _ in range(noise.randrange(1, 64))))
        time.sleep(0.01)
    bus.inject_noise(b"\x53" * 40)  # runs of OSDP start-of-message bytes
    assert line.wait_online("vault", 30) and line.wait_online("annex", 30)
    time.sleep(STALE_WINDOW_S)
    bus.panels[1].present_card("BEEF", 16)
    read = next_matching(line.get_event, CardRead)
    assert (read.panel, read.card_hex) == ("vault", "BEEF")


def test_panel_that_stops_answering_goes_offline_with_a_reason(tmp_path: Path) -> None:
    # The line stays up but the panel falls silent: OSDP's 8 s rule decides, as on a real bus.
    panel = PanelSimulator(5, VAULT_KEY)
    with PanelBus([panel], link=tmp_path / "ttyMUTE") as bus, \
            OsdpLine(bus.path, [PanelConfig("mute", 5, VAULT_KEY)]) as line:
        assert line.wait_online("mute", 30)
        bus.power_off_panel(5)
        assert wait_for(lambda: line.health("mute") is Health.OFFLINE, 15)
        assert line.health_reason("mute") == "no valid reply from panel"
        bus.power_on_panel(5)
        assert line.wait_online("mute", 15)


def test_a_burst_of_reads_faster_than_polling_arrives_complete_and_in_order(line_with_two_doors) -> None:
    bus, line = line_with_two_doors
    cards = [f"{n:06X}" for n in range(60)]
    for card in cards:
        bus.panels[2].present_card(card, 24)
    got = [next_matching(line.get_event, CardRead).card_hex for _ in cards]
    assert got == cards


def test_a_failing_consumer_does_not_stop_the_line(tmp_path: Path) -> None:
    seen: list[CardRead] = []

    def fragile(event: object) -> None:
        if isinstance(event, CardRead):
            seen.append(event)
            if len(seen) == 1:
                raise RuntimeError("consumer bug")

    with PanelBus([PanelSimulator(1, VAULT_KEY)], link=tmp_path / "ttyFRAGILE") as bus, \
            OsdpLine(bus.path, [PanelConfig("door", 1, VAULT_KEY)], sink=fragile, stale_window_s=0.1) as line:
        assert line.wait_online("door", 30)
        time.sleep(0.2)
        bus.panels[1].present_card("01", 8)
        bus.panels[1].present_card("02", 8)
        assert wait_for(lambda: len(seen) == 2, 20)
        assert line.wait_online("door", 30)  # the line thread survived the failing consumer
        assert line.incidents("door") == {"sink_errors": 1}


def test_a_line_at_the_specifications_default_baud_rate_still_carries_everything(tmp_path: Path) -> None:
    """At 9600 baud every byte takes ~1 ms on the line: Secure Channel, a card read and the strike command
    still get through (slower: the sites run their lines at 115200)."""
    door = PanelSimulator(1, VAULT_KEY)
    with PanelBus([door], link=tmp_path / "ttySLOW", baudrate=9600) as bus, \
            OsdpLine(bus.path, [PanelConfig("door", 1, VAULT_KEY)], baudrate=9600, stale_window_s=0.1) as line:
        assert line.wait_online("door", 30) and wait_for(lambda: line.secure("door"), 30)
        time.sleep(0.2)
        door.present_card("0A1B2C40", 26)
        assert next_matching(line.get_event, CardRead).card_hex == "0A1B2C40"
        when_online(line, "door", lambda: line.pulse_strike("door", 1.0))
        assert wait_for(lambda: door.strike_active, 10)

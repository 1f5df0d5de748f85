"""MercuryReader against MercurySimulator over a pty: commands, inventory, every reply form, silence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_bridge.backoff import Backoff
from firmware_bridge.errors import ProtocolError, TransportError
from firmware_bridge.events import Health, HealthEvent
from firmware_bridge.rfid.mercury_codec import Region
from firmware_bridge.rfid.mercury_reader import MercuryReader
from firmware_bridge.rfid.mercury_simulator import SIM_VERSION, FieldTag, MercurySimulator
from tests.firmware_bridge.helpers import collect, healths, round_ends, rows

FAST = Backoff(initial_s=0.02, max_s=0.2)
FIELD = [FieldTag(f"3034257BF7194E40000{i:05X}", 1 + i % 2, -50 - i, None) for i in range(14)]


@pytest.fixture
def sim() -> Iterator[MercurySimulator]:
    with MercurySimulator() as s:
        yield s


def test_commands_round_trip(sim: MercurySimulator) -> None:
    reader = MercuryReader("hand", sim.path)
    try:
        assert reader.version() == SIM_VERSION
        reader.set_region(Region.EU3)
        assert reader.get_region() == Region.EU3 and sim.region == Region.EU3
        reader.set_antenna(2)
        assert reader.get_antenna() == (2, 2)
        with pytest.raises(ProtocolError):
            reader.set_antenna(9)  # the module has 4 ports and says so with an error status
        assert reader.framing_errors == 0
    finally:
        reader.close()


def test_inventory_reads_every_tag_on_the_antenna_with_tid(sim: MercurySimulator) -> None:
    for tag in FIELD:
        sim.place(tag)
    reader = MercuryReader("hand", sim.path, antennas=(2,), read_tid=True)
    try:
        found = rows([reader.inventory()])  # 7 tags on antenna 2: more than one GET_TAG_BUFFER frame holds
    finally:
        reader.close()
    expected = {t.epc for t in FIELD if t.antenna == 2}
    assert {r.epc for r in found} == expected and len(found) == len(expected)
    for r in found:
        assert r.antenna == 2 and not r.stale
        assert r.tid is not None and r.tid.startswith("E2003412") and r.tid.endswith(r.epc[-16:])
    assert {r.rssi_dbm for r in found} == {float(t.rssi_dbm) for t in FIELD if t.antenna == 2}
    assert sim.buffered == 0


@pytest.mark.parametrize(("wide_counts", "reply_form"), [(True, None), (False, None), (True, 4), (True, 5),
                                                          (True, 7), (True, 8)])
@pytest.mark.parametrize("read_tid", [False, True])
def test_inventory_works_with_every_reply_form_a_module_sends(wide_counts: bool, reply_form: int | None,
                                                              read_tid: bool) -> None:
    with MercurySimulator(wide_counts=wide_counts, reply_form=reply_form) as sim:
        for tag in FIELD[:6]:
            sim.place(tag)
        reader = MercuryReader("hand", sim.path, antennas=(1, 2), read_tid=read_tid)
        try:
            found = rows([reader.inventory()])
        finally:
            reader.close()
    assert {r.epc for r in found} == {t.epc for t in FIELD[:6]}
    assert all((r.tid is not None) == read_tid for r in found)


def test_empty_field_is_not_an_error(sim: MercurySimulator) -> None:
    reader = MercuryReader("hand", sim.path)
    try:
        assert len(reader.inventory()) == 0
    finally:
        reader.close()


def test_streaming_ends_each_antennas_round(sim: MercurySimulator) -> None:
    for tag in FIELD[:4]:
        sim.place(tag)
    with MercuryReader("portal", sim.path, antennas=(1, 2), poll_interval_s=0.0, backoff=FAST) as reader:
        events = collect(reader, lambda ev: len(round_ends(ev)) >= 6)
    assert {e.antenna for e in round_ends(events)} == {1, 2}
    assert {r.epc for r in rows(events)} == {t.epc for t in FIELD[:4]}


def test_unplugged_device_path_is_a_transport_error_not_a_crash() -> None:
    reader = MercuryReader("gone", "/dev/does-not-exist-custodian", reply_timeout_s=0.1)
    with pytest.raises(TransportError):
        reader.version()
    with pytest.raises(TransportError):
        reader.inventory()
    assert reader.health.health is Health.OFFLINE and "does-not-exist" in reader.health.reason


def test_silence_reason_names_the_command(sim: MercurySimulator) -> None:
    sim.place(FIELD[0])
    reader = MercuryReader("hand", sim.path, reply_timeout_s=0.2, backoff=FAST)
    with reader:
        events = collect(reader, lambda ev: bool(rows(ev)))
        sim.mute(True)
        collect(reader, lambda ev: healths(ev)[-1] is Health.OFFLINE, into=events)
        sim.mute(False)
        collect(reader, lambda ev: healths(ev)[-1] is Health.ONLINE, into=events)
    offline = next(e for e in events if isinstance(e, HealthEvent) and e.health is Health.OFFLINE)
    assert "no valid reply" in offline.reason


def test_killed_and_restarted_module_is_found_again_under_its_link(tmp_path: Path) -> None:
    link = tmp_path / "ttyMercury"
    first = MercurySimulator(link=link).start()
    first.place(FIELD[0])
    reader = MercuryReader("hand", str(link), reply_timeout_s=0.2, backoff=FAST)
    events: list[object] = []
    try:
        with reader:
            collect(reader, lambda ev: bool(rows(ev)), into=events)
            first.stop()  # the module dies: its pty goes away
            collect(reader, lambda ev: healths(ev)[-1] is Health.OFFLINE, into=events)
            second = MercurySimulator(link=link).start()  # a new pty behind the same name
            try:
                second.place(FIELD[2])
                collect(reader, lambda ev: any(r.epc == FIELD[2].epc for r in rows(ev)), into=events)
            finally:
                reader.stop()
                second.stop()
    finally:
        first.stop()
    assert healths(events)[:3] == [Health.ONLINE, Health.OFFLINE, Health.ONLINE]

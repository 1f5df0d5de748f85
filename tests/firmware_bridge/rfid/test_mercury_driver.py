"""MercuryReader against MercurySimulator over a pty: commands, inventory, silence and nonsense."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_bridge.backoff import Backoff
from firmware_bridge.errors import ProtocolError, TransportError
from firmware_bridge.events import Health, HealthEvent, TagRead
from firmware_bridge.rfid.llrp_reader import RfidEvent
from firmware_bridge.rfid.mercury_codec import Op, Region
from firmware_bridge.rfid.mercury_reader import MercuryReader
from firmware_bridge.rfid.mercury_simulator import SIM_VERSION, FieldTag, MercurySimulator

FAST = Backoff(initial_s=0.02, max_s=0.2)
FIELD = [FieldTag(f"3034257BF7194E40000{i:05X}", 1 + i % 2, -50 - i, None) for i in range(14)]


@pytest.fixture
def sim() -> Iterator[MercurySimulator]:
    with MercurySimulator() as s:
        yield s


def collect(reader: MercuryReader, until: Callable[[list[RfidEvent]], bool], into: list[RfidEvent],
            timeout_s: float = 10.0) -> list[RfidEvent]:
    deadline = time.monotonic() + timeout_s
    while not until(into):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"condition not met; last events: {into[-4:]}"
        try:
            into.append(reader.events.get(timeout=min(remaining, 0.2)))
        except queue.Empty:
            continue
    return into


def healths(events: list[RfidEvent]) -> list[HealthEvent]:
    return [e for e in events if isinstance(e, HealthEvent)]


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
    reader = MercuryReader("hand", sim.path, antenna=2, read_tid=True)
    try:
        reader.initialise()
        reads = reader.inventory()  # 7 tags on antenna 2: more than one GET_TAG_BUFFER frame holds
    finally:
        reader.close()
    expected = {t.epc for t in FIELD if t.antenna == 2}
    assert {r.epc for r in reads} == expected and len(reads) == len(expected)
    for r in reads:
        assert r.antenna == 2 and not r.stale
        assert r.tid is not None and r.tid.startswith("E2003412") and r.tid.endswith(r.epc[-16:])
    assert {r.rssi_dbm for r in reads} == {float(t.rssi_dbm) for t in FIELD if t.antenna == 2}
    assert sim.buffered == 0


def test_empty_field_is_not_an_error(sim: MercurySimulator) -> None:
    reader = MercuryReader("hand", sim.path)
    try:
        assert reader.inventory() == []
    finally:
        reader.close()


def test_silence_mid_round_then_recovery_loses_no_buffered_tag(sim: MercurySimulator) -> None:
    for tag in FIELD[:4]:
        sim.place(tag)
    reader = MercuryReader("hand", sim.path, reply_timeout_s=0.2, backoff=FAST)
    events: list[RfidEvent] = []
    with reader:
        collect(reader, lambda ev: any(isinstance(e, TagRead) for e in ev), events)
        for tag in FIELD[:4]:
            sim.remove(tag.epc)
        late = FieldTag("E28011700000020A00000099", 1, -40)
        sim.place(late)
        sim.mute_after(Op.READ_TAG_MULTIPLE)  # the module finds `late`, then stops answering
        collect(reader, lambda ev: healths(ev)[-1].health == Health.OFFLINE, events)
        assert sim.buffered >= 1  # the found tag waits in the module
        sim.remove(late.epc)
        sim.mute(False)
        collect(reader, lambda ev: healths(ev)[-1].health == Health.ONLINE and
                any(isinstance(e, TagRead) and e.epc == late.epc for e in ev), events)
    states = [h.health for h in healths(events)]
    assert states[:3] == [Health.ONLINE, Health.OFFLINE, Health.ONLINE]
    assert "no valid reply" in healths(events)[1].reason
    late_reads = [e for e in events if isinstance(e, TagRead) and e.epc == late.epc]
    assert late_reads[-1].stale  # fetched from the module's buffer after the outage, not a live read


def test_nonsense_replies_are_reported_and_later_frames_still_read(sim: MercurySimulator) -> None:
    sim.place(FIELD[0])
    reader = MercuryReader("hand", sim.path, reply_timeout_s=0.2, backoff=FAST)
    events: list[RfidEvent] = []
    with reader:
        collect(reader, lambda ev: any(isinstance(e, TagRead) for e in ev), events)
        sim.garble(2)
        collect(reader, lambda ev: healths(ev)[-1].health == Health.OFFLINE, events)
        before = sum(isinstance(e, TagRead) for e in events)
        collect(reader, lambda ev: sum(isinstance(e, TagRead) for e in ev) > before + 2, events)
    offline = next(h for h in healths(events) if h.health == Health.OFFLINE)
    assert "corrupt frames or noise" in offline.reason
    assert reader.framing_errors >= 1


def test_unplugged_device_path_is_a_transport_error_not_a_crash() -> None:
    reader = MercuryReader("gone", "/dev/does-not-exist-custodian", reply_timeout_s=0.1)
    with pytest.raises(TransportError):
        reader.version()


def test_killed_and_restarted_module_is_found_again_under_its_link(tmp_path: Path) -> None:
    link = tmp_path / "ttyMercury"
    first = MercurySimulator(link=link).start()
    first.place(FIELD[0])
    reader = MercuryReader("hand", str(link), reply_timeout_s=0.2, backoff=FAST)
    events: list[RfidEvent] = []
    try:
        with reader:
            collect(reader, lambda ev: any(isinstance(e, TagRead) for e in ev), events)
            first.stop()  # the module dies: its pty goes away
            collect(reader, lambda ev: healths(ev)[-1].health == Health.OFFLINE, events)
            second = MercurySimulator(link=link).start()  # a new pty behind the same name
            try:
                second.place(FIELD[2])
                collect(reader, lambda ev: any(isinstance(e, TagRead) and e.epc == FIELD[2].epc for e in ev),
                        events)
            finally:
                reader.stop()
                second.stop()
    finally:
        first.stop()
    assert [h.health for h in healths(events)][:3] == [Health.ONLINE, Health.OFFLINE, Health.ONLINE]

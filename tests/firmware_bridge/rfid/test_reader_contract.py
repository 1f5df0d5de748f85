"""The TagReader contract, back to back: one suite, run by subclassing on every reader kind's real transport
(LLRP on loopback TCP, Mercury on a pty), against the product simulators speaking the same bytes."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from firmware_bridge.backoff import Backoff
from firmware_bridge.errors import BridgeError
from firmware_bridge.events import Health, HealthEvent
from firmware_bridge.health import now_us
from firmware_bridge.rfid import llrp_simulator, mercury_simulator
from firmware_bridge.rfid.llrp_reader import LlrpReader
from firmware_bridge.rfid.llrp_simulator import LlrpSimulator
from firmware_bridge.rfid.mercury_codec import Op
from firmware_bridge.rfid.mercury_reader import MercuryReader
from firmware_bridge.rfid.mercury_simulator import MercurySimulator
from firmware_bridge.rfid.reader import TagReader
from tests.firmware_bridge.helpers import collect, drain, healths, round_ends, rows, wait_for

FAST = Backoff(initial_s=0.02, max_s=0.2)
TAGS = {"3034257BF7194E4000000001": 1, "3034257BF7194E4000000002": 1, "3034257BF7194E4000000003": 2}
HELD = "E28011700000020A0000BEEF"


class ReaderContract:
    """What every reader kind promises; a subclass supplies the transport-specific hooks."""

    ANTENNAS: ClassVar[tuple[int, ...]] = (1, 2)
    ON_DEMAND: ClassVar[bool] = True  # inventory() answers (handheld kinds); streaming-only kinds refuse it

    # ---- hooks
    def simulator(self) -> Any:
        raise NotImplementedError

    def reader(self, sim: Any, **options: Any) -> TagReader:
        raise NotImplementedError

    def dead_reader(self) -> TagReader:
        raise NotImplementedError

    def place(self, sim: Any, epc: str, antenna: int) -> None:
        raise NotImplementedError

    def remove(self, sim: Any, epc: str) -> None:
        sim.remove(epc)

    def hold_a_read_through_an_outage(self, sim: Any, reader: TagReader, events: list[object]) -> None:
        """Cut the link, have the reader read HELD meanwhile, remove it, restore the link."""
        raise NotImplementedError

    def garble(self, sim: Any) -> None:
        raise NotImplementedError

    @pytest.fixture
    def sim(self) -> Iterator[Any]:
        sim = self.simulator()
        try:
            yield sim
        finally:
            sim.stop()

    # ---- the contract
    def test_identify_says_what_the_reader_is(self, sim: Any) -> None:
        identity = self.reader(sim).identify()
        assert identity.firmware and identity.antennas >= 1 and identity.maker

    def test_streams_every_tag_with_antenna_rssi_and_time(self, sim: Any) -> None:
        for epc, antenna in TAGS.items():
            self.place(sim, epc, antenna)
        started = now_us()
        with self.reader(sim) as reader:
            events = collect(reader, lambda ev: {r.epc for r in rows(ev)} >= set(TAGS))
        assert healths(events)[0] is Health.ONLINE
        for r in rows(events):
            assert r.antenna == TAGS[r.epc] and -80 <= r.rssi_dbm <= -20 and not r.stale
            assert started - 1_000_000 <= r.time_us <= now_us()

    def test_each_round_end_follows_every_present_tag_of_that_round(self, sim: Any) -> None:
        for epc, antenna in TAGS.items():
            self.place(sim, epc, antenna)
        with self.reader(sim) as reader:
            events = collect(reader, lambda ev: all(sum(e.antenna == a for e in round_ends(ev)) >= 4
                                                    for a in self.ANTENNAS))
        for antenna in self.ANTENNAS:
            expected = {e for e, a in TAGS.items() if a == antenna}
            ends = [i for i, e in enumerate(events) if e in round_ends(events) and e.antenna == antenna]
            for before, after in itertools.pairwise(ends[1:]):
                seen = {r.epc for r in rows(events[before + 1 : after]) if r.antenna == antenna}
                assert seen == expected, f"antenna {antenna}: a round ended without {expected - seen}"
        ends_at = [e.time_us for e in round_ends(events)]
        assert ends_at == sorted(ends_at) and not any(e.stale for e in round_ends(events))

    def test_tid_is_read_when_asked(self, sim: Any) -> None:
        self.place(sim, "3034257BF7194E4000000009", 1)
        with self.reader(sim, read_tid=True) as reader:
            events = collect(reader, lambda ev: bool(rows(ev)))
        tid = rows(events)[0].tid
        assert tid is not None and len(tid) == 24 and tid.endswith("194E4000000009")

    def test_inventory_on_demand(self, sim: Any) -> None:
        for epc, antenna in TAGS.items():
            self.place(sim, epc, antenna)
        reader = self.reader(sim)
        try:
            if not self.ON_DEMAND:
                with pytest.raises(NotImplementedError):
                    reader.inventory()
                return
            found = reader.inventory()
        finally:
            reader.stop()
        assert set(found.epc_hex()) == set(TAGS) and not found.stale.any()

    def test_outage_is_offline_then_online_and_held_reads_arrive_stale(self, sim: Any) -> None:
        self.place(sim, "3034257BF7194E4000000001", 1)
        with self.reader(sim) as reader:
            events = collect(reader, lambda ev: bool(rows(ev)))
            self.hold_a_read_through_an_outage(sim, reader, events)
            collect(reader, lambda ev: any(r.epc == HELD for r in rows(ev)) and healths(ev)[-1] is Health.ONLINE,
                    into=events)
            drain(reader, events, 0.2)
        assert healths(events)[:3] == [Health.ONLINE, Health.OFFLINE, Health.ONLINE]
        held = [r for r in rows(events) if r.epc == HELD]
        assert held and all(r.stale for r in held)  # read while the link was down: late, not live

    def test_unreachable_reader_is_offline_with_a_reason(self) -> None:
        reader = self.dead_reader()
        with reader:
            events = collect(reader, lambda ev: Health.OFFLINE in healths(ev))
        reason = next(e.reason for e in events if isinstance(e, HealthEvent))
        assert reason and reason != "driver stopped"
        with pytest.raises(BridgeError):
            self.dead_reader().identify()

    def test_nonsense_on_the_link_is_counted_and_survived(self, sim: Any) -> None:
        self.place(sim, "3034257BF7194E4000000001", 1)
        with self.reader(sim) as reader:
            events = collect(reader, lambda ev: bool(rows(ev)))
            self.garble(sim)
            assert wait_for(lambda: reader.framing_errors >= 1, 10)
            before = len(rows(drain(reader, events, 0.0)))
            collect(reader, lambda ev: len(rows(ev)) > before + 2 and healths(ev)[-1] is Health.ONLINE, into=events)

    def test_stop_is_prompt_and_final(self, sim: Any) -> None:
        reader = self.reader(sim).start()
        collect(reader, lambda ev: Health.ONLINE in healths(ev))
        started = time.monotonic()
        reader.stop()
        assert time.monotonic() - started < 10 and not reader.running
        assert healths(drain(reader, [], 0.1))[-1:] == [Health.OFFLINE]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestLlrpReader(ReaderContract):
    """LlrpReader against LlrpSimulator on loopback TCP."""

    ON_DEMAND = False

    def simulator(self) -> LlrpSimulator:
        return LlrpSimulator(antennas=2).start()

    def reader(self, sim: LlrpSimulator, **options: Any) -> LlrpReader:
        return LlrpReader("portal", "127.0.0.1", sim.port, antennas=self.ANTENNAS, keepalive_s=0.2,
                          reply_timeout_s=1.0, backoff=FAST, **options)

    def dead_reader(self) -> LlrpReader:
        return LlrpReader("gone", "127.0.0.1", _free_port(), reply_timeout_s=0.3, backoff=FAST)

    def place(self, sim: LlrpSimulator, epc: str, antenna: int) -> None:
        sim.place(llrp_simulator.FieldTag(epc, antenna, -50 - antenna))

    def hold_a_read_through_an_outage(self, sim: LlrpSimulator, reader: TagReader, events: list[object]) -> None:
        sim.drop_link(refuse_for_s=60)
        collect(reader, lambda ev: healths(ev)[-1:] == [Health.OFFLINE], into=events)
        rounds = sim.rounds_completed
        self.place(sim, HELD, 2)  # read by the reader's own inventory while nobody is connected
        assert wait_for(lambda: sim.rounds_completed >= rounds + 4 and sim.held_reports > 0, 10)
        self.remove(sim, HELD)
        sim.allow_connections()

    def garble(self, sim: LlrpSimulator) -> None:
        sim.send_garbage(b"\xde\xad\xbe\xef" * 4)


class TestMercuryReader(ReaderContract):
    """MercuryReader against MercurySimulator on a pty."""

    def simulator(self) -> MercurySimulator:
        return MercurySimulator().start()

    def reader(self, sim: MercurySimulator, **options: Any) -> MercuryReader:
        return MercuryReader("hand", sim.path, antennas=self.ANTENNAS, reply_timeout_s=0.3, backoff=FAST,
                             **options)

    def dead_reader(self) -> MercuryReader:
        return MercuryReader("gone", "/dev/does-not-exist-custodian", reply_timeout_s=0.1, backoff=FAST)

    def place(self, sim: MercurySimulator, epc: str, antenna: int) -> None:
        sim.place(mercury_simulator.FieldTag(epc, antenna, -50 - antenna))

    def hold_a_read_through_an_outage(self, sim: MercurySimulator, reader: TagReader, events: list[object]) -> None:
        for antenna in self.ANTENNAS:  # whichever antenna's round comes next finds it
            self.place(sim, HELD, antenna)
        sim.mute_after(Op.READ_TAG_MULTIPLE)  # the module finds HELD, buffers it, then stops answering
        collect(reader, lambda ev: healths(ev)[-1:] == [Health.OFFLINE], into=events)
        self.remove(sim, HELD)
        assert sim.buffered >= 1
        sim.mute(False)

    def garble(self, sim: MercurySimulator) -> None:
        sim.garble(2)

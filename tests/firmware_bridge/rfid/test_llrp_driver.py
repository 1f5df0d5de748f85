"""LlrpReader against LlrpSimulator over loopback TCP: tags, keepalives, link loss and bad input."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable

from firmware_bridge.backoff import Backoff
from firmware_bridge.events import Health, HealthEvent, TagRead
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_reader import LlrpReader, RfidEvent
from firmware_bridge.rfid.llrp_simulator import LlrpSimulator, WalkStep, derived_tid

FAST = Backoff(initial_s=0.02, max_s=0.2)


def collect(reader: LlrpReader, until: Callable[[list[RfidEvent]], bool], timeout_s: float = 10.0,
            into: list[RfidEvent] | None = None) -> list[RfidEvent]:
    """Drain the reader's events until `until(events)` holds; fail after `timeout_s`."""
    events = [] if into is None else into
    deadline = time.monotonic() + timeout_s
    while not until(events):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"condition not met; events so far: {events[-5:]}"
        try:
            events.append(reader.events.get(timeout=min(remaining, 0.2)))
        except queue.Empty:
            continue
    return events


def tags(events: list[RfidEvent]) -> list[TagRead]:
    return [e for e in events if isinstance(e, TagRead)]


def healths(events: list[RfidEvent]) -> list[Health]:
    return [e.health for e in events if isinstance(e, HealthEvent)]


def walk(n: int, start_s: float = 0.0, gap_s: float = 0.01, prefix: str = "3034") -> list[WalkStep]:
    return [WalkStep(start_s + i * gap_s, f"{prefix}{i:020X}", 1 + i % 4, -45 - i % 20) for i in range(n)]


def test_tags_arrive_with_antenna_rssi_time_and_tid() -> None:
    steps = walk(12)
    with LlrpSimulator(steps) as sim:
        reader = LlrpReader("portal", "127.0.0.1", sim.port, read_tid=True, backoff=FAST)
        with reader:
            events = collect(reader, lambda ev: len(tags(ev)) >= 12)
    got = {t.epc: t for t in tags(events)}
    assert set(got) == {s.epc for s in steps}
    for s in steps:
        read = got[s.epc]
        assert (read.antenna, read.rssi_dbm, read.stale) == (s.antenna, float(s.rssi_dbm), False)
        assert read.tid == derived_tid(bytes.fromhex(s.epc))[:12].hex().upper()
    times = [got[s.epc].time_us for s in steps]
    assert times == sorted(times)  # first-seen stamps follow the walk
    assert healths(events)[0] == Health.ONLINE


def test_antennas_outside_the_rospec_are_not_reported() -> None:
    steps = walk(8)
    with LlrpSimulator(steps) as sim:
        reader = LlrpReader("portal", "127.0.0.1", sim.port, antennas=(1, 2), backoff=FAST)
        with reader:
            events = collect(reader, lambda ev: len(tags(ev)) >= 4)
            time.sleep(0.2)  # the rest of the walk (antennas 3, 4) would have arrived by now
            while not reader.events.empty():
                events.append(reader.events.get())
    assert {t.antenna for t in tags(events)} == {1, 2}
    assert len(tags(events)) == 4


def test_keepalives_are_acknowledged() -> None:
    sim = LlrpSimulator().start()
    try:
        with LlrpReader("portal", "127.0.0.1", sim.port, keepalive_s=0.05, backoff=FAST) as reader:
            collect(reader, lambda ev: Health.ONLINE in healths(ev))
            deadline = time.monotonic() + 5
            while sim.keepalive_acks < 3:
                assert time.monotonic() < deadline, "no keepalive acknowledged"
                time.sleep(0.02)
    finally:
        sim.stop()


def test_dropped_link_goes_offline_then_online_and_loses_no_held_report() -> None:
    live = walk(5, gap_s=0.01)
    sim = LlrpSimulator(live).start()
    try:
        with LlrpReader("portal", "127.0.0.1", sim.port, keepalive_s=0.2, backoff=FAST) as reader:
            events = collect(reader, lambda ev: len(tags(ev)) >= 5)
            sim.drop_link(refuse_for_s=0.5)
            collect(reader, lambda ev: healths(ev)[-1:] == [Health.OFFLINE], into=events)
            # Read while nobody is connected: the simulated reader must hold these.
            held = walk(6, start_s=0.0, prefix="E200")
            sim.add_walk(held)
            collect(reader, lambda ev: len(tags(ev)) >= 11, into=events)
    finally:
        sim.stop()
    assert healths(events)[:3] == [Health.ONLINE, Health.OFFLINE, Health.ONLINE]
    assert sim.connections >= 2
    assert sim.reports_sent == len(live) + len(held)  # each report delivered once
    stale = {t.epc for t in tags(events) if t.stale}
    assert stale == {s.epc for s in held}  # every held report arrived, and is marked as not live
    assert {t.epc for t in tags(events) if not t.stale} == {s.epc for s in live}


def test_wedged_reader_is_caught_by_the_keepalive_watchdog() -> None:
    sim = LlrpSimulator().start()
    try:
        reader = LlrpReader("portal", "127.0.0.1", sim.port, keepalive_s=0.1, reply_timeout_s=0.3, backoff=FAST)
        with reader:
            events = collect(reader, lambda ev: Health.ONLINE in healths(ev) and sim.keepalive_acks > 0)
            sim.hang(1.5)
            collect(reader, lambda ev: healths(ev)[-1:] == [Health.OFFLINE], into=events)
            collect(reader, lambda ev: healths(ev)[-1:] == [Health.ONLINE], into=events)
    finally:
        sim.stop()
    reasons = [e.reason for e in events if isinstance(e, HealthEvent)]
    assert "keepalive missed" in reasons[1]


def test_second_client_is_refused_while_one_is_connected() -> None:
    with LlrpSimulator() as sim, LlrpReader("a", "127.0.0.1", sim.port, backoff=FAST) as first:
        collect(first, lambda ev: Health.ONLINE in healths(ev))
        second = LlrpReader("b", "127.0.0.1", sim.port, backoff=FAST)
        with second:
            events = collect(second, lambda ev: Health.OFFLINE in healths(ev))
        reasons = [e.reason for e in events if isinstance(e, HealthEvent)]
        assert any("refused the connection (status 4)" in r for r in reasons)


class NonsenseServer:
    """Accepts one LLRP client, greets it properly, then sends `payload` (garbage or a flood)."""

    def __init__(self, payload: bytes) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._payload = payload
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            greet = llrp.reader_event_body(0, llrp.connection_attempt_event(llrp.CONNECTION_SUCCESS))
            conn.sendall(llrp.encode(llrp.Msg.READER_EVENT_NOTIFICATION, 0, greet))
            header = conn.recv(10)  # GET_READER_CAPABILITIES
            msg_id = int.from_bytes(header[6:10], "big")
            caps = llrp.capabilities_response_body(2, 0, 9, "liar")
            conn.sendall(llrp.encode(llrp.Msg.GET_READER_CAPABILITIES_RESPONSE, msg_id, caps) + self._payload)
            conn.settimeout(2)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    def close(self) -> None:
        self._thread.join(timeout=5)
        self._listener.close()


def test_reader_answering_nonsense_is_counted_and_dropped() -> None:
    server = NonsenseServer(b"\xde\xad\xbe\xef" * 8)
    try:
        reader = LlrpReader("liar", "127.0.0.1", server.port, backoff=Backoff(initial_s=5, max_s=5))
        with reader:
            events = collect(reader, lambda ev: healths(ev)[-1:] == [Health.OFFLINE])
    finally:
        server.close()
    assert reader.framing_errors == 1
    assert "framing error" in [e.reason for e in events if isinstance(e, HealthEvent)][-1]

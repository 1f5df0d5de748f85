"""LlrpReader against LlrpSimulator over loopback TCP: profiles, fallbacks, rounds, keepalives, link loss."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from firmware_bridge.backoff import Backoff
from firmware_bridge.events import Health, HealthEvent
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_codec import RoundReporting
from firmware_bridge.rfid.llrp_reader import LlrpReader
from firmware_bridge.rfid.llrp_simulator import FieldTag, LlrpSimulator, WalkStep, derived_tid
from tests.firmware_bridge.helpers import collect, drain, healths, round_ends, rows, wait_for

FAST = Backoff(initial_s=0.02, max_s=0.2)


def walk(n: int, start_s: float = 0.0, gap_s: float = 0.01, prefix: str = "3034") -> list[WalkStep]:
    return [WalkStep(start_s + i * gap_s, f"{prefix}{i:020X}", 1 + i % 4, -45 - i % 20) for i in range(n)]


def online_reason(events: list[object]) -> str:
    return next(e.reason for e in events if isinstance(e, HealthEvent) and e.health is Health.ONLINE)


def test_walk_reads_arrive_with_antenna_rssi_time_and_tid() -> None:
    steps = walk(12)
    with LlrpSimulator(steps) as sim, LlrpReader("portal", "127.0.0.1", sim.port, read_tid=True,
                                                 backoff=FAST) as reader:
        events = collect(reader, lambda ev: len(rows(ev)) >= 12)
    got = {r.epc: r for r in rows(events)}
    assert set(got) == {s.epc for s in steps}
    for s in steps:
        read = got[s.epc]
        assert (read.antenna, read.rssi_dbm, read.stale) == (s.antenna, float(s.rssi_dbm), False)
        assert read.tid == derived_tid(bytes.fromhex(s.epc))[:12].hex().upper()
    times = [got[s.epc].time_us for s in steps]
    assert times == sorted(times)  # first-seen stamps follow the walk


def test_antennas_outside_the_rospec_are_not_reported() -> None:
    steps = walk(8)
    with LlrpSimulator(steps) as sim, LlrpReader("portal", "127.0.0.1", sim.port, antennas=(1, 2),
                                                 backoff=FAST) as reader:
        events = collect(reader, lambda ev: len(rows(ev)) >= 4)
        drain(reader, events, 0.3)  # the rest of the walk (antennas 3, 4) would have arrived by now
    assert {r.antenna for r in rows(events)} == {1, 2} and len(rows(events)) == 4
    assert {e.antenna for e in round_ends(events)} == {1, 2}


@pytest.mark.parametrize(("maker", "profile", "search", "session", "tid"), [
    (0, "generic", "reader default", 0, "access spec"),
    (llrp.IMPINJ_PEN, "impinj", "dual_target", 1, "in the report"),
    (llrp.ZEBRA_PEN, "zebra", "reader default", 0, "access spec"),
])
def test_profile_is_chosen_by_the_maker_the_reader_announces(maker: int, profile: str, search: str, session: int,
                                                             tid: str) -> None:
    with LlrpSimulator(manufacturer=maker) as sim:
        sim.place(FieldTag("3034257BF7194E4000001A85", 1, -50))
        with LlrpReader("portal", "127.0.0.1", sim.port, read_tid=True, backoff=FAST) as reader:
            events = collect(reader, lambda ev: len(rows(ev)) >= 3 and len(round_ends(ev)) >= 8)
    n = reader.negotiated
    assert n is not None and (n.profile, n.search_mode, n.session, n.tid, n.rounds) == (
        profile, search, session, tid, RoundReporting.AISPEC_END)
    assert not n.fallbacks and f"profile {profile}" in online_reason(events)
    read = rows(events)[0]
    assert read.tid == derived_tid(bytes.fromhex(read.epc)).hex().upper()
    if profile == "impinj":  # Octane report content: phase angle, sub-dBm RSSI
        assert read.phase_rad is not None and 0 <= read.phase_rad < 6.3
    else:
        assert read.phase_rad is None


@pytest.mark.parametrize(("rejects", "rounds", "gave_up"), [
    (("tag_observation",), RoundReporting.DURATION, "Duration AISpecs"),
    (("tag_observation", "duration_stop"), RoundReporting.NONE, "no round ends"),
    (("reader_events",), RoundReporting.NONE, "events refused"),
])
def test_a_reader_refusing_round_reporting_is_asked_again_more_simply(rejects: tuple[str, ...],
                                                                      rounds: RoundReporting, gave_up: str) -> None:
    with LlrpSimulator(rejects=rejects) as sim:
        sim.place(FieldTag("3034257BF7194E4000001A85", 1, -50))
        with LlrpReader("portal", "127.0.0.1", sim.port, antennas=(1, 2), backoff=FAST) as reader:
            events = collect(reader, lambda ev: len(rows(ev)) >= 3)
            if rounds is RoundReporting.DURATION:
                collect(reader, lambda ev: {e.antenna for e in round_ends(ev)} == {1, 2}, into=events)
    assert reader.negotiated is not None and reader.negotiated.rounds is rounds
    assert any(gave_up in f for f in reader.negotiated.fallbacks), reader.negotiated.fallbacks
    assert gave_up in online_reason(events)
    if rounds is RoundReporting.NONE:
        assert not round_ends(events)  # never a round end that was not one


def test_octane_parameters_refused_fall_back_to_session_0() -> None:
    with LlrpSimulator(manufacturer=llrp.IMPINJ_PEN, rejects=("custom_parameters",)) as sim:
        sim.place(FieldTag("3034257BF7194E4000001A85", 1, -50))
        with LlrpReader("portal", "127.0.0.1", sim.port, antennas=(1,), backoff=FAST) as reader:
            events = collect(reader, lambda ev: len(round_ends(ev)) >= 6)
    n = reader.negotiated
    assert n is not None and n.session == 0 and n.search_mode == "reader default"
    assert "without Octane parameters, session 0" in n.fallbacks[0]
    # Session 0: the tag answers every round, so every round end after the first follows a read of it.
    assert len(rows(events)) >= len(round_ends(events)) - 1


def test_rounds_come_at_the_rate_of_the_rf_mode() -> None:
    """Fast modes: a few ms per round and antenna for a handful of tags; dense reader modes: tens of ms."""
    rates = {}
    for mode in (0, 3):
        with LlrpSimulator(antennas=1) as sim:
            for i in range(5):
                sim.place(FieldTag(f"3034257BF7194E40000000{i:02X}", 1, -50))
            with LlrpReader("portal", "127.0.0.1", sim.port, antennas=(1,), reader_mode=mode,
                            backoff=FAST) as reader:
                events = collect(reader, lambda ev: len(round_ends(ev)) >= 20)
        ends = [e.time_us for e in round_ends(events)]
        rates[mode] = (ends[-1] - ends[0]) / (len(ends) - 1) / 1000  # ms per round, reader clock
        assert reader.negotiated is not None and reader.negotiated.mode_index == mode
    assert 2 <= rates[0] <= 10, rates
    assert 20 <= rates[3] <= 60, rates


def test_single_target_search_reads_a_resting_tag_once_dual_target_every_round() -> None:
    seen = {}
    for search in ("single_target", "dual_target"):
        with LlrpSimulator(manufacturer=llrp.IMPINJ_PEN, antennas=1) as sim:
            sim.place(FieldTag("3034257BF7194E4000001A85", 1, -50))
            with LlrpReader("portal", "127.0.0.1", sim.port, antennas=(1,), session=2, search_mode=search,
                            backoff=FAST) as reader:
                events = collect(reader, lambda ev: len(round_ends(ev)) >= 10)
        seen[search] = len(rows(events))
    assert seen["single_target"] == 1  # session 2 keeps its inventoried flag: nothing new proves nothing
    assert seen["dual_target"] >= 9


def test_unknown_reader_mode_is_not_sent() -> None:
    with LlrpSimulator() as sim, LlrpReader("portal", "127.0.0.1", sim.port, reader_mode=4242,
                                            backoff=FAST) as reader:
        collect(reader, lambda ev: Health.ONLINE in healths(ev))
    assert reader.negotiated is not None and reader.negotiated.mode_index is None
    assert "reader mode 4242 not in the reader's mode table" in reader.negotiated.fallbacks[0]


def test_keepalives_are_acknowledged() -> None:
    with LlrpSimulator() as sim, LlrpReader("portal", "127.0.0.1", sim.port, keepalive_s=0.05,
                                            backoff=FAST) as reader:
        collect(reader, lambda ev: Health.ONLINE in healths(ev))
        assert wait_for(lambda: sim.keepalive_acks >= 3, 10), "no keepalive acknowledged"


def test_wedged_reader_is_caught_by_the_keepalive_watchdog() -> None:
    with LlrpSimulator() as sim:
        reader = LlrpReader("portal", "127.0.0.1", sim.port, keepalive_s=0.1, reply_timeout_s=0.3, backoff=FAST)
        with reader:
            events = collect(reader, lambda ev: Health.ONLINE in healths(ev) and sim.keepalive_acks > 0)
            sim.hang(1.5)
            collect(reader, lambda ev: healths(ev)[-1:] == [Health.OFFLINE], into=events)
            collect(reader, lambda ev: healths(ev)[-1:] == [Health.ONLINE], into=events)
    reasons = [e.reason for e in events if isinstance(e, HealthEvent)]
    assert "keepalive missed" in reasons[1]


def test_second_client_is_refused_with_the_llrp_status_for_it() -> None:
    with LlrpSimulator() as sim, LlrpReader("a", "127.0.0.1", sim.port, backoff=FAST) as first:
        collect(first, lambda ev: Health.ONLINE in healths(ev))
        with LlrpReader("b", "127.0.0.1", sim.port, backoff=FAST) as second:
            events = collect(second, lambda ev: Health.OFFLINE in healths(ev))
        reasons = [e.reason for e in events if isinstance(e, HealthEvent)]
        assert any("failed client initiated connection exists (status 2)" in r for r in reasons), reasons
        assert wait_for(lambda: first.other_clients_refused >= 1, 5)  # status 4 told the one holding it


def test_status_codes_are_the_llrp_values() -> None:
    assert (llrp.Status.M_PARAMETER_ERROR, llrp.Status.M_UNSUPPORTED_MESSAGE, llrp.Status.P_FIELD_ERROR,
            llrp.Status.A_INVALID, llrp.Status.R_DEVICE_ERROR) == (100, 109, 201, 300, 401)
    assert [s.value for s in llrp.ConnectionStatus] == [0, 1, 2, 3, 4]


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
            greet = llrp.reader_event_body(0, llrp.connection_attempt_event(llrp.ConnectionStatus.SUCCESS))
            conn.sendall(llrp.encode(llrp.Msg.READER_EVENT_NOTIFICATION, 0, greet))
            header = conn.recv(10)  # GET_READER_CAPABILITIES
            msg_id = int.from_bytes(header[6:10], "big")
            caps = llrp.capabilities_response_body(llrp.ReaderDescription(2, 0, 9, "liar"))
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


def test_round_watchdog_degrades_a_reader_that_never_ends_a_round() -> None:
    with LlrpSimulator() as sim:
        reader = LlrpReader("portal", "127.0.0.1", sim.port, round_watchdog_s=0.3, reply_timeout_s=0.5, backoff=FAST)
        with reader:
            collect(reader, lambda ev: Health.ONLINE in healths(ev))
            sim.hang(60)  # the radio stops; keepalives would catch a dead link later, rounds catch it first
            events = collect(reader, lambda ev: Health.DEGRADED in healths(ev), timeout_s=10)
            time.sleep(0.01)
    assert "no inventory round reported" in [e.reason for e in events if isinstance(e, HealthEvent)][-1]


def test_a_reader_that_runs_an_immediate_rospec_only_once_is_restarted_by_the_host() -> None:
    with LlrpSimulator(immediate_restart=False) as sim:
        sim.place(FieldTag("3034257BF7194E4000001A85", 1, -50))
        with LlrpReader("portal", "127.0.0.1", sim.port, antennas=(1, 2), backoff=FAST) as reader:
            events = collect(reader, lambda ev: len(round_ends(ev)) >= 10)
    assert reader.host_restarts >= 4  # one per pass over the two antennas
    assert healths(events) == [Health.ONLINE]

"""Common layer: back-off, health tracking, transports with reconnection, leak guard."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pytest

from firmware_bridge.backoff import Backoff, RetrySchedule
from firmware_bridge.errors import TransportError
from firmware_bridge.events import Health, HealthEvent
from firmware_bridge.health import HealthTracker
from firmware_bridge.transport import PtyPair, ReconnectingPort, open_port
from tests import leaks as leak_guard


def wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_backoff_grows_caps_and_jitters_within_bounds() -> None:
    backoff = Backoff(initial_s=0.1, max_s=1.0, factor=2.0, jitter=0.5)
    rng = random.Random(7)
    for attempt in range(10):
        nominal = min(1.0, 0.1 * 2**attempt)
        delays = [backoff.delay_s(attempt, rng) for _ in range(50)]
        assert all(nominal * 0.5 <= d <= nominal for d in delays)
        assert len(set(delays)) > 1  # jitter actually spreads retries


def test_retry_schedule_is_due_only_after_the_delay() -> None:
    schedule = RetrySchedule(Backoff(initial_s=1.0, jitter=0.0))
    assert schedule.due(now=0.0)
    assert schedule.failed(now=10.0) == 1.0
    assert not schedule.due(now=10.5)
    assert schedule.due(now=11.0)
    assert schedule.failed(now=11.0) == 2.0
    schedule.succeeded()
    assert schedule.due(now=11.0)


def test_health_publishes_only_on_change() -> None:
    seen: list[HealthEvent] = []
    tracker = HealthTracker("door-1", seen.append, clock=lambda: 42)
    assert tracker.health is Health.OFFLINE
    tracker.online()
    tracker.online()
    tracker.degraded("3 framing errors")
    tracker.degraded("3 framing errors")
    tracker.offline("no reply for 8 s")
    assert [(e.health, e.reason) for e in seen] == [
        (Health.ONLINE, "answering"),
        (Health.DEGRADED, "3 framing errors"),
        (Health.OFFLINE, "no reply for 8 s"),
    ]
    assert all(e.device == "door-1" and e.time_us == 42 for e in seen)
    assert tracker.count("framing") == 1 and tracker.count("framing", 2) == 3


def test_open_port_maps_failure_to_transport_error(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="cannot open"):
        open_port(str(tmp_path / "ttyNOPE"))


def test_pty_both_directions_and_reconnect_under_a_stable_link(tmp_path: Path) -> None:
    link = tmp_path / "ttyPANEL"
    changes: list[bool] = []
    port = ReconnectingPort(str(link), backoff=Backoff(initial_s=0.01, max_s=0.05),
                            listener=lambda up, _reason: changes.append(up))
    pty = PtyPair(link)
    try:
        assert port.write(b"\x53hello") == 6
        sent = bytearray()
        assert wait_for(lambda: sent.extend(pty.read(64)) or bytes(sent) == b"\x53hello", 2.0)
        pty.write(b"reply")
        got = b""
        deadline = time.monotonic() + 2
        while got != b"reply" and time.monotonic() < deadline:
            got += port.read(64)
        assert got == b"reply"
        pty.close()  # the simulator dies
        assert wait_for(lambda: (port.read(16), not port.connected)[1], 2.0)
        pty = PtyPair(link)  # and comes back on a new pty, same name
        assert wait_for(lambda: (port.read(16), port.connected)[1], 2.0)
        pty.write(b"again")
        got = b""
        deadline = time.monotonic() + 2
        while got != b"again" and time.monotonic() < deadline:
            got += port.read(64)
        assert got == b"again"
        assert changes == [True, False, True]
    finally:
        port.close()
        pty.close()


def test_socket_url_reaches_a_loopback_server() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            received.append(conn.recv(16))
            conn.sendall(b"pong")

    thread = threading.Thread(target=serve)
    thread.start()
    port = ReconnectingPort(url)
    try:
        assert port.write(b"ping") == 4
        got = b""
        deadline = time.monotonic() + 2
        while got != b"pong" and time.monotonic() < deadline:
            got += port.read(16)
        assert got == b"pong"
    finally:
        port.close()
        thread.join(2)
        server.close()
    assert received == [b"ping"]


def test_leak_guard_reports_a_listening_port_and_a_thread() -> None:
    threads_before = set(threading.enumerate())
    fds_before = leak_guard._fds()
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="leaky")
    thread.start()
    try:
        problems = leak_guard._leaks(threads_before, fds_before)
        assert any("listening port" in p for p in problems)
        assert any("thread left running: leaky" in p for p in problems)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert leak_guard._leaks(threads_before, fds_before) == []

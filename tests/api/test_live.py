"""The live feed over a real socket: uvicorn on a loopback port, an SSE client reading what the bus publishes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx

from controllers.bus import LiveBus, LiveKind, Severity
from tests.api.conftest import PASSWORD, LiveServer


def bearer(server: LiveServer, username: str) -> dict[str, str]:
    response = httpx.post(f"{server.url}/api/token", data={"username": username, "password": PASSWORD})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def events(lines: Iterator[str]) -> Iterator[tuple[str, str, dict[str, object]]]:
    """(id, event name, data) for each complete server-sent event."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield fields.get("id", ""), fields.get("event", "message"), json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def publish_alarm(bus: LiveBus, title: str, alarm_id: int) -> int:
    details = (("person", "Bob Researcher"), ("items", "S-2026-002/1"))
    event = bus.publish(
        LiveKind.ALARM, Severity.CRITICAL, 1_700_000_000_000_000, "main-exit", title, details, None, alarm_id
    )
    return event.seq


def wait_unsubscribed(bus: LiveBus) -> bool:
    deadline = time.monotonic() + 10
    while bus._subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    return not bus._subscribers


def test_sse_replays_history_then_delivers_new_bus_events(live_server: LiveServer, bus: LiveBus) -> None:
    before = publish_alarm(bus, "Exit blocked: no approval", 11)
    headers = bearer(live_server, "gus")
    with httpx.Client(timeout=10) as client, client.stream("GET", f"{live_server.url}/api/live", headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        stream = events(r.iter_lines())
        seq, name, data = next(stream)
        assert (int(seq), name, data["title"], data["alarm_id"]) == (before, "alarm", "Exit blocked: no approval", 11)
        after = publish_alarm(bus, "Tailgating at main exit", 12)
        seq, name, data = next(stream)
        assert (int(seq), data["title"], data["details"]) == (
            after,
            "Tailgating at main exit",
            [["person", "Bob Researcher"], ["items", "S-2026-002/1"]],
        )
    assert wait_unsubscribed(bus), "the closed stream left a subscriber on the bus"


def test_sse_resumes_after_last_event_id(live_server: LiveServer, bus: LiveBus) -> None:
    first = publish_alarm(bus, "first", 1)
    second = publish_alarm(bus, "second", 2)
    headers = {**bearer(live_server, "audrey"), "Last-Event-ID": str(first)}
    with httpx.Client(timeout=10) as client, client.stream("GET", f"{live_server.url}/api/live", headers=headers) as r:
        seq, _name, data = next(events(r.iter_lines()))
        assert (int(seq), data["title"]) == (second, "second")
    assert wait_unsubscribed(bus)


def test_sse_refuses_roles_that_do_not_watch_the_site(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/api/live", headers=bearer(live_server, "otto"), timeout=10)
    assert response.status_code == 403
    assert httpx.get(f"{live_server.url}/api/live", timeout=10).status_code == 401

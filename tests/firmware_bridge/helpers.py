"""Helpers shared by the firmware_bridge tests: wait for a condition (never assert on time), read events."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from firmware_bridge.events import Health, HealthEvent, InventoryRoundEnd, TagBatch
from firmware_bridge.rfid.reader import TagReader

T = TypeVar("T")


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def next_matching(get: Callable[[float], object | None], kind: type[T],
                  predicate: Callable[[T], bool] = lambda _e: True, timeout_s: float = 20.0,
                  seen: list[object] | None = None) -> T:
    """Read events until one of `kind` satisfies `predicate`; fail if none comes in time.

    Events passed over are appended to `seen` when given. The generous default timeout is for a
    shared, loaded machine; a passing test returns as soon as the event arrives.
    """
    deadline = time.monotonic() + timeout_s
    seen = [] if seen is None else seen
    while time.monotonic() < deadline:
        event = get(0.05)
        if isinstance(event, kind) and predicate(event):
            return event
        if event is not None:
            seen.append(event)
    raise AssertionError(f"no matching {kind.__name__} within {timeout_s} s; saw {seen}")


@dataclass(frozen=True, slots=True)
class Row:
    """One tag observation out of a TagBatch, for assertions (tests read rows; the product reads columns)."""

    reader: str
    epc: str
    antenna: int
    rssi_dbm: float
    time_us: int
    tid: str | None
    stale: bool
    phase_rad: float | None


def rows(events: Iterable[object]) -> list[Row]:
    """Every tag observation in `events` (the TagBatches among them), in order."""
    out: list[Row] = []
    for event in events:
        if isinstance(event, TagBatch):
            phases = event.phase_rad.tolist() if event.phase_rad is not None else [None] * len(event)
            out += [Row(event.reader, epc, int(a), float(r), int(t), tid, bool(s), p) for epc, a, r, t, tid, s, p in
                    zip(event.epc_hex(), event.antenna, event.rssi_dbm, event.time_us, event.tid_hex(), event.stale,
                        phases, strict=True)]
    return out


def healths(events: Iterable[object]) -> list[Health]:
    return [e.health for e in events if isinstance(e, HealthEvent)]


def round_ends(events: Iterable[object]) -> list[InventoryRoundEnd]:
    return [e for e in events if isinstance(e, InventoryRoundEnd)]


def collect(reader: TagReader, until: Callable[[list[object]], bool], timeout_s: float = 20.0,
            into: list[object] | None = None) -> list[object]:
    """Drain a reader's events until `until(events)` holds; fail after `timeout_s` (generous: shared machine)."""
    events: list[object] = [] if into is None else into
    deadline = time.monotonic() + timeout_s
    while not until(events):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"condition not met; last events: {events[-5:]}"
        try:
            events.append(reader.events.get(timeout=min(remaining, 0.2)))
        except queue.Empty:
            continue
    return events


def drain(reader: TagReader, into: list[object], seconds: float) -> list[object]:
    """Everything the reader says for `seconds` more."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            into.append(reader.events.get(timeout=min(left, 0.05)))
        except queue.Empty:
            continue
    return into

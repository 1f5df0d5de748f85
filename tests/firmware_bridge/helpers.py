"""Small waiting helpers shared by the firmware_bridge tests (poll a condition, never assert on time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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

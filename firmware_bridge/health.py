"""Per-device health state (online / degraded / offline, with a reason) published as events on change."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from firmware_bridge.events import Health, HealthEvent

HealthSink = Callable[[HealthEvent], None]


def now_us() -> int:
    """Wall-clock time in microseconds since the Unix epoch, the unit of every event's time."""
    return time.time_ns() // 1000


class HealthTracker:
    """Holds one device's health; `set` publishes a HealthEvent only when health or reason changes.

    Starts OFFLINE ("not connected yet") without publishing. Also counts named incidents
    (framing errors, timeouts) so operators and tests can see how often a device misbehaved.
    """

    def __init__(self, device: str, publish: HealthSink, clock: Callable[[], int] = now_us) -> None:
        self.device = device
        self._publish = publish
        self._clock = clock
        self._lock = threading.Lock()
        self._health = Health.OFFLINE
        self._reason = "not connected yet"
        self.counters: Counter[str] = Counter()

    @property
    def health(self) -> Health:
        return self._health

    @property
    def reason(self) -> str:
        return self._reason

    def set(self, health: Health, reason: str) -> HealthEvent | None:
        with self._lock:
            if (health, reason) == (self._health, self._reason):
                return None
            self._health, self._reason = health, reason
            event = HealthEvent(self.device, health, reason, self._clock())
        self._publish(event)
        return event

    def online(self, reason: str = "answering") -> HealthEvent | None:
        return self.set(Health.ONLINE, reason)

    def degraded(self, reason: str) -> HealthEvent | None:
        return self.set(Health.DEGRADED, reason)

    def offline(self, reason: str) -> HealthEvent | None:
        return self.set(Health.OFFLINE, reason)

    def count(self, incident: str, n: int = 1) -> int:
        with self._lock:
            self.counters[incident] += n
            return self.counters[incident]

"""Exponential back-off with jitter, so many devices reconnecting after an outage do not retry in lockstep."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry `attempt` (0-based): initial * factor**attempt, capped, minus random jitter."""

    initial_s: float = 0.05
    max_s: float = 5.0
    factor: float = 2.0
    jitter: float = 0.25  # fraction of the delay that is randomised away

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_s, self.initial_s * self.factor ** max(0, attempt))
        return base * (1.0 - self.jitter * rng.random())


@dataclass(slots=True)
class RetrySchedule:
    """Non-blocking retry bookkeeping for I/O loops that must never sleep (e.g. libosdp's refresh)."""

    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0
    next_at: float = 0.0  # time.monotonic() value before which no retry is due

    def due(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.next_at

    def failed(self, now: float | None = None) -> float:
        """Record a failure; returns the delay until the next attempt is due."""
        delay = self.backoff.delay_s(self.attempt, self.rng)
        self.attempt += 1
        self.next_at = (time.monotonic() if now is None else now) + delay
        return delay

    def succeeded(self) -> None:
        self.attempt = 0
        self.next_at = 0.0

"""The live bus: controllers publish what guards must see; the API's live feed subscribes.

Thread-safe publishing (drivers and controllers run on threads), asyncio consumption (the API). A bounded
history lets a newly opened guard page show what happened just before it connected.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import threading
from collections import deque
from dataclasses import asdict, dataclass, field


class LiveKind(enum.StrEnum):
    DECISION = "decision"
    ALARM = "alarm"
    DOOR = "door"
    HEALTH = "health"
    DESTRUCTION = "destruction"
    ACK = "ack"
    ESCALATION = "escalation"  # an unacknowledged critical alarm, repeated to every station


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One line on a guard console. `details` are (label, value) pairs shown as they are."""

    seq: int
    kind: LiveKind
    severity: Severity
    time_us: int
    source: str  # portal code, device name or station
    title: str
    details: tuple[tuple[str, str], ...] = ()
    image_png_b64: str | None = None  # camera frame at the moment of a blocked exit
    alarm_id: int | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["details"] = [list(pair) for pair in self.details]
        return data


@dataclass
class LiveBus:
    history_size: int = 500
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _history: deque[LiveEvent] = field(init=False)
    _subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[LiveEvent]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._history = deque(maxlen=self.history_size)

    def publish(
        self,
        kind: LiveKind,
        severity: Severity,
        time_us: int,
        source: str,
        title: str,
        details: tuple[tuple[str, str], ...] = (),
        image_png_b64: str | None = None,
        alarm_id: int | None = None,
    ) -> LiveEvent:
        with self._lock:
            event = LiveEvent(next(self._seq), kind, severity, time_us, source, title, details, image_png_b64, alarm_id)
            self._history.append(event)
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            except RuntimeError:  # that subscriber's loop has closed; it will unsubscribe itself
                continue
        return event

    def history(self, after_seq: int = 0) -> list[LiveEvent]:
        with self._lock:
            return [e for e in self._history if e.seq > after_seq]

    def subscribe(self) -> asyncio.Queue[LiveEvent]:
        """Call from inside a running event loop; pair with `unsubscribe`."""
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=10_000)
        with self._lock:
            self._subscribers.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LiveEvent]) -> None:
        with self._lock:
            self._subscribers = [(lp, q) for lp, q in self._subscribers if q is not queue]

"""One contract for every RFID reader, whatever its protocol (python-can's split of bus and backend).

The public methods here own threads, timeouts, health, back-off and the stale flag; a backend (LLRP over
TCP, Mercury over a serial line) overrides a few small internals:

  `_open()`      connect, identify and configure; return the words of the ONLINE health reason
  `_read(t)`     wait up to t seconds for the reader; hand what it said to `_emit_tags` / `_emit_round_end`
  `_close()`     drop the link (and say goodbye where the protocol has a goodbye)
  `_identify()`  what the reader says it is (it may open and close a link of its own)
  `_round()`     one inventory round on demand, for handheld and intake readers (optional)

Events go to `sink` (called on the reader's thread; hand them on quickly), else to the `events` queue:
`TagBatch` for tags, `InventoryRoundEnd` after each complete round, `HealthEvent` on change of health.
Rows a reader held while its link was down are marked stale: anything first seen before the current link
came up, and whatever a backend knows was buffered.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

from firmware_bridge.backoff import Backoff, RetrySchedule
from firmware_bridge.errors import BridgeError, DeviceTimeout, FramingError
from firmware_bridge.events import Health, HealthEvent, InventoryRoundEnd, TagBatch
from firmware_bridge.health import HealthTracker, now_us

log = logging.getLogger(__name__)

ReaderEvent = TagBatch | InventoryRoundEnd | HealthEvent
EventSink = Callable[[ReaderEvent], None]
POLL_S = 0.1  # longest a backend's _read waits, so stop() is noticed promptly


@dataclass(frozen=True, slots=True)
class ReaderIdentity:
    """What a reader says it is, in words for `custodian devices probe`."""

    maker: str
    model: str
    firmware: str
    antennas: int
    detail: str = ""

    def __str__(self) -> str:
        extra = f", {self.detail}" if self.detail else ""
        return f"{self.maker} model {self.model}, firmware {self.firmware}, {self.antennas} antennas{extra}"


class TagReader(ABC):
    """One RFID reader. Start it to stream (portal readers), or call `inventory()` (handhelds)."""

    #: Whether the link survives a framing error (a serial framer resynchronises; a TCP stream does not).
    resynchronises: ClassVar[bool] = False
    #: Seconds to idle between two `_read` calls (a polled serial module), 0 for a streaming reader.
    pause_s: float = 0.0

    def __init__(self, name: str, *, reply_timeout_s: float, backoff: Backoff | None,
                 sink: EventSink | None) -> None:
        self.name = name
        self.reply_timeout_s = reply_timeout_s
        self.events: queue.Queue[ReaderEvent] = queue.Queue()
        self._sink: EventSink = sink or self.events.put
        self.health = HealthTracker(name, self._sink)
        self.tags_received = 0
        self.rounds_completed = 0
        self._schedule = RetrySchedule(backoff or Backoff(initial_s=0.05, max_s=5.0), random.Random())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()  # one conversation with the reader at a time
        self._connected = False
        self._online_since_us = 0
        self._announced = False
        self._early: list[ReaderEvent] = []

    # ------------------------------------------------------------------------------------ public

    def start(self) -> Self:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.reply_timeout_s * 3 + 2)
            self._thread = None
        with self._lock:
            self._disconnect()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def framing_errors(self) -> int:
        return self.health.counters["framing error"]

    def identify(self) -> ReaderIdentity:
        """Ask the reader what it is (connecting if need be); raises BridgeError if it cannot tell."""
        with self._lock:
            return self._identify()

    def inventory(self) -> TagBatch:
        """One inventory round on every configured antenna, now; what the reader found, as one batch.

        Connects (and configures) first if need be. A reader that fails is reported in its health and
        the error raised: a sweep must know it saw nothing, not believe the room is empty.
        """
        with self._lock:
            try:
                self._ensure_connected()
                batches = [self._mark(b) for b in self._round()]
            except FramingError as exc:
                self.health.count("framing error")
                self.health.degraded(f"unreadable reply: {exc}")
                raise
            except (BridgeError, OSError) as exc:
                self.health.count("timeout" if isinstance(exc, DeviceTimeout) else "error")
                self.health.offline(_reason(exc))
                self._disconnect()
                raise
        found = TagBatch.concat(batches) if batches else TagBatch.empty(self.name)
        self.tags_received += len(found)
        return found

    # ------------------------------------------------------------------------------------ backend

    @abstractmethod
    def _open(self) -> str:
        """Connect, identify and configure; return the ONLINE reason (e.g. model and firmware)."""

    @abstractmethod
    def _read(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the reader and emit what it said; raise BridgeError when it fails."""

    @abstractmethod
    def _close(self) -> None:
        """Drop the link; must not raise."""

    @abstractmethod
    def _identify(self) -> ReaderIdentity:
        """What the reader says it is."""

    def _round(self) -> list[TagBatch]:
        """One inventory round per configured antenna (batches without the stale flag set yet)."""
        raise NotImplementedError(f"{type(self).__name__} streams; it has no inventory on demand")

    # ------------------------------------------------------------------------------------ for backends

    def _emit_tags(self, batch: TagBatch) -> None:
        if len(batch):
            self._emit(self._mark(batch))
            self.tags_received += len(batch)

    def _emit_round_end(self, antenna: int, time_us: int | None = None) -> None:
        t = now_us() if time_us is None else time_us
        self.rounds_completed += 1
        self._emit(InventoryRoundEnd(self.name, antenna, t, stale=t < self._online_since_us))

    # ------------------------------------------------------------------------------------ the loop

    def _mark(self, batch: TagBatch) -> TagBatch:
        late = batch.time_us < self._online_since_us
        return batch.marked_stale(late) if late.any() else batch

    def _emit(self, event: ReaderEvent) -> None:
        if not self._announced:  # what a reader flushes on connect follows the ONLINE event
            self._early.append(event)
        else:
            self._sink(event)

    def _ensure_connected(self) -> None:
        if self._connected:
            return
        self._online_since_us = now_us()  # anything first seen before this link was held by the reader
        self._announced = False
        self._early = []
        reason = self._open()
        self._connected = True
        self.health.online(reason)
        self._announced, early = True, self._early
        self._early = []
        for event in early:
            self._sink(event)
        self._schedule.succeeded()

    def _disconnect(self) -> None:
        self._connected = False
        self._announced = True
        try:
            self._close()
        except Exception:  # closing must never fail the caller
            log.exception("closing reader %s failed", self.name)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    self._ensure_connected()
                while not self._stop.is_set():
                    try:
                        with self._lock:
                            self._read(POLL_S)
                    except FramingError as exc:
                        if not self.resynchronises:
                            raise
                        self.health.count("framing error")
                        self.health.degraded(f"unreadable reply: {exc}")
                        self._stop.wait(self._schedule.failed())
                    else:
                        if self.resynchronises and self.health.health is Health.DEGRADED:
                            self.health.online("answering again")
                    if self.pause_s:
                        self._stop.wait(self.pause_s)
            except FramingError as exc:
                self.health.count("framing error")
                self.health.offline(f"link dropped after a framing error: {exc}")
            except (BridgeError, OSError) as exc:
                self.health.count("timeout" if isinstance(exc, DeviceTimeout) else "error")
                self.health.offline(_reason(exc))
            except Exception as exc:  # a bug must not kill the thread silently: report it and retry
                log.exception("reader %s failed", self.name)
                self.health.count("internal error")
                self.health.offline(f"driver error: {exc!r}")
            finally:
                with self._lock:
                    self._disconnect()
            if self._stop.is_set():
                break
            self._stop.wait(self._schedule.failed())
        self.health.offline("driver stopped")


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__

"""Frames from cv2.VideoCapture on a thread: latest frame only, reconnect on loss, health events."""

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

HealthKind = Literal["connected", "lost", "reconnecting", "stopped"]
IO_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Frame:
    seq: int
    time_us: int  # wall clock when grabbed, microseconds since the epoch
    image: np.ndarray


@dataclass(frozen=True)
class CameraStatus:
    connected: bool
    frames: int  # frames received since start
    last_frame_age_s: float | None  # None before the first frame
    reconnects: int


@dataclass(frozen=True)
class HealthEvent:
    time_us: int
    kind: HealthKind
    detail: str = ""


def _now_us() -> int:
    return time.time_ns() // 1000


class CameraSource:
    """A camera by device index, file path or stream URL; `latest()` never blocks on the device.

    A file that ends is treated like a dropped stream and reopened (so a recorded clip loops).
    """

    def __init__(
        self,
        source: int | str | Path,
        *,
        reconnect_delay_s: float = 1.0,
        max_fps: float | None = None,
        health_queue_size: int = 256,
    ) -> None:
        self.source = str(source) if isinstance(source, Path) else source
        self.reconnect_delay_s = reconnect_delay_s
        self.min_interval_s = 1.0 / max_fps if max_fps else 0.0
        self.health: queue.Queue[HealthEvent] = queue.Queue(maxsize=health_queue_size)
        self._latest: Frame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._new_frame = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._reconnects = 0
        self._last_frame_monotonic: float | None = None
        self.connected = False

    def start(self) -> "CameraSource":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"camera-{self.source}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def __enter__(self) -> "CameraSource":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def latest(self) -> Frame | None:
        with self._lock:
            return self._latest

    def status(self) -> CameraStatus:
        with self._lock:
            last = self._last_frame_monotonic
            frames = self._seq
        age = None if last is None else time.monotonic() - last
        return CameraStatus(self.connected, frames, age, self._reconnects)

    def wait_frame(self, after_seq: int = 0, timeout_s: float = 5.0) -> Frame | None:
        """The newest frame with seq > after_seq, waiting up to timeout_s; None on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._new_frame:
            while self._latest is None or self._latest.seq <= after_seq:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return None
                self._new_frame.wait(min(remaining, 0.1))
            return self._latest

    def _emit(self, kind: HealthKind, detail: str = "") -> None:
        # A reader that never drains the queue must not stall capture.
        with contextlib.suppress(queue.Full):
            self.health.put_nowait(HealthEvent(_now_us(), kind, detail))

    def _open(self) -> cv2.VideoCapture | None:
        # Bounded open and read waits, so a dead stream surfaces as 'lost' and stop() is prompt.
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            IO_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            IO_TIMEOUT_MS,
        ]
        capture = cv2.VideoCapture(self.source, cv2.CAP_ANY, timeouts)
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            capture = self._open()
            if capture is None:
                self._emit("reconnecting", f"cannot open {self.source}")
                self._stop.wait(self.reconnect_delay_s)
                continue
            self.connected = True
            self._emit("connected", str(self.source))
            try:
                self._read_until_lost(capture)
            finally:
                capture.release()
                self.connected = False
            if not self._stop.is_set():
                self._reconnects += 1
                self._emit("lost", "no frame from source")
                self._stop.wait(self.reconnect_delay_s)
        self._emit("stopped")

    def _read_until_lost(self, capture: cv2.VideoCapture) -> None:
        last = 0.0
        while not self._stop.is_set():
            ok, image = capture.read()
            if not ok or image is None:
                return
            with self._new_frame:
                self._seq += 1
                self._latest = Frame(self._seq, _now_us(), image)
                self._last_frame_monotonic = time.monotonic()
                self._new_frame.notify_all()
            if self.min_interval_s:
                wait = self.min_interval_s - (time.monotonic() - last)
                if wait > 0:
                    self._stop.wait(wait)
                last = time.monotonic()

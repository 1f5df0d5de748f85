"""Opening byte transports: serial device paths, pty pairs and `socket://host:port`, with reconnection.

Everything goes through pyserial's `serial_for_url`, so a driver is indifferent to whether it talks to
an RS-485 adapter, a simulator's pty or a serial-over-TCP gateway.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import serial

from firmware_bridge.backoff import Backoff, RetrySchedule
from firmware_bridge.errors import TransportError

LinkListener = Callable[[bool, str], None]  # (connected, reason)


def open_port(url: str, *, baudrate: int = 115200, timeout_s: float | None = 0.0) -> serial.SerialBase:
    """Open a device path, pty path or pyserial URL (`socket://`, `loop://`); timeout 0 = non-blocking."""
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout_s, write_timeout=1.0)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise TransportError(f"cannot open {url}: {exc}") from exc


def wait_fd(fd: int | None, timeout_s: float) -> bool:
    """Wait until `fd` is readable, at most `timeout_s` (a closed or missing fd: just the wait)."""
    if fd is None:
        time.sleep(timeout_s)
        return False
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
    except (OSError, ValueError):  # closed meanwhile
        return False
    return bool(ready)


class PtyPair:
    """A pseudo-terminal standing in for a serial line: the simulator owns `master_fd`, a driver opens `path`.

    With `link`, a symlink at that path points at the slave, so a restarted simulator (new pty) is
    found again under the same name, as a real adapter is under /dev/serial/by-id.
    """

    def __init__(self, link: Path | None = None) -> None:
        self.master_fd, self._slave_fd = os.openpty()
        # Raw mode: no echo or line editing, which would corrupt binary frames.
        tty.setraw(self._slave_fd)
        os.set_blocking(self.master_fd, False)
        self.slave_path = os.ttyname(self._slave_fd)
        self.link = link
        if link is not None:
            tmp = link.with_name(link.name + ".tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.slave_path)
            tmp.replace(link)
        self._closed = False

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self.slave_path

    def read(self, max_bytes: int) -> bytes:
        """Non-blocking read on the master side; b"" when nothing is waiting."""
        try:
            return os.read(self.master_fd, max_bytes)
        except (BlockingIOError, OSError):
            return b""

    def wait_readable(self, timeout_s: float) -> bool:
        """Wait until the driver side wrote something, at most `timeout_s`."""
        return wait_fd(None if self._closed else self.master_fd, timeout_s)

    def write(self, data: bytes) -> int:
        try:
            return os.write(self.master_fd, data)
        except (BlockingIOError, OSError):
            return 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self.master_fd)
        os.close(self._slave_fd)
        # Remove the name only if it is still ours: a successor pty may already have taken it over.
        if self.link is not None and os.path.islink(self.link) and os.readlink(self.link) == self.slave_path:
            with contextlib.suppress(OSError):
                self.link.unlink()

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReconnectingPort:
    """A byte port that never raises: on any I/O error it closes, then reopens `url` with back-off.

    Reads and writes are non-blocking (they return b"" / 0 while disconnected) so it can sit under
    an event loop that must keep its cadence, such as libosdp's refresh. `listener(connected, reason)`
    is called on every change of connection.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        backoff: Backoff | None = None,
        listener: LinkListener | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self._retry = RetrySchedule(backoff or Backoff())
        self._listener = listener
        self._port: serial.SerialBase | None = None
        self._lock = threading.RLock()
        self._closed = False
        self.reopen_count = 0
        self.last_error = ""

    @property
    def connected(self) -> bool:
        return self._port is not None

    def ensure_open(self) -> bool:
        """Try to (re)open now if the back-off allows; True when connected."""
        with self._lock:
            return self._ensure_open() is not None

    def _ensure_open(self) -> serial.SerialBase | None:
        if self._port is not None or self._closed or not self._retry.due():
            return self._port
        try:
            self._port = open_port(self.url, baudrate=self.baudrate, timeout_s=0.0)
        except TransportError as exc:
            self.last_error = str(exc)
            self._retry.failed()
            return None
        self._retry.succeeded()
        self.reopen_count += 1
        self._notify(True, f"opened {self.url}")
        return self._port

    def _drop(self, exc: BaseException) -> None:
        self.last_error = f"{self.url}: {exc}"
        if self._port is not None:
            with contextlib.suppress(Exception):
                self._port.close()
            self._port = None
            self._retry.failed()
            self._notify(False, f"link lost: {exc}")

    def _notify(self, connected: bool, reason: str) -> None:
        if self._listener is not None:
            self._listener(connected, reason)

    def read(self, max_bytes: int) -> bytes:
        with self._lock:
            port = self._ensure_open()
            if port is None:
                return b""
            try:
                return bytes(port.read(max_bytes))
            except (serial.SerialException, OSError) as exc:
                self._drop(exc)
                return b""

    def write(self, data: bytes) -> int:
        with self._lock:
            port = self._ensure_open()
            if port is None:
                return 0
            try:
                return port.write(data) or 0
            except (serial.SerialException, OSError) as exc:
                self._drop(exc)
                return 0

    def wait_readable(self, timeout_s: float) -> bool:
        """Wait until bytes are waiting, at most `timeout_s`; True if they are. A port without a file
        descriptor (or none open) just waits the time out."""
        with self._lock:
            port = self._port
            try:
                fd = port.fileno() if port is not None else None
            except (AttributeError, OSError, ValueError, serial.SerialException):
                fd = None
        return wait_fd(fd, timeout_s)

    def flush(self) -> None:
        with self._lock:
            if self._port is not None:
                try:
                    self._port.reset_input_buffer()
                except (serial.SerialException, OSError) as exc:
                    self._drop(exc)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._port is not None:
                with contextlib.suppress(Exception):
                    self._port.close()
                self._port = None


class NullModem:
    """Two pty ends wired together, like a null-modem cable: whatever is written to one is read at the other.

    Both sides then open an ordinary path (`path_a`, `path_b`), which suits servers such as pymodbus's
    serial server that insist on opening a port themselves.
    """

    def __init__(self, link_a: Path | None = None, link_b: Path | None = None) -> None:
        self._a = PtyPair(link_a)
        self._b = PtyPair(link_b)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._relay, name="null-modem", daemon=True)
        self._thread.start()

    @property
    def path_a(self) -> str:
        return self._a.path

    @property
    def path_b(self) -> str:
        return self._b.path

    def _relay(self) -> None:
        pairs = {self._a.master_fd: self._b, self._b.master_fd: self._a}
        while True:
            ready, _, _ = select.select([*pairs, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            for fd in ready:
                data = self._a.read(4096) if fd == self._a.master_fd else self._b.read(4096)
                if data:
                    pairs[fd].write(data)
                else:
                    time.sleep(0.005)  # the far end is closed (EIO); do not spin

    def close(self) -> None:
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            self._thread.join()
            os.close(self._stop_r)
            os.close(self._stop_w)
            self._a.close()
            self._b.close()

    def __enter__(self) -> NullModem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

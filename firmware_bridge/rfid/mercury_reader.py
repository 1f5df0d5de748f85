"""Driver for ThingMagic Mercury serial modules (embedded and handheld readers) over pyserial.

Commands are synchronous (`version`, `set_region`, `set_antenna`, `inventory`, ...). `start()` runs a
polling thread that keeps the module configured and inventories continuously, publishing TagRead and
HealthEvent. A module that stops answering is reported OFFLINE and re-initialised with back-off; tags it
found before falling silent stay in its buffer and are fetched, marked stale, once it answers again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import termios
import threading
import time

import serial

from firmware_bridge.backoff import Backoff, RetrySchedule
from firmware_bridge.errors import BridgeError, DeviceTimeout, FramingError, ProtocolError, TransportError
from firmware_bridge.events import TagRead
from firmware_bridge.health import HealthTracker, now_us
from firmware_bridge.rfid import mercury_codec as mc
from firmware_bridge.rfid.llrp_reader import EventSink, RfidEvent
from firmware_bridge.rfid.mercury_codec import BufferedTag, MercuryVersion, Op, Region, Status
from firmware_bridge.transport import open_port

TID_WORDS = 6
log = logging.getLogger(__name__)


class MercuryReader:
    """One Mercury module on `url` (device path, pty path or pyserial URL)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        baudrate: int = 115200,
        region: Region = Region.NA,
        antenna: int = 1,
        read_tid: bool = False,
        read_timeout_ms: int = 100,
        reply_timeout_s: float = 0.5,
        poll_interval_s: float = 0.05,
        backoff: Backoff | None = None,
        sink: EventSink | None = None,
    ) -> None:
        self.name, self.url, self.baudrate = name, url, baudrate
        self.region, self.antenna, self.read_tid = region, antenna, read_tid
        self.read_timeout_ms = read_timeout_ms
        self.reply_timeout_s = reply_timeout_s
        self.poll_interval_s = poll_interval_s
        self.events: queue.Queue[RfidEvent] = queue.Queue()
        self._sink: EventSink = sink or self.events.put
        self.health = HealthTracker(name, self._sink)
        self.version_info: MercuryVersion | None = None
        self._framer = mc.MercuryFramer(responses=True)
        self._port: serial.SerialBase | None = None
        self._io_lock = threading.Lock()
        self._schedule = RetrySchedule(backoff or Backoff(initial_s=0.05, max_s=2.0), random.Random())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._buffer_may_hold_tags = True  # unknown at start: a previous host may have left tags

    # ------------------------------------------------------------------------------------ port

    def open(self) -> None:
        if self._port is None:
            self._port = open_port(self.url, baudrate=self.baudrate, timeout_s=0.02)
            self._framer = mc.MercuryFramer(responses=True)

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    @property
    def framing_errors(self) -> int:
        return self._framer.framing_errors

    def command(self, opcode: Op, data: bytes = b"", *, timeout_s: float | None = None) -> mc.MercuryFrame:
        """Send one request and wait for its reply; raises DeviceTimeout, TransportError, ProtocolError."""
        with self._io_lock:
            self.open()
            assert self._port is not None
            try:
                self._port.reset_input_buffer()  # a late reply to an abandoned request is not ours
                self._framer.reset()
                self._port.write(mc.encode_request(opcode, data))
                errors_before = self._framer.framing_errors
                wait_s = timeout_s or self.reply_timeout_s
                deadline = time.monotonic() + wait_s
                while time.monotonic() < deadline:
                    chunk = self._port.read(1)  # blocks up to the port timeout for the first byte only
                    if not chunk:
                        continue
                    chunk += self._port.read(self._port.in_waiting)
                    for frame in self._framer.feed(chunk):
                        if frame.opcode == opcode:
                            return frame
            except (serial.SerialException, OSError, termios.error) as exc:  # termios: the pty's far end died
                self.close()
                raise TransportError(f"{self.url}: {exc}") from exc
        corrupt = self._framer.framing_errors - errors_before
        detail = f" ({corrupt} corrupt frames or noise)" if corrupt else ""
        raise DeviceTimeout(f"no valid reply to {opcode.name} within {wait_s} s{detail}")

    def _ok(self, opcode: Op, data: bytes = b"", *, timeout_s: float | None = None) -> bytes:
        frame = self.command(opcode, data, timeout_s=timeout_s)
        if frame.status != Status.OK:
            raise ProtocolError(f"{opcode.name} failed with status {frame.status:#06x}")
        return frame.data

    # ------------------------------------------------------------------------------------ commands

    def version(self) -> MercuryVersion:
        return mc.decode_version(self._ok(Op.VERSION))

    def set_region(self, region: Region) -> None:
        self._ok(Op.SET_REGION, bytes([region]))

    def get_region(self) -> Region:
        data = self._ok(Op.GET_REGION)
        if len(data) != 1 or data[0] not in Region._value2member_map_:
            raise FramingError(f"unknown region reply {data.hex()}")
        return Region(data[0])

    def set_antenna(self, tx: int, rx: int | None = None) -> None:
        self._ok(Op.SET_ANTENNA, bytes([tx, tx if rx is None else rx]))

    def get_antenna(self) -> tuple[int, int]:
        data = self._ok(Op.GET_ANTENNA)
        if len(data) < 2:
            raise FramingError("short antenna reply")
        return data[0], data[1]

    def read_tag_multiple(self, timeout_ms: int, *, tid: bool = False) -> int:
        """Inventory for `timeout_ms`; returns how many tags went into the module's buffer."""
        frame = self.command(Op.READ_TAG_MULTIPLE, mc.encode_read_multiple(timeout_ms, TID_WORDS if tid else 0),
                             timeout_s=self.reply_timeout_s + timeout_ms / 1000)
        if frame.status == Status.NO_TAGS_FOUND:
            return 0
        if frame.status != Status.OK:
            raise ProtocolError(f"READ_TAG_MULTIPLE failed with status {frame.status:#06x}")
        return mc.decode_read_multiple_reply(frame.data)

    def get_tag_buffer(self) -> list[BufferedTag]:
        """Fetch every tag the module holds (several frames if need be)."""
        tags: list[BufferedTag] = []
        while True:
            batch = mc.decode_tag_buffer(self._ok(Op.GET_TAG_BUFFER, mc.METADATA.to_bytes(2, "big") + b"\x00"))
            if not batch:
                return tags
            tags += batch

    def clear_tag_buffer(self) -> None:
        self._ok(Op.CLEAR_TAG_BUFFER)

    def initialise(self) -> MercuryVersion:
        """Identify the module and configure region, protocol and antenna."""
        info = self.version()
        self.set_region(self.region)
        self._ok(Op.SET_PROTOCOL, mc.SET_PROTOCOL_GEN2)
        self.set_antenna(self.antenna)
        self.version_info = info
        return info

    def inventory(self) -> list[TagRead]:
        """One inventory round. Tags left in the buffer by an interrupted round come first, marked stale."""
        reads: list[TagRead] = []
        if self._buffer_may_hold_tags:
            reads += self._to_reads(self.get_tag_buffer(), now_us(), stale=True)
        self._buffer_may_hold_tags = True
        started = now_us()
        if self.read_tag_multiple(self.read_timeout_ms, tid=self.read_tid):
            reads += self._to_reads(self.get_tag_buffer(), started, stale=False)
        self.clear_tag_buffer()
        self._buffer_may_hold_tags = False
        return reads

    def _to_reads(self, tags: list[BufferedTag], started_us: int, *, stale: bool) -> list[TagRead]:
        return [TagRead(self.name, t.antenna, t.epc, started_us + t.timestamp_ms * 1000, float(t.rssi_dbm),
                        t.tid, stale) for t in tags]

    # ------------------------------------------------------------------------------------ polling

    def start(self) -> MercuryReader:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"mercury-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.close()

    def __enter__(self) -> MercuryReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        initialised = False
        while not self._stop.is_set():
            try:
                if not initialised:
                    info = self.initialise()
                    initialised = True
                    self.health.online(f"firmware {info.firmware}, region {self.region.name}")
                for read in self.inventory():
                    self._sink(read)
                self._schedule.succeeded()
                self._stop.wait(self.poll_interval_s)
            except FramingError as exc:
                self.health.count("framing error")
                self.health.degraded(f"unreadable reply: {exc}")
                self._stop.wait(self._schedule.failed())
            except (BridgeError, OSError) as exc:
                initialised = False
                self.health.count("timeout" if isinstance(exc, DeviceTimeout) else "error")
                self.health.offline(str(exc) or type(exc).__name__)
                self._stop.wait(self._schedule.failed())
            except Exception as exc:  # a bug must not kill the thread silently: report it and retry
                log.exception("Mercury driver %s failed", self.name)
                initialised = False
                self.health.count("internal error")
                self.health.offline(f"driver error: {exc!r}")
                self._stop.wait(self._schedule.failed())
        self.health.offline("driver stopped")

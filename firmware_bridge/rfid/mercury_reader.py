"""Driver for ThingMagic Mercury serial modules (handheld, intake and embedded portal readers) over pyserial.

A `TagReader` backend: `_open` identifies the module and configures region, protocol and antenna; one
round is, per antenna, READ_TAG_MULTIPLE (the module searches for `read_timeout_ms` and buffers what it
finds) then GET_TAG_BUFFER until empty. `inventory()` runs a round on demand (sweeps, intake); `start()`
polls continuously, ending each antenna's round with an `InventoryRoundEnd`. A module that stops answering
is reported OFFLINE and re-initialised with back-off; tags it found before falling silent stay in its
buffer and are fetched, marked stale, once it answers again. Garbled replies are skipped by the framer
(DEGRADED while they last).

Plain commands (`version`, `set_region`, `get_antenna`, ...) are public for tools and tests.
"""

from __future__ import annotations

import contextlib
import termios
import time

import numpy as np
import serial

from firmware_bridge.backoff import Backoff
from firmware_bridge.errors import DeviceTimeout, FramingError, ProtocolError, TransportError
from firmware_bridge.events import TagBatch, hex_to_words
from firmware_bridge.health import now_us
from firmware_bridge.rfid import mercury_codec as mc
from firmware_bridge.rfid.mercury_codec import BufferedTag, MercuryVersion, Op, Region, Status
from firmware_bridge.rfid.reader import EventSink, ReaderIdentity, TagReader
from firmware_bridge.transport import open_port

TID_WORDS = 6


class MercuryReader(TagReader):
    """One Mercury module on `url` (device path, pty path or pyserial URL)."""

    resynchronises = True  # the framer skips noise and finds the next frame

    def __init__(
        self,
        name: str,
        url: str,
        *,
        baudrate: int = 115200,
        region: Region = Region.NA,
        antennas: tuple[int, ...] = (1,),
        read_tid: bool = False,
        read_timeout_ms: int = 100,
        reply_timeout_s: float = 0.5,
        poll_interval_s: float = 0.05,
        backoff: Backoff | None = None,
        sink: EventSink | None = None,
    ) -> None:
        super().__init__(name, reply_timeout_s=reply_timeout_s,
                         backoff=backoff or Backoff(initial_s=0.05, max_s=2.0), sink=sink)
        if not antennas:
            raise ValueError("a Mercury reader needs at least one antenna")
        self.url, self.baudrate = url, baudrate
        self.region, self.antennas, self.read_tid = region, antennas, read_tid
        self.read_timeout_ms = read_timeout_ms
        self.pause_s = poll_interval_s
        self.version_info: MercuryVersion | None = None
        self._framer = mc.MercuryFramer(responses=True)
        self._port: serial.SerialBase | None = None
        self._antenna = 0  # the port the module is set to (0: unknown)
        self._buffer_may_hold_tags = True  # unknown at start: a previous host may have left tags

    # ------------------------------------------------------------------------------------ backend

    def _open(self) -> str:
        info = self.initialise()
        return f"firmware {info.firmware}, region {self.region.name}"

    def _read(self, timeout_s: float) -> None:
        for antenna, batch in self._rounds():
            self._emit_tags(batch)
            if antenna:
                self._emit_round_end(antenna)

    def _round(self) -> list[TagBatch]:
        return [batch for _, batch in self._rounds()]

    def _close(self) -> None:
        port, self._port = self._port, None
        self._antenna = 0
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def _identify(self) -> ReaderIdentity:
        version = self.version()
        region = self.get_region()
        return ReaderIdentity("ThingMagic Mercury", f"hardware {version.hardware}",
                              f"{version.firmware} ({version.firmware_date})", len(self.antennas),
                              f"region {region.name}")

    # ------------------------------------------------------------------------------------ port

    def open(self) -> None:
        if self._port is None:
            self._port = open_port(self.url, baudrate=self.baudrate, timeout_s=0.02)
            self._framer = mc.MercuryFramer(responses=True)

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    def command(self, opcode: Op, data: bytes = b"", *, timeout_s: float | None = None) -> mc.MercuryFrame:
        """Send one request and wait for its reply; raises DeviceTimeout, TransportError, ProtocolError."""
        with self._lock:
            self.open()
            assert self._port is not None
            try:
                self._port.reset_input_buffer()  # a late reply to an abandoned request is not ours
                self._framer.reset()
                self._port.write(mc.encode_request(opcode, data))
                first_errors = errors_before = self._framer.framing_errors
                wait_s = timeout_s or self.reply_timeout_s
                deadline = time.monotonic() + wait_s
                while time.monotonic() < deadline:
                    chunk = self._port.read(1)  # blocks up to the port timeout for the first byte only
                    if not chunk:
                        continue
                    chunk += self._port.read(self._port.in_waiting)
                    frames = self._framer.feed(chunk)
                    if self._framer.framing_errors > errors_before:
                        self.health.count("framing error", self._framer.framing_errors - errors_before)
                        errors_before = self._framer.framing_errors
                    for frame in frames:
                        if frame.opcode == opcode:
                            return frame
            except (serial.SerialException, OSError, termios.error) as exc:  # termios: the pty's far end died
                self._close()
                raise TransportError(f"{self.url}: {exc}") from exc
        corrupt = self._framer.framing_errors - first_errors
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
        self._antenna = tx

    def get_antenna(self) -> tuple[int, int]:
        data = self._ok(Op.GET_ANTENNA)
        if len(data) < 2:
            raise FramingError("short antenna reply")
        return data[0], data[1]

    def read_tag_multiple(self, timeout_ms: int, *, tid: bool = False) -> mc.ReadMultipleReply:
        """Inventory for `timeout_ms`; how many tags went into the module's buffer (and embedded results)."""
        request = mc.ReadMultipleRequest(timeout_ms, TID_WORDS if tid else 0,
                                         mc.SEARCH_LARGE_TAG_POPULATION | (mc.SEARCH_EMBEDDED_OP if tid else 0))
        frame = self.command(Op.READ_TAG_MULTIPLE, mc.encode_read_multiple(timeout_ms, request.tid_words),
                             timeout_s=self.reply_timeout_s + timeout_ms / 1000)
        if frame.status == Status.NO_TAGS_FOUND:
            return mc.ReadMultipleReply(0)
        if frame.status != Status.OK:
            raise ProtocolError(f"READ_TAG_MULTIPLE failed with status {frame.status:#06x}")
        return mc.decode_read_multiple_reply(frame.data, request)

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
        """Identify the module and configure region, protocol and the first antenna."""
        info = self.version()
        self.set_region(self.region)
        self._ok(Op.SET_PROTOCOL, mc.SET_PROTOCOL_GEN2)
        self.set_antenna(self.antennas[0])
        self.version_info = info
        return info

    # ------------------------------------------------------------------------------------ rounds

    def _rounds(self) -> list[tuple[int, TagBatch]]:
        """One round per antenna, (antenna, what it found); tags an interrupted round left come first,
        stale, with antenna 0 (they belong to no round of this connection)."""
        found: list[tuple[int, TagBatch]] = []
        if self._buffer_may_hold_tags:
            left = self.get_tag_buffer()
            if left:
                found.append((0, self._batch(left, now_us(), stale=True)))
        for antenna in self.antennas:
            if antenna != self._antenna:
                self.set_antenna(antenna)
            self._buffer_may_hold_tags = True
            started = now_us()
            reply = self.read_tag_multiple(self.read_timeout_ms, tid=self.read_tid)
            tags = self.get_tag_buffer() if reply.count else []
            self.clear_tag_buffer()
            self._buffer_may_hold_tags = False
            found.append((antenna, self._batch(tags, started, stale=False)))
        return found

    def _batch(self, tags: list[BufferedTag], started_us: int, *, stale: bool) -> TagBatch:
        if not tags:
            return TagBatch.empty(self.name)
        epc_words, epc_bits = hex_to_words([t.epc for t in tags])
        tid_words, tid_bits = hex_to_words([t.tid or b"" for t in tags], allow_empty=True)
        n = len(tags)
        return TagBatch(
            self.name,
            np.array([started_us + t.timestamp_ms * 1000 for t in tags], np.int64),
            np.array([t.antenna for t in tags], np.int32),
            epc_words, epc_bits,
            np.array([t.rssi_dbm for t in tags], np.float64),
            tid_words, tid_bits,
            np.full(n, stale, bool),
        )

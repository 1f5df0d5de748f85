"""A ThingMagic Mercury module on a pty: answers the host's frames with the same bytes a module sends.

Tags are placed in (and removed from) the field per antenna; READ_TAG_MULTIPLE copies the tags seen on
the selected antenna into the module's tag buffer, GET_TAG_BUFFER hands them out (oldest first, as many
as fit in one frame) and forgets them, so nothing found is lost if the host goes away in between.
READ_TAG_MULTIPLE replies come in the form module firmware sends: `wide_counts` (M6e: 4-byte counts
when the host sets the large-population flag) or not (M5e, Nano: 1-byte counts), or a forced
`reply_form` (4, 5, 7 or 8 data bytes; see `mercury_codec.PLAIN_FORMS`).
Faults for drills: stop answering (optionally right after a given opcode) and answer with garbage.
"""

from __future__ import annotations

import select
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.rfid import mercury_codec as mc
from firmware_bridge.rfid.mercury_codec import BufferedTag, MercuryVersion, Op, Region, Status
from firmware_bridge.transport import PtyPair

TAGS_PER_FRAME = 5  # what fits in 255 data bytes with TID and metadata
SIM_VERSION = MercuryVersion("12030200", "18000000", "20230401", "01090024", protocols=0x10)


@dataclass(frozen=True, slots=True)
class FieldTag:
    epc: str
    antenna: int
    rssi_dbm: int = -60
    tid: str | None = None


class MercurySimulator:
    """Serve the Mercury protocol on a pty; a driver opens `.path` (a symlink there when `link` is given)."""

    def __init__(self, *, link: Path | None = None, antennas: int = 4, wide_counts: bool = True,
                 reply_form: int | None = None) -> None:
        if reply_form is not None and reply_form not in mc.PLAIN_FORMS:
            raise ValueError(f"reply_form is one of {mc.PLAIN_FORMS}")
        self._link = link
        self.antennas = antennas
        self.wide_counts = wide_counts
        self.reply_form = reply_form
        self.region = Region.NA
        self.tx_port, self.rx_port = 1, 1
        self._field: dict[tuple[str, int], FieldTag] = {}
        self._buffer: list[BufferedTag] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pty: PtyPair | None = None
        self._framer = mc.MercuryFramer(responses=False)
        self._muted = False
        self._mute_after: int | None = None
        self._garble = 0
        self.requests = 0

    @property
    def path(self) -> str:
        assert self._pty is not None, "simulator not started"
        return self._pty.path

    def start(self) -> MercurySimulator:
        self._pty = PtyPair(self._link)
        self._thread = threading.Thread(target=self._run, name="mercury-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    def __enter__(self) -> MercurySimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------ field and faults

    def place(self, tag: FieldTag) -> None:
        with self._lock:
            self._field[(tag.epc, tag.antenna)] = tag

    def remove(self, epc: str) -> None:
        with self._lock:
            self._field = {k: v for k, v in self._field.items() if k[0] != epc}

    def mute(self, muted: bool = True) -> None:
        """Stop (or resume) answering, as a module that hung or lost power would."""
        with self._lock:
            self._muted, self._mute_after = muted, None

    def mute_after(self, opcode: Op) -> None:
        """Answer the next request with `opcode`, then fall silent."""
        with self._lock:
            self._mute_after = opcode

    def garble(self, replies: int) -> None:
        """Answer the next `replies` requests with noise instead of frames."""
        with self._lock:
            self._garble = replies

    @property
    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)

    # ------------------------------------------------------------------------------------ loop

    def _run(self) -> None:
        assert self._pty is not None
        pty = self._pty
        while not self._stop.is_set():
            ready, _, _ = select.select([pty.master_fd], [], [], 0.02)
            if not ready:
                continue
            data = pty.read(4096)
            for frame in self._framer.feed(data):
                reply = self._answer(frame)
                if reply:
                    pty.write(reply)

    def _answer(self, frame: mc.MercuryFrame) -> bytes:
        with self._lock:
            self.requests += 1
            if self._muted:
                return b""
            if self._mute_after == frame.opcode:
                self._muted, self._mute_after = True, None
            if self._garble:
                self._garble -= 1
                return bytes([0x00, 0xFF, 0x10, 0x22, 0x99, 0xFF, 0x01])  # a header with a wrong CRC
            try:
                status, data = self._execute(frame)
            except mc.FramingError:
                status, data = Status.INVALID_PARAMETER, b""
            return mc.encode_response(frame.opcode, status, data)

    def _execute(self, frame: mc.MercuryFrame) -> tuple[int, bytes]:
        op, data = frame.opcode, frame.data
        if op == Op.VERSION:
            return Status.OK, mc.encode_version(SIM_VERSION)
        if op == Op.SET_REGION:
            if len(data) != 1 or data[0] not in Region._value2member_map_:
                return Status.INVALID_PARAMETER, b""
            self.region = Region(data[0])
            return Status.OK, b""
        if op == Op.GET_REGION:
            return Status.OK, bytes([self.region])
        if op == Op.SET_ANTENNA:
            if len(data) != 2 or not all(1 <= p <= self.antennas for p in data):
                return Status.INVALID_PARAMETER, b""
            self.tx_port, self.rx_port = data[0], data[1]
            return Status.OK, b""
        if op == Op.GET_ANTENNA:
            return Status.OK, bytes([self.tx_port, self.rx_port])
        if op == Op.SET_PROTOCOL:
            ok = data == mc.SET_PROTOCOL_GEN2
            return (Status.OK if ok else Status.INVALID_PARAMETER), b""
        if op == Op.READ_TAG_MULTIPLE:
            return self._read_multiple(mc.decode_read_multiple(data))
        if op == Op.GET_TAG_BUFFER:
            batch, self._buffer = self._buffer[:TAGS_PER_FRAME], self._buffer[TAGS_PER_FRAME:]
            return Status.OK, mc.encode_tag_buffer(batch)
        if op == Op.CLEAR_TAG_BUFFER:
            self._buffer = []
            return Status.OK, b""
        return Status.INVALID_OPCODE, b""

    def _read_multiple(self, request: mc.ReadMultipleRequest) -> tuple[int, bytes]:
        seen = [t for (_, antenna), t in self._field.items() if antenna == self.rx_port]
        if not seen:
            return Status.NO_TAGS_FOUND, b""
        started = time.monotonic()
        for tag in seen:
            tid = None
            epc = bytes.fromhex(tag.epc)
            if request.tid_words:
                tid = (bytes.fromhex(tag.tid) if tag.tid else bytes.fromhex("E2003412") + epc[-8:])
                tid = tid[: 2 * request.tid_words]
            stamp = int((time.monotonic() - started) * 1000)
            self._buffer.append(BufferedTag(epc, tag.antenna, tag.rssi_dbm, 1, stamp, tid))
        wide = self.wide_counts and request.large_population
        if request.embedded:
            form = mc.EMBEDDED_WIDE if wide else mc.EMBEDDED_NARROW
            ok = len(seen) if request.tid_words else 0
            return Status.OK, mc.encode_read_multiple_reply(request, len(seen), form=form, ok=ok)
        form = self.reply_form or (7 if wide else 4)
        return Status.OK, mc.encode_read_multiple_reply(request, len(seen), form=form)


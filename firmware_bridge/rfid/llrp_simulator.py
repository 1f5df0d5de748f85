"""An LLRP fixed reader on a TCP port that reads tags along a scripted walk, for tests, demos and drills.

It speaks the same bytes as a portal reader: the connection-attempt event, capabilities, reader config
with keepalives, the ROSpec life cycle, a TID-reading AccessSpec and RO_ACCESS_REPORTs. Like a real
reader it keeps inventorying when the client's link drops and holds the reports until a client starts
an ROSpec again, so nothing read while the link was down is lost.
"""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from firmware_bridge.errors import FramingError
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_codec import Msg

_UNSUPPORTED_MESSAGE = 109  # LLRP status M_UnsupportedMessage
_PARAMETER_ERROR = 100
_TICK_S = 0.01
_TAGS_PER_SEND = 2000


@dataclass(frozen=True, slots=True)
class WalkStep:
    """At `t_s` seconds after inventory starts, `epc` (hex) is read on `antenna` at `rssi_dbm`."""

    t_s: float
    epc: str
    antenna: int
    rssi_dbm: int = -55
    tid: str | None = None  # hex; when None a TID is derived from the EPC


def derived_tid(epc: bytes) -> bytes:
    """A plausible TID (Impinj-style class/vendor prefix + serial from the EPC), stable per tag."""
    return bytes.fromhex("E2801105") + epc[-8:].rjust(8, b"\x00")


class LlrpSimulator:
    """Serve one LLRP client at a time on `host:port` (port 0 picks a free one; read `.port` after start)."""

    def __init__(
        self,
        walk: Sequence[WalkStep] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        antennas: int = 4,
        repeat_walk_s: float | None = None,
        firmware: str = "custodian-sim 1.0",
        model: int = 1,
        manufacturer: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.antennas = antennas
        self.firmware, self.model, self.manufacturer = firmware, model, manufacturer
        self._walk = sorted(walk, key=lambda s: s.t_s)
        self._repeat_s = repeat_walk_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._framer = llrp.LlrpFramer()
        self._drop_requested = False
        self._refuse_until = 0.0
        self._hang_until = 0.0
        # Inventory state survives a dropped link, as on a real reader.
        self._walk_t0: float | None = None
        self._next_step = 0
        self._held: collections.deque[bytes] = collections.deque()  # TagReportData not yet delivered
        self._rospec: llrp.RoSpecSummary | None = None
        self._rospec_active = False
        self._tid_words = 0
        self._keepalive_s = 0.0
        self._next_keepalive = 0.0
        self.keepalive_acks = 0
        self.reports_sent = 0  # TagReportData delivered to a client
        self.connections = 0
        self.framing_errors = 0

    # ------------------------------------------------------------------------------------ control

    def start(self) -> LlrpSimulator:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(2)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._thread = threading.Thread(target=self._run, name=f"llrp-sim-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LlrpSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drop_link(self, refuse_for_s: float = 0.0) -> None:
        """Cut the client's TCP connection (as a pulled cable would) and refuse new ones for a while."""
        with self._lock:
            self._drop_requested = True
            self._refuse_until = time.monotonic() + refuse_for_s

    def hang(self, seconds: float) -> None:
        """Stop reading, answering and sending for a while with the link left open (a wedged reader)."""
        with self._lock:
            self._hang_until = time.monotonic() + seconds

    def walk_from_now(self, steps: Sequence[WalkStep]) -> None:
        """Append steps whose times count from now (drills and demos script people walking past)."""
        with self._lock:
            offset = 0.0 if self._walk_t0 is None else time.monotonic() - self._walk_t0
        self.add_walk([replace(step, t_s=step.t_s + offset) for step in steps])

    def add_walk(self, steps: Sequence[WalkStep]) -> None:
        """Append steps (times relative to the inventory start) to the walk still to come."""
        with self._lock:
            rest = self._walk[self._next_step :] + list(steps)
            self._walk = self._walk[: self._next_step] + sorted(rest, key=lambda s: s.t_s)

    # ------------------------------------------------------------------------------------ loop

    def _run(self) -> None:
        assert self._listener is not None
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "listen")
        try:
            while not self._stop.is_set():
                if time.monotonic() < self._hang_until:
                    self._stop.wait(_TICK_S)
                    continue
                for key, _ in sel.select(_TICK_S):
                    if key.data == "listen":
                        self._accept(sel)
                    else:
                        self._receive(sel)
                with self._lock:
                    drop = self._drop_requested
                    self._drop_requested = False
                if drop:
                    self._close_conn(sel)
                self._advance_walk()
                self._deliver(sel)
                self._keepalive(sel)
        finally:
            self._close_conn(sel)
            sel.close()
            self._listener.close()
            self._listener = None

    def _accept(self, sel: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        now_us = time.time_ns() // 1000
        if self._conn is not None or time.monotonic() < self._refuse_until:
            if self._conn is not None:  # LLRP allows one controlling client; tell the newcomer why
                with contextlib.suppress(OSError):
                    event = llrp.connection_attempt_event(llrp.CONNECTION_ALREADY_EXISTS)
                    conn.sendall(llrp.encode(Msg.READER_EVENT_NOTIFICATION, 0, llrp.reader_event_body(now_us, event)))
            conn.close()
            return
        conn.setblocking(True)
        conn.settimeout(2.0)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn
        self._framer = llrp.LlrpFramer()
        self.connections += 1
        sel.register(conn, selectors.EVENT_READ, "conn")
        body = llrp.reader_event_body(now_us, llrp.connection_attempt_event(llrp.CONNECTION_SUCCESS))
        self._send(sel, llrp.encode(Msg.READER_EVENT_NOTIFICATION, 0, body))

    def _close_conn(self, sel: selectors.BaseSelector) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(conn)
        with contextlib.suppress(OSError):
            conn.close()
        self._keepalive_s = 0.0

    def _send(self, sel: selectors.BaseSelector, data: bytes) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.sendall(data)
        except OSError:
            self._close_conn(sel)
            return False
        return True

    def _receive(self, sel: selectors.BaseSelector) -> None:
        assert self._conn is not None
        try:
            data = self._conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close_conn(sel)
            return
        try:
            frames = self._framer.feed(data)
        except FramingError:
            self.framing_errors += 1
            self._close_conn(sel)
            return
        for frame in frames:
            try:
                self._handle(sel, frame)
            except FramingError as exc:
                self.framing_errors += 1
                self._send(sel, llrp.encode(Msg.ERROR_MESSAGE, frame.msg_id, llrp.status(_PARAMETER_ERROR, str(exc))))

    # ------------------------------------------------------------------------------------ messages

    def _reply(self, sel: selectors.BaseSelector, frame: llrp.Frame, body: bytes) -> None:
        self._send(sel, llrp.encode(llrp.RESPONSE_OF[Msg(frame.msg_type)], frame.msg_id, body))

    def _handle(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        kind = frame.msg_type
        if kind == Msg.KEEPALIVE_ACK:
            self.keepalive_acks += 1
        elif kind == Msg.GET_READER_CAPABILITIES:
            identity = (self.manufacturer, self.model, self.firmware)
            self._reply(sel, frame, llrp.capabilities_response_body(self.antennas, *identity))
        elif kind == Msg.SET_READER_CONFIG:
            keepalive_ms = llrp.decode_keepalive_ms(frame.body)
            if keepalive_ms is not None:
                self._keepalive_s = keepalive_ms / 1000.0
                self._next_keepalive = time.monotonic() + self._keepalive_s
            self._reply(sel, frame, llrp.status())
        elif kind == Msg.ADD_ROSPEC:
            spec = llrp.decode_add_rospec(frame.body)
            if self._rospec is not None and self._rospec.rospec_id == spec.rospec_id:
                self._reply(sel, frame, llrp.status(_PARAMETER_ERROR, f"ROSpec {spec.rospec_id} exists"))
                return
            self._rospec, self._rospec_active = spec, False
            self._reply(sel, frame, llrp.status())
        elif kind in (Msg.ENABLE_ROSPEC, Msg.START_ROSPEC, Msg.STOP_ROSPEC, Msg.DELETE_ROSPEC):
            self._rospec_command(sel, frame)
        elif kind == Msg.ADD_ACCESSSPEC:
            self._tid_words = llrp.decode_tid_words(frame.body)
            self._reply(sel, frame, llrp.status())
        elif kind in (Msg.ENABLE_ACCESSSPEC, Msg.DELETE_ACCESSSPEC):
            if kind == Msg.DELETE_ACCESSSPEC:
                self._tid_words = 0
            self._reply(sel, frame, llrp.status())
        elif kind == Msg.CLOSE_CONNECTION:
            self._reply(sel, frame, llrp.status())
            self._close_conn(sel)
        else:
            self._send(
                sel,
                llrp.encode(Msg.ERROR_MESSAGE, frame.msg_id, llrp.status(_UNSUPPORTED_MESSAGE, f"message type {kind}")),
            )

    def _rospec_command(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        if len(frame.body) < 4:
            raise FramingError("ROSpec command without ROSpecID")
        rospec_id = int.from_bytes(frame.body[:4], "big")
        kind = frame.msg_type
        if kind == Msg.DELETE_ROSPEC and rospec_id == 0:  # 0 = every ROSpec
            self._rospec, self._rospec_active = None, False
            self._reply(sel, frame, llrp.status())
            return
        if self._rospec is None or self._rospec.rospec_id != rospec_id:
            self._reply(sel, frame, llrp.status(_PARAMETER_ERROR, f"no ROSpec {rospec_id}"))
            return
        if kind == Msg.START_ROSPEC:
            self._rospec_active = True
            if self._walk_t0 is None:
                self._walk_t0 = time.monotonic()
        elif kind == Msg.STOP_ROSPEC:
            self._rospec_active = False
        elif kind == Msg.DELETE_ROSPEC:
            self._rospec, self._rospec_active = None, False
        self._reply(sel, frame, llrp.status())

    # ------------------------------------------------------------------------------------ tags

    def _advance_walk(self) -> None:
        """Read every step now due. Reads go to the held queue even with no client: the reader's buffer."""
        if self._walk_t0 is None:
            return
        elapsed = time.monotonic() - self._walk_t0
        now_us = time.time_ns() // 1000
        with self._lock:
            walk = self._walk
            while self._next_step < len(walk) and walk[self._next_step].t_s <= elapsed:
                step = walk[self._next_step]
                self._next_step += 1
                if self._rospec is not None and self._rospec.antennas and step.antenna not in self._rospec.antennas:
                    continue  # that antenna is not part of the inventory
                epc = bytes.fromhex(step.epc)
                tid = None
                if self._tid_words:
                    tid = (bytes.fromhex(step.tid) if step.tid else derived_tid(epc))[: 2 * self._tid_words]
                seen_us = now_us - int((elapsed - step.t_s) * 1e6)
                self._held.append(llrp.tag_report_data(epc, step.antenna, step.rssi_dbm, seen_us, tid))
            if self._next_step >= len(walk) and self._repeat_s and walk and elapsed >= self._repeat_s:
                self._walk_t0 += self._repeat_s
                self._next_step = 0

    def _deliver(self, sel: selectors.BaseSelector) -> None:
        if self._conn is None or not self._rospec_active or self._rospec is None:
            return
        per_report = self._rospec.tags_per_report
        while True:
            with self._lock:
                if not self._held:
                    return
                chunk = [self._held.popleft() for _ in range(min(_TAGS_PER_SEND, len(self._held)))]
            # Many reports per write, as a reader's TCP stack coalesces them under load.
            messages = b"".join(
                llrp.encode(Msg.RO_ACCESS_REPORT, 0, b"".join(chunk[i : i + per_report]))
                for i in range(0, len(chunk), per_report)
            )
            if not self._send(sel, messages):
                with self._lock:  # the link broke mid-send: keep the reports for the next client
                    self._held.extendleft(reversed(chunk))
                return
            self.reports_sent += len(chunk)

    def _keepalive(self, sel: selectors.BaseSelector) -> None:
        if self._conn is None or not self._keepalive_s or time.monotonic() < self._next_keepalive:
            return
        self._next_keepalive = time.monotonic() + self._keepalive_s
        self._send(sel, llrp.encode(Msg.KEEPALIVE, 0))

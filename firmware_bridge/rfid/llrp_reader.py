"""LLRP client driver for fixed portal readers: configure an inventory, stream tag reads, stay connected.

One thread per reader owns the socket: it connects, configures (capabilities, keepalive, ROSpec, an
optional TID AccessSpec), then turns RO_ACCESS_REPORTs into TagRead events and answers keepalives. A
lost link (socket error, framing error, silence past the keepalive) reports OFFLINE and reconnects
with exponential back-off; reads the reader held during the outage arrive afterwards marked stale.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import socket
import threading
import time
from collections.abc import Callable

from firmware_bridge.backoff import Backoff, RetrySchedule
from firmware_bridge.errors import BridgeError, DeviceTimeout, FramingError, ProtocolError, TransportError
from firmware_bridge.events import HealthEvent, TagRead
from firmware_bridge.health import HealthTracker, now_us
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_codec import Msg
from firmware_bridge.rfid.llrp_fast import LlrpStreamDecoder, TagColumns

log = logging.getLogger(__name__)

RfidEvent = TagRead | HealthEvent
EventSink = Callable[[RfidEvent], None]

ROSPEC_ID = 1
ACCESS_SPEC_ID = 1
TID_WORDS = 6  # 96-bit TID: class id, vendor, model and the factory serial


class LlrpReader:
    """Driver for one LLRP reader. Events go to `sink` (default: the `events` queue)."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int = 5084,
        *,
        antennas: tuple[int, ...] = (1, 2, 3, 4),
        read_tid: bool = False,
        tags_per_report: int = 1,
        keepalive_s: float = 1.0,
        reply_timeout_s: float = 2.0,
        backoff: Backoff | None = None,
        sink: EventSink | None = None,
    ) -> None:
        self.name = name
        self.host, self.port = host, port
        self.antennas = antennas
        self.read_tid = read_tid
        self.tags_per_report = tags_per_report
        self.keepalive_s = keepalive_s
        self.reply_timeout_s = reply_timeout_s
        self.events: queue.Queue[RfidEvent] = queue.Queue()
        self._sink: EventSink = sink or self.events.put
        self.health = HealthTracker(name, self._sink)
        self.capabilities: llrp.Capabilities | None = None
        self.tags_received = 0
        self._schedule = RetrySchedule(backoff or Backoff(initial_s=0.05, max_s=5.0), random.Random())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._decoder = LlrpStreamDecoder()
        self._next_id = 1
        self._online_since_us = 0
        self._announced = False
        self._early: list[TagColumns] = []
        self._last_rx = 0.0

    # ------------------------------------------------------------------------------------ life cycle

    def start(self) -> LlrpReader:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"llrp-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.reply_timeout_s * 3 + 1)
            self._thread = None

    def __enter__(self) -> LlrpReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def framing_errors(self) -> int:
        return self.health.counters["framing error"]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except FramingError as exc:
                self.health.count("framing error")
                self.health.offline(f"link dropped after a framing error: {exc}")
            except (BridgeError, OSError) as exc:
                self.health.offline(_reason(exc))
            except Exception as exc:  # a bug must not kill the thread silently: report it and retry
                log.exception("LLRP driver %s failed", self.name)
                self.health.count("internal error")
                self.health.offline(f"driver error: {exc!r}")
            finally:
                self._close_socket()
            if self._stop.is_set():
                break
            self._stop.wait(self._schedule.failed())
        self.health.offline("driver stopped")

    def identify(self) -> llrp.Capabilities:
        """Connect once, read the reader's capabilities and disconnect politely (no inventory)."""
        try:
            self._connect()
            caps = llrp.decode_capabilities(
                self._request(Msg.GET_READER_CAPABILITIES, llrp.get_reader_capabilities_body())
            )
            with contextlib.suppress(BridgeError):
                self._request(Msg.CLOSE_CONNECTION, b"")
            return caps
        finally:
            self._close_socket()

    # ------------------------------------------------------------------------------------ session

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.reply_timeout_s)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(0.1)  # short, so the loop notices stop() and keepalive silence promptly
        self._sock = sock
        self._decoder = LlrpStreamDecoder()
        self._last_rx = time.monotonic()
        self._announced = False
        self._early = []
        # Anything first seen before this link existed was held by the reader during an outage.
        self._online_since_us = now_us()
        self._await_connection_event()

    def _session(self) -> None:
        self._connect()
        caps = llrp.decode_capabilities(
            self._request(Msg.GET_READER_CAPABILITIES, llrp.get_reader_capabilities_body())
        )
        self.capabilities = caps
        self.health.online(f"connected (model {caps.model}, firmware {caps.firmware})")
        self._announced, early = True, self._early
        self._early = []
        for columns in early:
            self._emit_tags(columns)
        keepalive_ms = round(self.keepalive_s * 1000)
        self._checked(Msg.SET_READER_CONFIG, llrp.set_reader_config_body(keepalive_ms))
        self._request(Msg.DELETE_ROSPEC, llrp.rospec_id_body(0))  # clear what a previous client left
        self._request(Msg.DELETE_ACCESSSPEC, llrp.rospec_id_body(0))
        self._checked(Msg.ADD_ROSPEC, llrp.add_rospec_body(ROSPEC_ID, self.antennas, self.tags_per_report))
        if self.read_tid:
            access_spec = llrp.add_tid_accessspec_body(ACCESS_SPEC_ID, ROSPEC_ID, TID_WORDS)
            self._checked(Msg.ADD_ACCESSSPEC, access_spec)
            self._checked(Msg.ENABLE_ACCESSSPEC, llrp.rospec_id_body(ACCESS_SPEC_ID))
        self._checked(Msg.ENABLE_ROSPEC, llrp.rospec_id_body(ROSPEC_ID))
        self._checked(Msg.START_ROSPEC, llrp.rospec_id_body(ROSPEC_ID))
        self._schedule.succeeded()
        while not self._stop.is_set():
            self._pump()
        self._close_politely()

    def _await_connection_event(self) -> None:
        deadline = time.monotonic() + self.reply_timeout_s
        while time.monotonic() < deadline:
            for frame in self._pump():
                if frame.msg_type == Msg.READER_EVENT_NOTIFICATION:
                    attempt = llrp.decode_reader_event(frame.body).connection_attempt
                    if attempt == llrp.CONNECTION_SUCCESS:
                        return
                    if attempt is not None:
                        raise ProtocolError(f"reader refused the connection (status {attempt})")
        raise DeviceTimeout("reader sent no connection-attempt event")

    def _request(self, kind: Msg, body: bytes) -> bytes:
        """Send a request and return its response body; other messages meanwhile are handled as usual."""
        msg_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        self._sendall(llrp.encode(kind, msg_id, body))
        want = llrp.RESPONSE_OF[kind]
        deadline = time.monotonic() + self.reply_timeout_s
        while time.monotonic() < deadline:
            for frame in self._pump():
                if frame.msg_type == want or (frame.msg_type == Msg.ERROR_MESSAGE and frame.msg_id == msg_id):
                    return frame.body
        raise DeviceTimeout(f"no answer to {kind.name} within {self.reply_timeout_s} s")

    def _checked(self, kind: Msg, body: bytes) -> bytes:
        response = self._request(kind, body)
        status = llrp.decode_status(response)
        if not status.ok:
            raise ProtocolError(f"{kind.name} refused: status {status.code} {status.description}")
        return response

    def _sendall(self, data: bytes) -> None:
        if self._sock is None:
            raise TransportError("not connected")
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise TransportError(f"send failed: {exc}") from exc

    def _pump(self) -> list[llrp.Frame]:
        """Receive what is waiting, handle reports and keepalives; return the other frames."""
        assert self._sock is not None
        try:
            data = self._sock.recv(262144)
        except TimeoutError:
            silence = time.monotonic() - self._last_rx
            if self.keepalive_s and silence > 3 * self.keepalive_s + self.reply_timeout_s:
                raise DeviceTimeout(f"reader silent for {silence:.1f} s (keepalive missed)") from None
            return []
        except OSError as exc:
            raise TransportError(f"receive failed: {exc}") from exc
        if not data:
            raise TransportError("reader closed the connection")
        self._last_rx = time.monotonic()
        chunk = self._decoder.feed(data)
        if len(chunk.tags):
            self._emit_tags(chunk.tags)
        others: list[llrp.Frame] = []
        for frame in chunk.others:
            kind = frame.msg_type
            if kind == Msg.KEEPALIVE:
                self._sendall(llrp.encode(Msg.KEEPALIVE_ACK, frame.msg_id))
            elif kind == Msg.READER_EVENT_NOTIFICATION and _announces_close(frame):
                raise TransportError("reader announced it is closing the connection")
            elif kind == Msg.ERROR_MESSAGE and frame.msg_id == 0:
                status = llrp.decode_status(frame.body)
                self.health.count("reader error")
                self.health.degraded(f"reader error {status.code}: {status.description}")
            else:
                others.append(frame)
        if chunk.error:
            raise FramingError(chunk.error)
        return others

    def _emit_tags(self, tags: TagColumns) -> None:
        if not self._announced:  # reports a reader flushes on connect follow the ONLINE event
            self._early.append(tags)
            return
        sink, name, since, now = self._sink, self.name, self._online_since_us, now_us()
        for epc, antenna, rssi, seen, tid in zip(
            tags.epc_hex(), tags.antenna.tolist(), tags.rssi_dbm.tolist(), tags.first_seen_us.tolist(),
            tags.tid_hex(), strict=True,
        ):
            time_us = seen or now
            sink(TagRead(name, antenna, epc, time_us, float(rssi), tid, stale=time_us < since))
        self.tags_received += len(tags)

    def _close_politely(self) -> None:
        """Stop the inventory and say goodbye; a reader that does not answer is simply dropped."""
        with contextlib.suppress(BridgeError, OSError):
            self._request(Msg.STOP_ROSPEC, llrp.rospec_id_body(ROSPEC_ID))
            self._request(Msg.CLOSE_CONNECTION, b"")

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _announces_close(frame: llrp.Frame) -> bool:
    return llrp.decode_reader_event(frame.body).connection_closed


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__

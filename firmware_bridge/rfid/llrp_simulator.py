"""An LLRP fixed reader on a TCP port: tags in its field, inventory rounds at a realistic rate, drills.

It answers what a fixed reader answers: the connection-attempt event, capabilities (general, LLRP,
regulatory with power and RF mode tables, C1G2), reader config, events and reports, the ROSpec and
AccessSpec life cycles (add, enable, start, stop, disable, delete, get), Immediate start triggers, Impinj's
extensions when it presents itself as an Impinj reader, and RO_ACCESS_REPORTs honouring the report
trigger and content selector it was given.

Inventory runs in rounds, as a reader's radio does: one antenna at a time, each round taking a time that
grows with the tags answering it and depends on the RF mode (a few ms in fast modes, tens of ms in dense
reader modes). Every present tag answers every round in dual target search or session 0; in single target
sessions a tag answers once and stays quiet while its inventoried flag persists. AISpecs end by their stop
trigger (one round, a duration, N tags; never for Null), with an AISpec event if the client enabled them,
and a finished ROSpec sends its ROSpec event and waits to be started again (an Immediate one restarts).

Tags come from the field (`place` / `remove`, read every round they answer) or from a scripted walk of
single reads (`WalkStep`, read in the first round on its antenna after its time). Like a real reader it
keeps inventorying when the client's link drops and holds the reports until a client asks for reports
again, so nothing read while the link was down is lost. Drills: `drop_link`, `hang`, `rejects` (features
the reader refuses, as some readers in the field do).
"""

from __future__ import annotations

import collections
import contextlib
import random
import selectors
import socket
import struct
import threading
import time
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from firmware_bridge.errors import FramingError
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_codec import AiSpecStop, Msg, ReportTrigger, RfMode, StartTrigger, Status

_TICK_S = 0.01
_REPORTS_PER_SEND = 2000
_MAX_HELD_TAGS = 500_000  # a reader's report buffer; older reports are dropped beyond it
# Every refusable feature, for `rejects`.
FEATURES = frozenset({"tag_observation", "duration_stop", "reader_events", "custom_parameters", "access_spec",
                      "rf_control"})


@dataclass(frozen=True, slots=True)
class RoundTiming:
    """One inventory round on one antenna lasts overhead_s + per_tag_s for each tag answering."""

    overhead_s: float
    per_tag_s: float

    def round_s(self, tags: int) -> float:
        return self.overhead_s + self.per_tag_s * tags


# RF modes this simulator offers: fast FM0 and hybrid modes, Miller-4/8 dense reader modes (the latter
# about 130 reads/s for a single tag, as datasheets give for dense reader modes), Impinj-style AutoSet ids.
MODES: dict[int, tuple[RfMode, RoundTiming]] = {
    0: (RfMode(0, 0, 640_000), RoundTiming(0.0015, 0.0006)),
    1: (RfMode(1, 1, 320_000), RoundTiming(0.0020, 0.0012)),
    2: (RfMode(2, 2, 274_000), RoundTiming(0.0040, 0.0025)),
    3: (RfMode(3, 3, 170_600), RoundTiming(0.0030, 0.0047)),
    1002: (RfMode(1002, 2, 274_000), RoundTiming(0.0025, 0.0015)),
}
GENERIC_MODES = (0, 1, 2, 3)
IMPINJ_MODES = (0, 1, 2, 3, 1002)
PERSISTENCE_S = {1: 0.5, 2: float("inf"), 3: float("inf")}  # single target: how long a read tag stays quiet


@dataclass(frozen=True, slots=True)
class FieldTag:
    """A tag in the field of `antenna`, answering at `rssi_dbm`."""

    epc: str
    antenna: int
    rssi_dbm: int = -55
    tid: str | None = None  # hex; when None a TID is derived from the EPC


@dataclass(frozen=True, slots=True)
class WalkStep:
    """At `t_s` seconds after inventory starts, `epc` (hex) is read once on `antenna` at `rssi_dbm`."""

    t_s: float
    epc: str
    antenna: int
    rssi_dbm: int = -55
    tid: str | None = None


def derived_tid(epc: bytes) -> bytes:
    """A plausible TID (Impinj-style class/vendor prefix + serial from the EPC), stable per tag."""
    return bytes.fromhex("E2801105") + epc[-8:].rjust(8, b"\x00")


@dataclass
class _RoSpecState:
    request: llrp.RoSpecRequest
    state: int = 0  # 0 disabled, 1 inactive, 2 active (the ROSpecState values)


@dataclass
class _Run:
    """The execution of the active ROSpec: which AISpec and antenna, when the current round ends."""

    spec: llrp.RoSpecRequest
    antennas: list[tuple[int, ...]]  # per AISpec, every antenna resolved
    ai: int = 0
    ant: int = 0
    attempts: int = 0  # complete passes over the current AISpec's antennas
    spec_started: float = 0.0
    spec_tags: int = 0
    last_new_tag: float = 0.0
    round_ends: float = 0.0
    pending: list[bytes] = field(default_factory=list)


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
        firmware: str = "custodian-sim 2.0",
        model: int = 1,
        manufacturer: int = 0,
        rejects: Collection[str] = (),
        default_mode: int = 1,
        miss_probability: float = 0.0,
        seed: int = 0,
        immediate_restart: bool = True,
    ) -> None:
        unknown = set(rejects) - FEATURES
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)}; known: {sorted(FEATURES)}")
        self.host = host
        self.port = port
        self.antennas = antennas
        self.impinj = manufacturer == llrp.IMPINJ_PEN
        modes = IMPINJ_MODES if self.impinj else GENERIC_MODES
        self.description = llrp.ReaderDescription(antennas, manufacturer, model, firmware,
                                                  tuple(MODES[m][0] for m in modes))
        self.rejects = frozenset(rejects)
        self.default_mode = default_mode
        self.miss_probability = miss_probability
        self.immediate_restart = immediate_restart  # False: an Immediate ROSpec runs once per ENABLE
        self._rng = random.Random(seed)
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
        # Reader state; it survives a dropped link, as on a real reader.
        self._field: dict[tuple[str, int], FieldTag] = {}
        self._quiet_until: dict[str, float] = {}  # single target: tag -> when its inventoried flag decays
        self._walk_t0: float | None = None
        self._next_step = 0
        self._due: dict[int, collections.deque[WalkStep]] = collections.defaultdict(collections.deque)
        self._rospecs: dict[int, _RoSpecState] = {}
        self._run: _Run | None = None
        self._access: dict[int, tuple[int, bool, bytes]] = {}  # id -> (TID words read, enabled, raw)
        self._events: set[int] = set()
        self._extensions = False
        self._keepalive_s = 0.0
        self._next_keepalive = 0.0
        self._reporting = False  # the client asked for reports (START_ROSPEC or ENABLE_EVENTS_AND_REPORTS)
        self._outbox: collections.deque[tuple[bytes, int]] = collections.deque()  # (message, tags in it)
        self._held_tags = 0
        self.keepalive_acks = 0
        self.reports_sent = 0  # TagReportData delivered to a client
        self.events_sent = 0
        self.rounds_completed = 0
        self.connections = 0
        self.framing_errors = 0

    # ------------------------------------------------------------------------------------ control

    def start(self) -> LlrpSimulator:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError:
            listener.close()
            raise
        listener.listen(2)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"llrp-sim-{self.port}", daemon=True)
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

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def place(self, tag: FieldTag) -> None:
        """Put a tag in the field of its antenna (read in every round it answers, until removed)."""
        with self._lock:
            self._field[(tag.epc, tag.antenna)] = tag

    def remove(self, epc: str) -> None:
        with self._lock:
            self._field = {k: v for k, v in self._field.items() if k[0] != epc}
            self._quiet_until.pop(epc, None)

    def clear_field(self) -> None:
        with self._lock:
            self._field.clear()
            self._quiet_until.clear()

    def drop_link(self, refuse_for_s: float = 0.0) -> None:
        """Cut the client's TCP connection (as a pulled cable would) and refuse new ones for a while."""
        with self._lock:
            self._drop_requested = True
            self._refuse_until = time.monotonic() + refuse_for_s

    def allow_connections(self) -> None:
        """End a refusal `drop_link` started (the cable is plugged back in)."""
        with self._lock:
            self._refuse_until = 0.0

    def hang(self, seconds: float) -> None:
        """Stop reading, answering and sending for a while with the link left open (a wedged reader)."""
        with self._lock:
            self._hang_until = time.monotonic() + seconds

    def send_garbage(self, data: bytes) -> None:
        """Send bytes that are no LLRP message to the client, in turn with the reports (a broken reader)."""
        with self._lock:
            self._outbox.append((data, 0))

    @property
    def held_reports(self) -> int:
        """TagReportData read and not yet delivered to a client (the reader's report buffer)."""
        with self._lock:
            return self._held_tags

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

    def _serve(self) -> None:
        assert self._listener is not None
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "listen")
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now < self._hang_until:
                    self._stop.wait(_TICK_S)
                    continue
                wait = _TICK_S
                if self._run is not None:
                    wait = min(wait, max(0.0005, self._run.round_ends - now))
                for key, _ in sel.select(wait):
                    if key.data == "listen":
                        self._accept(sel)
                    else:
                        self._receive(sel)
                with self._lock:
                    drop = self._drop_requested
                    self._drop_requested = False
                if drop:
                    self._close_conn(sel)
                self._inventory(time.monotonic())
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
            if self._conn is not None:  # LLRP allows one controlling client; tell both why
                with contextlib.suppress(OSError):
                    refused = llrp.ConnectionStatus.FAILED_CLIENT_INITIATED_CONNECTION_EXISTS
                    event = llrp.connection_attempt_event(refused)
                    conn.sendall(llrp.encode(Msg.READER_EVENT_NOTIFICATION, 0, llrp.reader_event_body(now_us, event)))
                self._event(llrp.connection_attempt_event(llrp.ConnectionStatus.ANOTHER_CONNECTION_ATTEMPTED),
                            always=True)
            conn.close()
            return
        conn.setblocking(True)
        conn.settimeout(2.0)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn
        self._framer = llrp.LlrpFramer()
        self._reporting = False
        self.connections += 1
        sel.register(conn, selectors.EVENT_READ, "conn")
        body = llrp.reader_event_body(now_us, llrp.connection_attempt_event(llrp.ConnectionStatus.SUCCESS))
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
        self._reporting = False
        self._extensions = False
        # Events are for the client that was there; reports stay in the buffer for the next one.
        self._outbox = collections.deque(item for item in self._outbox if item[1])

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
                self._send(sel, llrp.encode(Msg.ERROR_MESSAGE, frame.msg_id,
                                            llrp.status(Status.M_PARAMETER_ERROR, str(exc))))

    # ------------------------------------------------------------------------------------ messages

    def _reply(self, sel: selectors.BaseSelector, frame: llrp.Frame, body: bytes) -> None:
        self._send(sel, llrp.encode(llrp.RESPONSE_OF[Msg(frame.msg_type)], frame.msg_id, body))

    def _error(self, sel: selectors.BaseSelector, frame: llrp.Frame, code: Status, text: str) -> None:
        self._reply(sel, frame, llrp.status(code, text))

    def _handle(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        kind = frame.msg_type
        if kind == Msg.KEEPALIVE_ACK:
            self.keepalive_acks += 1
        elif kind == Msg.GET_READER_CAPABILITIES:
            self._reply(sel, frame, llrp.capabilities_response_body(self.description))
        elif kind == Msg.GET_READER_CONFIG:
            body = llrp.reader_config_response_body(self.antennas, round(self._keepalive_s * 1000),
                                                    frozenset(self._events))
            self._reply(sel, frame, body)
        elif kind == Msg.SET_READER_CONFIG:
            self._set_config(sel, frame)
        elif kind == Msg.ENABLE_EVENTS_AND_REPORTS:  # no response message exists for this one
            self._reporting = True
        elif kind == Msg.ADD_ROSPEC:
            self._add_rospec(sel, frame)
        elif kind in (Msg.ENABLE_ROSPEC, Msg.START_ROSPEC, Msg.STOP_ROSPEC, Msg.DISABLE_ROSPEC, Msg.DELETE_ROSPEC):
            self._rospec_command(sel, frame)
        elif kind == Msg.GET_ROSPECS:
            specs = b"".join(_with_state(s.request.raw, s.state) for _, s in sorted(self._rospecs.items()))
            self._reply(sel, frame, llrp.status() + specs)
        elif kind == Msg.ADD_ACCESSSPEC:
            self._add_accessspec(sel, frame)
        elif kind in (Msg.ENABLE_ACCESSSPEC, Msg.DISABLE_ACCESSSPEC, Msg.DELETE_ACCESSSPEC):
            self._accessspec_command(sel, frame)
        elif kind == Msg.GET_ACCESSSPECS:
            specs = b"".join(_access_with_state(raw, on) for _, (_, on, raw) in sorted(self._access.items()))
            self._reply(sel, frame, llrp.status() + specs)
        elif kind == Msg.CLOSE_CONNECTION:
            self._reply(sel, frame, llrp.status())
            self._close_conn(sel)
        elif kind == Msg.CUSTOM_MESSAGE:
            self._custom_message(sel, frame)
        else:
            self._send(sel, llrp.encode(Msg.ERROR_MESSAGE, frame.msg_id,
                                        llrp.status(Status.M_UNSUPPORTED_MESSAGE, f"message type {kind}")))

    def _set_config(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        config = llrp.decode_set_reader_config(frame.body)
        if config.events and any(config.events.values()) and "reader_events" in self.rejects:
            self._error(sel, frame, Status.M_UNSUPPORTED_PARAMETER, "ReaderEventNotificationSpec not supported")
            return
        if config.keepalive_ms is not None:
            self._keepalive_s = config.keepalive_ms / 1000.0
            self._next_keepalive = time.monotonic() + self._keepalive_s
        for event, on in config.events.items():
            (self._events.add if on else self._events.discard)(event)
        self._reply(sel, frame, llrp.status())

    def _custom_message(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        vendor, subtype, _ = llrp.decode_custom_message(frame.body)
        if self.impinj and (vendor, subtype) == (llrp.IMPINJ_PEN, llrp.IMPINJ_ENABLE_EXTENSIONS):
            self._extensions = True
            body = llrp.custom_message_body(llrp.IMPINJ_PEN, llrp.IMPINJ_ENABLE_EXTENSIONS_RESPONSE, llrp.status())
            self._send(sel, llrp.encode(Msg.CUSTOM_MESSAGE, frame.msg_id, body))
            return
        self._send(sel, llrp.encode(Msg.ERROR_MESSAGE, frame.msg_id, llrp.status(
            Status.M_UNSUPPORTED_MESSAGE, f"custom message vendor {vendor} subtype {subtype}")))

    def _refusal(self, spec: llrp.RoSpecRequest, raw_state: int) -> tuple[Status, str] | None:
        """Why this reader would refuse the ROSpec, or None."""
        if raw_state != 0:
            return Status.P_FIELD_ERROR, "an ROSpec must be added in the Disabled state"
        if spec.rospec_id == 0:
            return Status.M_FIELD_ERROR, "ROSpecID 0 is reserved"
        if spec.rospec_id in self._rospecs:
            return Status.M_FIELD_ERROR, f"ROSpec {spec.rospec_id} already exists"
        if not spec.aispecs:
            return Status.M_MISSING_PARAMETER, "ROSpec without an AISpec"
        for ai in spec.aispecs:
            if ai.stop is AiSpecStop.TAG_OBSERVATION and "tag_observation" in self.rejects:
                return Status.M_PARAMETER_ERROR, "Adding AISpec with unsupported StopTrigger 3"
            if ai.stop is AiSpecStop.DURATION and "duration_stop" in self.rejects:
                return Status.M_PARAMETER_ERROR, "Adding AISpec with unsupported StopTrigger 1"
            if ai.mode_index is not None and ("rf_control" in self.rejects or ai.mode_index not in
                                              {m.mode_id for m in self.description.modes}):
                return Status.M_FIELD_ERROR, f"C1G2RFControl ModeIndex {ai.mode_index} not supported"
            if any(a > self.antennas for a in ai.antennas):
                return Status.M_FIELD_ERROR, f"antenna out of range 1..{self.antennas}"
        for vendor, subtype in spec.custom_parameters:
            usable = vendor == llrp.IMPINJ_PEN and self._extensions and "custom_parameters" not in self.rejects
            if not usable:
                return Status.M_UNSUPPORTED_PARAMETER, f"Custom parameter vendor {vendor} subtype {subtype}"
        return None

    def _add_rospec(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        spec = llrp.decode_add_rospec(frame.body)
        refusal = self._refusal(spec, spec.raw[9] if len(spec.raw) > 9 else 0)
        if refusal is not None:
            self._error(sel, frame, *refusal)
            return
        self._rospecs[spec.rospec_id] = _RoSpecState(spec)
        self._reply(sel, frame, llrp.status())

    def _rospec_command(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        if len(frame.body) < 4:
            raise FramingError("ROSpec command without ROSpecID")
        rospec_id = int.from_bytes(frame.body[:4], "big")
        kind = frame.msg_type
        targets = list(self._rospecs) if rospec_id == 0 else [rospec_id]
        if rospec_id and rospec_id not in self._rospecs:
            self._error(sel, frame, Status.M_FIELD_ERROR, f"no ROSpec {rospec_id}")
            return
        for rid in targets:
            spec = self._rospecs[rid]
            if kind == Msg.ENABLE_ROSPEC and spec.state == 0:
                spec.state = 1
                self._reporting = True
                if spec.request.start is StartTrigger.IMMEDIATE:
                    self._start(rid)
            elif kind == Msg.START_ROSPEC:
                if spec.state != 1:
                    self._error(sel, frame, Status.M_FIELD_ERROR,
                                f"ROSpec {rid} is {'disabled' if spec.state == 0 else 'already active'}")
                    return
                self._reporting = True
                self._start(rid)
            elif kind == Msg.STOP_ROSPEC:
                if spec.state == 2:
                    self._end_rospec(time.monotonic(), restart=False)
            elif kind == Msg.DISABLE_ROSPEC:
                if spec.state == 2:
                    self._end_rospec(time.monotonic(), restart=False)
                spec.state = 0
            elif kind == Msg.DELETE_ROSPEC:
                if spec.state == 2:
                    self._end_rospec(time.monotonic(), restart=False)
                del self._rospecs[rid]
        self._reply(sel, frame, llrp.status())

    def _add_accessspec(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        found = llrp.find_param(frame.body, llrp.P.ACCESS_SPEC)
        if found is None or found[1] - found[0] < 4:
            raise FramingError("ADD_ACCESSSPEC without AccessSpec")
        access_id = llrp.u32_at(frame.body, found[0])
        if "access_spec" in self.rejects:
            self._error(sel, frame, Status.M_UNSUPPORTED_PARAMETER, "AccessSpecs are not supported")
        elif access_id in self._access or access_id == 0:
            self._error(sel, frame, Status.M_FIELD_ERROR, f"AccessSpec {access_id} exists or is reserved")
        else:
            self._access[access_id] = (llrp.decode_tid_words(frame.body), False, frame.body[found[0] - 4 : found[1]])
            self._reply(sel, frame, llrp.status())

    def _accessspec_command(self, sel: selectors.BaseSelector, frame: llrp.Frame) -> None:
        if len(frame.body) < 4:
            raise FramingError("AccessSpec command without AccessSpecID")
        access_id = int.from_bytes(frame.body[:4], "big")
        if access_id and access_id not in self._access:
            self._error(sel, frame, Status.M_FIELD_ERROR, f"no AccessSpec {access_id}")
            return
        for aid in list(self._access) if access_id == 0 else [access_id]:
            words, _on, raw = self._access[aid]
            if frame.msg_type == Msg.DELETE_ACCESSSPEC:
                del self._access[aid]
            else:
                self._access[aid] = (words, frame.msg_type == Msg.ENABLE_ACCESSSPEC, raw)
        self._reply(sel, frame, llrp.status())

    # ------------------------------------------------------------------------------------ inventory

    def _start(self, rospec_id: int) -> None:
        if self._run is not None:  # one active ROSpec at a time: the new one preempts
            self._end_rospec(time.monotonic(), restart=False)
        spec = self._rospecs[rospec_id]
        spec.state = 2
        now = time.monotonic()
        if self._walk_t0 is None:
            self._walk_t0 = now
        every = tuple(range(1, self.antennas + 1))
        run = _Run(spec.request, [ai.antennas or every for ai in spec.request.aispecs])
        self._run = run
        self._event(llrp.rospec_event(0, rospec_id), kind=llrp.NotificationEvent.ROSPEC)
        self._begin_aispec(run, now)

    def _begin_aispec(self, run: _Run, now: float) -> None:
        run.ant, run.attempts, run.spec_tags = 0, 0, 0
        run.spec_started = run.last_new_tag = now
        run.round_ends = now + self._round_length(run)

    def _ai(self, run: _Run) -> llrp.AiSpecRequest:
        return run.spec.aispecs[run.ai]

    def _mode(self, run: _Run) -> RoundTiming:
        index = self._ai(run).mode_index
        return MODES[index if index in MODES else self.default_mode][1]

    def _answering(self, run: _Run, antenna: int, at: float) -> list[FieldTag]:
        ai = self._ai(run)
        search = ai.search_mode if self._extensions else None
        every_round = search == llrp.ImpinjSearchMode.DUAL_TARGET or not ai.session
        tags = [t for (_, a), t in self._field.items() if a == antenna]
        if not every_round:
            quiet = self._quiet_until
            persistence = PERSISTENCE_S.get(ai.session or 0, 0.0)
            tags = [t for t in tags if quiet.get(t.epc, 0.0) <= at]
            for t in tags:
                quiet[t.epc] = at + persistence
        if self.miss_probability:
            tags = [t for t in tags if self._rng.random() >= self.miss_probability]
        return tags

    def _round_length(self, run: _Run) -> float:
        antenna = run.antennas[run.ai][run.ant]
        present = sum(1 for (_, a) in self._field if a == antenna)
        return self._mode(run).round_s(present)

    def _inventory(self, now: float) -> None:
        """Complete every round due by now, in order (rounds are timed on the monotonic clock)."""
        with self._lock:
            self._advance_walk(now)
            if self._run is not None and now - self._run.round_ends > 0.5:
                self._run.round_ends = now  # the radio was stalled (a hang drill): no rounds meanwhile
            rounds = 0
            while self._run is not None and self._run.round_ends <= now and rounds < 10_000:
                rounds += 1
                self._complete_round(self._run, self._run.round_ends)

    def _complete_round(self, run: _Run, at: float) -> None:
        antenna = run.antennas[run.ai][run.ant]
        wall_us = time.time_ns() // 1000 - int((time.monotonic() - at) * 1e6)
        reads = [(t.epc, t.rssi_dbm, t.tid) for t in self._answering(run, antenna, at)]
        due = self._due.get(antenna)
        while due:
            step = due.popleft()
            reads.append((step.epc, step.rssi_dbm, step.tid))
        for epc, rssi, tid in reads:
            run.pending.append(self._tag_report(run, antenna, epc, rssi, tid, wall_us))
        run.spec_tags += len(reads)
        if reads:
            run.last_new_tag = at
        self.rounds_completed += 1
        n = run.spec.tags_per_report
        if n and len(run.pending) >= n and run.spec.report_trigger is not ReportTrigger.NONE:
            self._flush(run)
        run.ant += 1
        if run.ant == len(run.antennas[run.ai]):
            run.ant = 0
            run.attempts += 1
        if self._aispec_done(run, at):
            if run.spec.report_trigger is ReportTrigger.N_TAGS_OR_END_OF_AISPEC:
                self._flush(run)
            self._event(llrp.aispec_end_event(run.spec.rospec_id, run.ai + 1), kind=llrp.NotificationEvent.AISPEC,
                        utc_us=wall_us)
            run.ai += 1
            if run.ai == len(run.spec.aispecs):
                self._end_rospec(at, restart=run.spec.start is StartTrigger.IMMEDIATE and self.immediate_restart)
                return
            self._begin_aispec(run, at)
            return
        run.round_ends = at + self._round_length(run)

    def _aispec_done(self, run: _Run, at: float) -> bool:
        ai = self._ai(run)
        if ai.stop is AiSpecStop.DURATION:
            return (at - run.spec_started) * 1000 >= ai.duration_ms and run.ant == 0
        if ai.stop is AiSpecStop.TAG_OBSERVATION and ai.observation is not None:
            kind, n_tags, attempts, t_ms, timeout_ms = ai.observation
            if timeout_ms and (at - run.spec_started) * 1000 >= timeout_ms:
                return True
            if kind == llrp.TagObservation.N_ATTEMPTS:
                return run.ant == 0 and run.attempts >= max(1, attempts)
            if kind == llrp.TagObservation.UPON_N_TAGS:
                return run.spec_tags >= max(1, n_tags)
            if kind == llrp.TagObservation.NO_NEW_TAGS_FOR_T_MS:
                return (at - run.last_new_tag) * 1000 >= t_ms
        return False

    def _end_rospec(self, at: float, *, restart: bool) -> None:
        run = self._run
        if run is None:
            return
        if run.spec.report_trigger is not ReportTrigger.NONE:
            self._flush(run)  # the end of an ROSpec ends its AISpec too
        self._run = None
        rospec_id = run.spec.rospec_id
        state = self._rospecs.get(rospec_id)
        if state is not None:
            state.state = 1
        self._event(llrp.rospec_event(1, rospec_id), kind=llrp.NotificationEvent.ROSPEC)
        if restart and state is not None:
            self._start(rospec_id)
            if self._run is not None:
                self._begin_aispec(self._run, at)

    def _tag_report(self, run: _Run, antenna: int, epc_hex: str, rssi: int, tid_hex: str | None,
                    wall_us: int) -> bytes:
        epc = bytes.fromhex(epc_hex)
        selector = run.spec.selector
        tid = None
        words = max((w for w, on, _ in self._access.values() if on), default=0)
        if words:
            tid = (bytes.fromhex(tid_hex) if tid_hex else derived_tid(epc))[: 2 * words]
        extras = None
        content = run.spec.impinj_content
        if content is not None and self._extensions:
            serialized = (bytes.fromhex(tid_hex) if tid_hex else derived_tid(epc)) if content.serialized_tid else None
            phase = (zlib.crc32(epc) + self.rounds_completed * 37) % 4096 if content.phase else None
            extras = llrp.ImpinjExtras(rssi * 100 if content.peak_rssi else None, phase, serialized)
        return llrp.tag_report_data(
            epc,
            antenna if selector & llrp.SELECT_ANTENNA_ID else None,
            rssi if selector & llrp.SELECT_PEAK_RSSI else None,
            wall_us if selector & llrp.SELECT_FIRST_SEEN else None,
            tid,
            last_seen_us=wall_us if selector & llrp.SELECT_LAST_SEEN else None,
            seen_count=1 if selector & llrp.SELECT_SEEN_COUNT else None,
            rospec_id=run.spec.rospec_id if selector & llrp.SELECT_ROSPEC_ID else None,
            spec_index=run.ai + 1 if selector & llrp.SELECT_SPEC_INDEX else None,
            channel=1 if selector & llrp.SELECT_CHANNEL else None,
            impinj=extras,
        )

    def _flush(self, run: _Run) -> None:
        pending, run.pending = run.pending, []
        n = run.spec.tags_per_report or len(pending)
        for i in range(0, len(pending), max(1, n)):
            chunk = pending[i : i + n]
            self._outbox.append((llrp.encode(Msg.RO_ACCESS_REPORT, 0, b"".join(chunk)), len(chunk)))
            self._held_tags += len(chunk)
        while self._held_tags > _MAX_HELD_TAGS and self._outbox:  # the report buffer overflows: oldest go
            self._held_tags -= self._outbox.popleft()[1]

    def _event(self, event: bytes, *, kind: int | None = None, always: bool = False, utc_us: int | None = None) -> None:
        """Queue a reader event for the connected client (events are not held for a client to come)."""
        if self._conn is None or not (always or kind in self._events):
            return
        body = llrp.reader_event_body(utc_us or time.time_ns() // 1000, event)
        self._outbox.append((llrp.encode(Msg.READER_EVENT_NOTIFICATION, 0, body), 0))

    def _advance_walk(self, now: float) -> None:
        """Steps now due wait for the next round on their antenna; those on antennas not read are lost."""
        if self._walk_t0 is None:
            return
        elapsed = now - self._walk_t0
        walk = self._walk
        every = tuple(range(1, self.antennas + 1))
        inventoried = {a for spec in self._rospecs.values() if spec.state for ai in spec.request.aispecs
                       for a in (ai.antennas or every)}
        while self._next_step < len(walk) and walk[self._next_step].t_s <= elapsed:
            step = walk[self._next_step]
            self._next_step += 1
            if step.antenna in inventoried:
                self._due[step.antenna].append(step)
        if self._next_step >= len(walk) and self._repeat_s and walk and elapsed >= self._repeat_s:
            self._walk_t0 += self._repeat_s
            self._next_step = 0

    def _deliver(self, sel: selectors.BaseSelector) -> None:
        if self._conn is None or not self._reporting:
            return
        while True:
            with self._lock:
                if not self._outbox:
                    return
                chunk = [self._outbox.popleft() for _ in range(min(_REPORTS_PER_SEND, len(self._outbox)))]
            # Many messages per write, as a reader's TCP stack coalesces them under load.
            if not self._send(sel, b"".join(message for message, _ in chunk)):
                with self._lock:  # the link broke mid-send: keep the reports for the next client
                    self._outbox.extendleft(reversed([item for item in chunk if item[1]]))
                return
            tags = sum(n for _, n in chunk)
            self.reports_sent += tags
            self._held_tags -= tags
            self.events_sent += sum(1 for _, n in chunk if not n)

    def _keepalive(self, sel: selectors.BaseSelector) -> None:
        if self._conn is None or not self._keepalive_s or time.monotonic() < self._next_keepalive:
            return
        self._next_keepalive = time.monotonic() + self._keepalive_s
        self._send(sel, llrp.encode(Msg.KEEPALIVE, 0))


def _with_state(raw: bytes, state: int) -> bytes:
    """An ROSpec parameter with its CurrentState byte set (after the TLV header, ROSpecID and Priority)."""
    return raw[:9] + bytes([state]) + raw[10:]


def _access_with_state(raw: bytes, enabled: bool) -> bytes:
    """An AccessSpec parameter with its CurrentState bit set (after AccessSpecID, AntennaID, ProtocolID)."""
    return raw[:11] + struct.pack(">B", 0x80 if enabled else 0) + raw[12:]

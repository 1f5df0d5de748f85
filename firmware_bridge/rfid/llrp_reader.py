"""LLRP client driver for fixed portal readers: configure an inventory that reports its rounds, stream tags.

On connect the driver reads the reader's capabilities, picks a reader profile (Impinj R700/Speedway,
Zebra FX/ATR or plain LLRP) and asks for the inventory a portal needs: every present tag answering every
round (dual target, or session 0), one AISpec per antenna that ends after one round, and an AISpec event
at each end, so the host knows when the field has been read. A reader that refuses a part is asked again
without it, in this order: vendor parameters, then tag-observation AISpecs (some readers accept only
Duration stops: sllurp issue 177), then round reporting altogether (one endless AISpec). What was given up
is listed in `negotiated.fallbacks` and in the ONLINE health reason.

One thread owns the socket (`TagReader` runs it): RO_ACCESS_REPORTs become `TagBatch`es decoded by the
Numba stream decoder, AISpec ends become `InventoryRoundEnd`s, the ROSpec is restarted when it ends,
keepalives are answered. A lost link reports OFFLINE and reconnects with back-off; reports the reader held
meanwhile arrive afterwards marked stale.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, replace

from firmware_bridge.backoff import Backoff
from firmware_bridge.errors import BridgeError, DeviceTimeout, FramingError, ProtocolError, TransportError
from firmware_bridge.health import now_us
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_codec import ImpinjSearchMode, InventoryPlan, Msg, RoundReporting
from firmware_bridge.rfid.llrp_fast import LlrpStreamDecoder
from firmware_bridge.rfid.reader import EventSink, ReaderIdentity, TagReader

ROSPEC_ID = 1
ACCESS_SPEC_ID = 1
TID_WORDS = 6  # 96-bit TID: class id, vendor, model and the factory serial
RESTART_GRACE_S = 0.05  # after an ROSpec end, how long to wait for the reader to restart it itself
START_PROBE_S = 0.25  # after ENABLE_ROSPEC, how long to wait for the Immediate ROSpec's start event
MAKERS = {llrp.IMPINJ_PEN: "Impinj", llrp.ZEBRA_PEN: "Zebra"}
SEARCH_MODES = {
    "dual_target": ImpinjSearchMode.DUAL_TARGET,
    "single_target": ImpinjSearchMode.SINGLE_TARGET,
    "tag_focus": ImpinjSearchMode.SINGLE_TARGET_WITH_SUPPRESSION,
    "reader_selected": ImpinjSearchMode.READER_SELECTED,
}


@dataclass(frozen=True, slots=True)
class ReaderProfile:
    """How to ask a family of readers for a portal inventory."""

    name: str
    extensions: bool  # Impinj Octane extensions: search mode, sub-dBm RSSI, RF phase, TID in the report
    session: int  # a session where every present tag answers every round, with the search mode below
    search_mode: ImpinjSearchMode | None


PROFILES = {
    "generic": ReaderProfile("generic", extensions=False, session=0, search_mode=None),
    # Octane: dual target flips every tag's inventoried flag each round, so each round reads the whole field.
    "impinj": ReaderProfile("impinj", extensions=True, session=1, search_mode=ImpinjSearchMode.DUAL_TARGET),
    # Zebra FX/ATR: session 0 with A/B flip, the firmware's own portal setting.
    "zebra": ReaderProfile("zebra", extensions=False, session=0, search_mode=None),
}
PROFILE_OF_MAKER = {llrp.IMPINJ_PEN: "impinj", llrp.ZEBRA_PEN: "zebra"}


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What the reader accepted (`fallbacks`: what it refused, and what was done instead)."""

    profile: str
    rounds: RoundReporting
    session: int | None
    search_mode: str
    tid: str  # "access spec", "in the report" (Impinj) or "off"
    mode_index: int | None
    fallbacks: tuple[str, ...] = ()

    def summary(self) -> str:
        parts = [f"profile {self.profile}", f"rounds: {self.rounds}", f"search: {self.search_mode}"]
        if self.session is not None:
            parts.append(f"session {self.session}")
        if self.mode_index is not None:
            parts.append(f"mode {self.mode_index}")
        parts.append(f"TID {self.tid}")
        if self.fallbacks:
            parts.append("fallbacks: " + "; ".join(self.fallbacks))
        return ", ".join(parts)


class LlrpReader(TagReader):
    """Driver for one LLRP reader. Events go to `sink` (default: the `events` queue)."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int = 5084,
        *,
        antennas: tuple[int, ...] = (1, 2, 3, 4),
        profile: str = "auto",
        read_tid: bool = False,
        session: int | None = None,
        search_mode: str | None = None,
        reader_mode: int | None = None,
        rounds: RoundReporting = RoundReporting.AISPEC_END,
        round_ms: int = 25,
        tags_per_report: int = 1,
        keepalive_s: float = 1.0,
        reply_timeout_s: float = 2.0,
        round_watchdog_s: float = 3.0,
        backoff: Backoff | None = None,
        sink: EventSink | None = None,
    ) -> None:
        super().__init__(name, reply_timeout_s=reply_timeout_s, backoff=backoff, sink=sink)
        if profile != "auto" and profile not in PROFILES:
            raise ValueError(f"unknown LLRP reader profile {profile!r}; known: auto, {', '.join(PROFILES)}")
        if search_mode is not None and search_mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {search_mode!r}; known: {', '.join(SEARCH_MODES)}")
        self.host, self.port = host, port
        self.antennas = antennas
        self.profile = profile
        self.read_tid = read_tid
        self.session, self.search_mode, self.reader_mode = session, search_mode, reader_mode
        self.rounds, self.round_ms = RoundReporting(rounds), round_ms
        self.tags_per_report = tags_per_report
        self.keepalive_s = keepalive_s
        self.round_watchdog_s = round_watchdog_s
        self.capabilities: llrp.Capabilities | None = None
        self.negotiated: Negotiated | None = None
        self.other_clients_refused = 0  # connection attempts the reader turned away while we held it
        self._sock: socket.socket | None = None
        self._decoder = LlrpStreamDecoder(name)
        self._next_id = 1
        self._last_rx = 0.0
        self._plan: InventoryPlan | None = None
        self._ended_at: float | None = None
        self._rospec_started = False
        self.host_restarts = 0  # times the host had to restart the ROSpec
        self._last_round = 0.0
        self._round_alarm = False

    # ------------------------------------------------------------------------------------ backend

    def _open(self) -> str:
        caps = self._connect()
        self._configure(caps)
        assert self.negotiated is not None
        return f"connected (model {caps.model}, firmware {caps.firmware}; {self.negotiated.summary()})"

    def _read(self, timeout_s: float) -> None:
        for frame in self._pump(timeout_s):
            if frame.msg_type == Msg.START_ROSPEC_RESPONSE:  # to a restart by the host
                reply = llrp.decode_status(frame.body)
                if not reply.ok:
                    raise ProtocolError(f"reader refused to restart the inventory: {reply}")
        self._restart_if_stopped()
        self._watch_rounds()

    def _close(self) -> None:
        if self._sock is None:
            return
        self._plan = None  # the ROSpec ending now must not be restarted
        if self.capabilities is not None:  # say goodbye; a reader that does not answer is simply dropped
            with contextlib.suppress(BridgeError, OSError):
                self._request(Msg.STOP_ROSPEC, llrp.rospec_id_body(ROSPEC_ID))
                self._request(Msg.CLOSE_CONNECTION, b"")
        self._close_socket()

    def _identify(self) -> ReaderIdentity:
        if self.running and self.capabilities is not None:
            return _identity(self.capabilities)
        try:
            caps = self._connect()
            with contextlib.suppress(BridgeError):
                self._request(Msg.CLOSE_CONNECTION, b"")
            return _identity(caps)
        finally:
            self._close_socket()

    # ------------------------------------------------------------------------------------ session

    def _connect(self) -> llrp.Capabilities:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.reply_timeout_s)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._decoder = LlrpStreamDecoder(self.name)
        self._last_rx = time.monotonic()
        self.capabilities = None
        self._await_connection_event()
        caps = llrp.decode_capabilities(self._request(Msg.GET_READER_CAPABILITIES, llrp.get_reader_capabilities_body()))
        self.capabilities = caps
        return caps

    def _configure(self, caps: llrp.Capabilities) -> None:
        fallbacks: list[str] = []
        profile = PROFILES[self.profile if self.profile != "auto" else PROFILE_OF_MAKER.get(caps.manufacturer,
                                                                                              "generic")]
        extensions = profile.extensions
        if extensions:
            reply = self._custom_request(llrp.impinj_enable_extensions_body())
            if not reply.ok:
                extensions = False
                fallbacks.append(f"Octane extensions refused ({reply}): plain LLRP")
        # Reports the reader held while no client was connected come now; they are stale.
        self._send(Msg.ENABLE_EVENTS_AND_REPORTS, b"")
        keepalive_ms = round(self.keepalive_s * 1000)
        events = (llrp.NotificationEvent.AISPEC, llrp.NotificationEvent.ROSPEC)
        rounds = self.rounds
        reply = llrp.decode_status(self._request(Msg.SET_READER_CONFIG, llrp.set_reader_config_body(keepalive_ms,
                                                                                                      events)))
        if not reply.ok:
            self._checked(Msg.SET_READER_CONFIG, llrp.set_reader_config_body(keepalive_ms))
            if rounds is not RoundReporting.NONE:
                fallbacks.append(f"AISpec and ROSpec events refused ({reply}): no round ends")
                rounds = RoundReporting.NONE
        self._request(Msg.DELETE_ROSPEC, llrp.rospec_id_body(0))  # clear what a previous client left
        self._request(Msg.DELETE_ACCESSSPEC, llrp.rospec_id_body(0))
        mode = self.reader_mode
        if mode is not None and caps.modes and mode not in {m.mode_id for m in caps.modes}:
            fallbacks.append(f"reader mode {mode} not in the reader's mode table: reader default")
            mode = None
        search = SEARCH_MODES[self.search_mode] if self.search_mode else profile.search_mode
        if not extensions:
            search = None
        # Without dual target search only session 0 has every tag answer every round.
        session = self.session if self.session is not None else (profile.session if search else 0)
        tid_in_report = self.read_tid and extensions
        plan = InventoryPlan(
            ROSPEC_ID, self.antennas, rounds, round_ms=self.round_ms, tags_per_report=self.tags_per_report,
            session=session, mode_index=mode,
            impinj_search_mode=search,
            impinj_content=llrp.ImpinjContent(serialized_tid=tid_in_report) if extensions else None,
        )
        plan = self._add_rospec(plan, fallbacks)
        tid = "off"
        if self.read_tid:
            if plan.impinj_content is not None and plan.impinj_content.serialized_tid:
                tid = "in the report"
            else:
                access = llrp.add_tid_accessspec_body(ACCESS_SPEC_ID, ROSPEC_ID, TID_WORDS)
                reply = llrp.decode_status(self._request(Msg.ADD_ACCESSSPEC, access))
                if reply.ok:
                    self._checked(Msg.ENABLE_ACCESSSPEC, llrp.rospec_id_body(ACCESS_SPEC_ID))
                    tid = "access spec"
                else:
                    fallbacks.append(f"TID read refused ({reply}): no TID")
        self._checked(Msg.ENABLE_ROSPEC, llrp.rospec_id_body(ROSPEC_ID))
        self._ensure_started(fallbacks)
        self._plan = plan
        self._ended_at = None
        self._last_round = time.monotonic()
        self._round_alarm = False
        search_words = "reader default" if plan.impinj_search_mode is None else plan.impinj_search_mode.name.lower()
        self.negotiated = Negotiated(profile.name, plan.rounds, plan.session, search_words, tid, plan.mode_index,
                                     tuple(fallbacks))

    def _add_rospec(self, plan: InventoryPlan, fallbacks: list[str]) -> InventoryPlan:
        """Add the plan's ROSpec, giving up optional parts one by one until the reader accepts it."""
        refused: llrp.StatusReply | None = None
        for candidate, change in _simpler_plans(plan):
            if refused is not None:
                fallbacks.append(f"ROSpec refused ({refused}): {change}")
                self._request(Msg.DELETE_ROSPEC, llrp.rospec_id_body(ROSPEC_ID))
            refused = llrp.decode_status(self._request(Msg.ADD_ROSPEC, llrp.add_rospec_body(candidate)))
            if refused.ok:
                return candidate
        raise ProtocolError(f"reader refused every ROSpec, the simplest with {refused}")

    def _ensure_started(self, fallbacks: list[str]) -> None:
        """An Immediate ROSpec starts on ENABLE, and says so with an ROSpec event; start it by hand on a
        reader that left it waiting (a START_ROSPEC refused because it runs after all is no error)."""
        self._rospec_started = False
        deadline = time.monotonic() + START_PROBE_S
        while not self._rospec_started and time.monotonic() < deadline:
            self._pump(0.02)
        if self._rospec_started:
            return
        reply = llrp.decode_status(self._request(Msg.START_ROSPEC, llrp.rospec_id_body(ROSPEC_ID)))
        fallbacks.append("no ROSpec start event after ENABLE: started by START_ROSPEC"
                         + ("" if reply.ok else f" (answered {reply})"))

    def _restart_if_stopped(self) -> None:
        """A reader that does not restart a finished Immediate ROSpec by itself is restarted by the host
        (then it reads only while the host is connected)."""
        ended = self._ended_at
        if ended is not None and time.monotonic() - ended > RESTART_GRACE_S:
            self._ended_at = None
            self._send(Msg.START_ROSPEC, llrp.rospec_id_body(ROSPEC_ID))
            self.host_restarts += 1

    def _watch_rounds(self) -> None:
        plan = self._plan
        if plan is None or plan.rounds is RoundReporting.NONE or not self.round_watchdog_s:
            return
        silent = time.monotonic() - self._last_round
        if silent > self.round_watchdog_s:
            self._round_alarm = True
            self.health.degraded(f"no inventory round reported for {silent:.0f} s: exit decisions wait the full "
                                 "settle time")

    def _await_connection_event(self) -> None:
        deadline = time.monotonic() + self.reply_timeout_s
        while time.monotonic() < deadline:
            for frame in self._pump(0.05):
                if frame.msg_type == Msg.READER_EVENT_NOTIFICATION:
                    attempt = llrp.decode_reader_event(frame.body).connection_attempt
                    if attempt == llrp.ConnectionStatus.SUCCESS:
                        return
                    if attempt is not None:
                        raise ProtocolError(f"reader refused the connection: {_connection_status(attempt)}")
        raise DeviceTimeout("reader sent no connection-attempt event")

    def _send(self, kind: Msg, body: bytes) -> int:
        msg_id = self._next_id
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF or 1
        if self._sock is None:
            raise TransportError("not connected")
        try:
            self._sock.sendall(llrp.encode(kind, msg_id, body))
        except OSError as exc:
            raise TransportError(f"send failed: {exc}") from exc
        return msg_id

    def _exchange(self, kind: Msg, body: bytes) -> llrp.Frame:
        """Send a request and return its answer; other messages meanwhile are handled as usual."""
        msg_id = self._send(kind, body)
        want = llrp.RESPONSE_OF[kind]
        deadline = time.monotonic() + self.reply_timeout_s
        while time.monotonic() < deadline:
            for frame in self._pump(0.05):
                if frame.msg_id == msg_id and frame.msg_type in (want, Msg.ERROR_MESSAGE):
                    return frame
        raise DeviceTimeout(f"no answer to {kind.name} within {self.reply_timeout_s} s")

    def _request(self, kind: Msg, body: bytes) -> bytes:
        return self._exchange(kind, body).body

    def _custom_request(self, body: bytes) -> llrp.StatusReply:
        answer = self._exchange(Msg.CUSTOM_MESSAGE, body)
        if answer.msg_type == Msg.ERROR_MESSAGE:  # a reader without this vendor's extensions
            return llrp.decode_status(answer.body)
        return llrp.decode_status(answer.body, 5)  # after the vendor number and message subtype

    def _checked(self, kind: Msg, body: bytes) -> bytes:
        response = self._request(kind, body)
        reply = llrp.decode_status(response)
        if not reply.ok:
            raise ProtocolError(f"{kind.name} refused: {reply}")
        return response

    def _pump(self, timeout_s: float) -> list[llrp.Frame]:
        """Receive what is waiting, handle reports, events and keepalives; return the other frames."""
        assert self._sock is not None
        self._sock.settimeout(timeout_s)
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
        chunk = self._decoder.feed(data, now_us())
        self._emit_tags(chunk.tags)
        others: list[llrp.Frame] = []
        for frame in chunk.others:
            kind = frame.msg_type
            if kind == Msg.KEEPALIVE:
                self._send(Msg.KEEPALIVE_ACK, b"")
            elif kind == Msg.READER_EVENT_NOTIFICATION:
                if self._reader_event(frame):
                    others.append(frame)
            elif kind == Msg.ERROR_MESSAGE and frame.msg_id == 0:
                reply = llrp.decode_status(frame.body)
                self.health.count("reader error")
                self.health.degraded(f"reader error: {reply}")
            else:
                others.append(frame)
        if chunk.error:
            raise FramingError(chunk.error)
        return others

    def _reader_event(self, frame: llrp.Frame) -> bool:
        """Act on a reader event; True when the caller should see it too (connection attempts)."""
        event = llrp.decode_reader_event(frame.body)
        if event.connection_closed:
            raise TransportError("reader announced it is closing the connection")
        if event.connection_attempt == llrp.ConnectionStatus.ANOTHER_CONNECTION_ATTEMPTED:
            self.other_clients_refused += 1
            return False
        plan = self._plan
        if event.aispec_end is not None and plan is not None and event.aispec_end[0] == ROSPEC_ID:
            specs = plan.spec_antennas()
            index = event.aispec_end[1]
            if plan.rounds is not RoundReporting.NONE and 1 <= index <= len(specs):
                self._last_round = time.monotonic()
                if self._round_alarm:
                    self._round_alarm = False
                    self.health.online("inventory rounds reported again")
                for antenna in specs[index - 1]:
                    self._emit_round_end(antenna, event.utc_us or None)
            return False
        if event.rospec is not None and event.rospec[1] == ROSPEC_ID:
            # One pass over the antennas is done; the reader restarts an Immediate ROSpec by itself.
            self._ended_at = time.monotonic() if event.rospec[0] == 1 else None
            self._rospec_started = self._rospec_started or event.rospec[0] == 0
            return False
        return event.connection_attempt is not None

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        self._plan = None
        if sock is not None:
            sock.close()


def _simpler_plans(plan: InventoryPlan) -> list[tuple[InventoryPlan, str]]:
    """The plan, then versions without what readers are known to refuse, in the order they are given up
    (vendor parameters, one-round AISpecs, mode and session, round reporting), each with what it changed."""
    candidates = [(plan, "as asked")]
    if plan.impinj_search_mode is not None or plan.impinj_content is not None:
        dual = plan.impinj_search_mode is ImpinjSearchMode.DUAL_TARGET
        plan = replace(plan, impinj_search_mode=None, impinj_content=None, session=0 if dual else plan.session)
        candidates.append((plan, "without Octane parameters" + (", session 0" if dual else "")))
    if plan.rounds is RoundReporting.AISPEC_END:
        plan = replace(plan, rounds=RoundReporting.DURATION)
        candidates.append((plan, f"{plan.round_ms} ms Duration AISpecs instead of one-round AISpecs"))
    if plan.mode_index is not None or plan.session is not None:
        plan = replace(plan, mode_index=None, session=None)
        candidates.append((plan, "with the reader's own mode and session"))
    if plan.rounds is not RoundReporting.NONE:
        plan = replace(plan, rounds=RoundReporting.NONE)
        candidates.append((plan, "one endless AISpec: no round ends"))
    return candidates


def _identity(caps: llrp.Capabilities) -> ReaderIdentity:
    maker = MAKERS.get(caps.manufacturer) or (f"PEN {caps.manufacturer}" if caps.manufacturer else "reader")
    detail = f"{len(caps.modes)} RF modes" if caps.modes else ""
    return ReaderIdentity(f"LLRP {maker}", str(caps.model), caps.firmware, caps.antennas, detail)


def _connection_status(code: int) -> str:
    try:
        return llrp.ConnectionStatus(code).name.lower().replace("_", " ") + f" (status {code})"
    except ValueError:
        return f"status {code}"



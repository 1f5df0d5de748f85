"""LLRP 1.0.1 binary codec: message framing, the parameters Custodian uses, and a fast tag-report decoder.

Wire facts (EPCglobal LLRP 1.0.1): a message is a 10-byte header (3 reserved bits, 3-bit version = 1,
10-bit type; u32 total length; u32 message id) then parameters. A TLV parameter has a u16 type (low 10
bits) and a u16 length that includes its 4-byte header; a TV parameter is one byte with the top bit set
(7-bit type) followed by a value whose length is fixed by the type. Everything is big-endian.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from firmware_bridge.errors import FramingError

HEADER_LEN = 10
MAX_MESSAGE_LEN = 4 * 1024 * 1024  # bigger than any report a reader sends; larger means a corrupt header
LLRP_VERSION = 1
MAX_EPC_BYTES = 62  # EPCData carries at most 496 bits
MAX_TID_BYTES = 32  # longer TID reads are truncated

_HEADER = struct.Struct(">HII")
_TLV = struct.Struct(">HH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Msg(enum.IntEnum):
    GET_READER_CAPABILITIES = 1
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    ADD_ACCESSSPEC = 40
    DELETE_ACCESSSPEC = 41
    ENABLE_ACCESSSPEC = 42
    ADD_ACCESSSPEC_RESPONSE = 50
    DELETE_ACCESSSPEC_RESPONSE = 51
    ENABLE_ACCESSSPEC_RESPONSE = 52
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100


# Every request's response type; a reader answering a request with ERROR_MESSAGE is also a response.
RESPONSE_OF = {
    Msg.GET_READER_CAPABILITIES: Msg.GET_READER_CAPABILITIES_RESPONSE,
    Msg.SET_READER_CONFIG: Msg.SET_READER_CONFIG_RESPONSE,
    Msg.CLOSE_CONNECTION: Msg.CLOSE_CONNECTION_RESPONSE,
    Msg.ADD_ROSPEC: Msg.ADD_ROSPEC_RESPONSE,
    Msg.DELETE_ROSPEC: Msg.DELETE_ROSPEC_RESPONSE,
    Msg.START_ROSPEC: Msg.START_ROSPEC_RESPONSE,
    Msg.STOP_ROSPEC: Msg.STOP_ROSPEC_RESPONSE,
    Msg.ENABLE_ROSPEC: Msg.ENABLE_ROSPEC_RESPONSE,
    Msg.ADD_ACCESSSPEC: Msg.ADD_ACCESSSPEC_RESPONSE,
    Msg.DELETE_ACCESSSPEC: Msg.DELETE_ACCESSSPEC_RESPONSE,
    Msg.ENABLE_ACCESSSPEC: Msg.ENABLE_ACCESSSPEC_RESPONSE,
}


class P(enum.IntEnum):
    """TLV parameter types."""

    UTC_TIMESTAMP = 128
    GENERAL_DEVICE_CAPABILITIES = 137
    RECEIVE_SENSITIVITY_TABLE_ENTRY = 139
    PER_ANTENNA_AIR_PROTOCOL = 140
    GPIO_CAPABILITIES = 141
    RO_SPEC = 177
    RO_BOUNDARY_SPEC = 178
    RO_SPEC_START_TRIGGER = 179
    RO_SPEC_STOP_TRIGGER = 182
    AI_SPEC = 183
    AI_SPEC_STOP_TRIGGER = 184
    INVENTORY_PARAMETER_SPEC = 186
    ACCESS_SPEC = 207
    ACCESS_SPEC_STOP_TRIGGER = 208
    ACCESS_COMMAND = 209
    KEEPALIVE_SPEC = 220
    RO_REPORT_SPEC = 237
    TAG_REPORT_CONTENT_SELECTOR = 238
    ACCESS_REPORT_SPEC = 239
    TAG_REPORT_DATA = 240
    EPC_DATA = 241
    READER_EVENT_NOTIFICATION_DATA = 246
    CONNECTION_ATTEMPT_EVENT = 256
    CONNECTION_CLOSE_EVENT = 257
    LLRP_STATUS = 287
    C1G2_TAG_SPEC = 338
    C1G2_TARGET_TAG = 339
    C1G2_READ = 341
    C1G2_READ_OP_SPEC_RESULT = 349


# TV parameter types -> value length in bytes (LLRP 1.0.1 section 16.2).
TV_LEN = {
    1: 2,  # AntennaID
    2: 8,  # FirstSeenTimestampUTC
    3: 8,  # FirstSeenTimestampUptime
    4: 8,  # LastSeenTimestampUTC
    5: 8,  # LastSeenTimestampUptime
    6: 1,  # PeakRSSI
    7: 2,  # ChannelIndex
    8: 2,  # TagSeenCount
    9: 4,  # ROSpecID
    10: 2,  # InventoryParameterSpecID
    11: 2,  # C1G2_CRC
    12: 2,  # C1G2_PC
    13: 12,  # EPC-96
    14: 2,  # SpecIndex
    15: 2,  # ClientRequestOpSpecResult
    16: 4,  # AccessSpecID
    17: 2,  # OpSpecID
    18: 4,  # C1G2SingulationDetails
    19: 2,  # C1G2_XPCW1
    20: 2,  # C1G2_XPCW2
}
TV_ANTENNA_ID, TV_FIRST_SEEN_UTC, TV_PEAK_RSSI, TV_EPC96 = 1, 2, 6, 13

STATUS_SUCCESS = 0
CONNECTION_SUCCESS = 0
CONNECTION_ALREADY_EXISTS = 4  # Failed_A_Client_Initiated_Connection_Already_Exists
TID_BANK = 2


@dataclass(frozen=True, slots=True)
class Frame:
    """One LLRP message: its type, id and the raw parameter bytes after the header."""

    msg_type: int
    msg_id: int
    body: bytes


# ---------------------------------------------------------------------------------------------- encoding


def encode(msg_type: int, msg_id: int, body: bytes = b"") -> bytes:
    return _HEADER.pack((LLRP_VERSION << 10) | msg_type, HEADER_LEN + len(body), msg_id) + body


def tlv(ptype: int, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return _TLV.pack(ptype, 4 + len(payload)) + payload


def tv(ptype: int, value: bytes) -> bytes:
    return bytes([0x80 | ptype]) + value


def status(code: int = STATUS_SUCCESS, description: str = "") -> bytes:
    text = description.encode()
    return tlv(P.LLRP_STATUS, struct.pack(">HH", code, len(text)), text)


def rospec_id_body(rospec_id: int) -> bytes:
    return _U32.pack(rospec_id)


def get_reader_capabilities_body() -> bytes:
    return b"\x00"  # RequestedData = All


def set_reader_config_body(keepalive_ms: int) -> bytes:
    # ResetToFactoryDefault = 0; a periodic KeepaliveSpec lets both ends notice a dead link.
    keepalive = tlv(P.KEEPALIVE_SPEC, struct.pack(">BI", 1 if keepalive_ms else 0, keepalive_ms))
    return b"\x00" + keepalive


def ro_report_spec(tags_per_report: int) -> bytes:
    # Content: AntennaID (bit 12), PeakRSSI (bit 10), FirstSeenTimestamp (bit 9); EPC is always reported.
    selector = tlv(P.TAG_REPORT_CONTENT_SELECTOR, _U16.pack((1 << 12) | (1 << 10) | (1 << 9)))
    # Trigger 2: report upon N tags or end of ROSpec, so a running inventory streams reports.
    return tlv(P.RO_REPORT_SPEC, struct.pack(">BH", 2, tags_per_report), selector)


def add_rospec_body(rospec_id: int, antennas: tuple[int, ...], tags_per_report: int) -> bytes:
    start = tlv(P.RO_SPEC_START_TRIGGER, b"\x00")  # Null: started by START_ROSPEC
    stop = tlv(P.RO_SPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0))  # Null: runs until STOP_ROSPEC
    boundary = tlv(P.RO_BOUNDARY_SPEC, start, stop)
    ai_stop = tlv(P.AI_SPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0))
    inventory = tlv(P.INVENTORY_PARAMETER_SPEC, struct.pack(">HB", 1, 1))  # protocol 1 = EPC C1G2
    ant = struct.pack(f">H{len(antennas)}H", len(antennas), *antennas)
    ai_spec = tlv(P.AI_SPEC, ant, ai_stop, inventory)
    rospec = tlv(
        P.RO_SPEC, struct.pack(">IBB", rospec_id, 0, 0), boundary, ai_spec, ro_report_spec(tags_per_report)
    )
    return rospec


def add_tid_accessspec_body(access_spec_id: int, rospec_id: int, tid_words: int) -> bytes:
    """An AccessSpec reading `tid_words` words of the TID bank from every tag (match-all target)."""
    # EPC bank, Match = 1, empty mask and data: selects every tag.
    target = tlv(P.C1G2_TARGET_TAG, struct.pack(">BHHH", (1 << 6) | (1 << 5), 0, 0, 0))
    tag_spec = tlv(P.C1G2_TAG_SPEC, target)
    read = tlv(P.C1G2_READ, struct.pack(">HIBHH", 1, 0, TID_BANK << 6, 0, tid_words))
    command = tlv(P.ACCESS_COMMAND, tag_spec, read)
    stop = tlv(P.ACCESS_SPEC_STOP_TRIGGER, struct.pack(">BH", 0, 0))
    head = struct.pack(">IHBBI", access_spec_id, 0, 1, 0, rospec_id)  # antenna 0 = all, disabled
    return tlv(P.ACCESS_SPEC, head, stop, command)


def reader_event_body(utc_us: int, event: bytes) -> bytes:
    return tlv(P.READER_EVENT_NOTIFICATION_DATA, tlv(P.UTC_TIMESTAMP, _U64.pack(utc_us)), event)


def connection_attempt_event(status_code: int) -> bytes:
    return tlv(P.CONNECTION_ATTEMPT_EVENT, _U16.pack(status_code))


def connection_close_event() -> bytes:
    return tlv(P.CONNECTION_CLOSE_EVENT)


def capabilities_response_body(antennas: int, manufacturer: int, model: int, firmware: str) -> bytes:
    fw = firmware.encode()
    sensitivity = tlv(P.RECEIVE_SENSITIVITY_TABLE_ENTRY, struct.pack(">Hh", 1, 0))
    gpio = tlv(P.GPIO_CAPABILITIES, struct.pack(">HH", 0, 0))
    per_antenna = b"".join(tlv(P.PER_ANTENNA_AIR_PROTOCOL, struct.pack(">HHB", a, 1, 1)) for a in
                           range(1, antennas + 1))
    general = tlv(
        P.GENERAL_DEVICE_CAPABILITIES,
        struct.pack(">HHIIH", antennas, 1 << 14, manufacturer, model, len(fw)),  # bit 14: has UTC clock
        fw,
        sensitivity,
        gpio,
        per_antenna,
    )
    return status() + general


def tag_report_data(
    epc: bytes, antenna: int, rssi: int, first_seen_us: int, tid: bytes | None = None
) -> bytes:
    """One TagReportData: EPC-96 as TV when it is 96 bits, else EPCData; TID as a C1G2Read result."""
    epc_param = tv(TV_EPC96, epc) if len(epc) == 12 else tlv(P.EPC_DATA, _U16.pack(len(epc) * 8), epc)
    fields = [epc_param, tv(TV_ANTENNA_ID, _U16.pack(antenna)), tv(TV_PEAK_RSSI, struct.pack(">b", rssi)),
              tv(TV_FIRST_SEEN_UTC, _U64.pack(first_seen_us))]
    if tid is not None:
        fields.append(tlv(P.C1G2_READ_OP_SPEC_RESULT, struct.pack(">BHH", 0, 1, len(tid) // 2), tid))
    return tlv(P.TAG_REPORT_DATA, *fields)


# ---------------------------------------------------------------------------------------------- framing


class LlrpFramer:
    """Cuts a TCP byte stream into LLRP messages. A corrupt header cannot be resynchronised on a stream,
    so it raises FramingError and the caller drops the connection; `framing_errors` counts them."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.framing_errors = 0

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        n = len(buf)
        while n - pos >= HEADER_LEN:
            word, length, msg_id = _HEADER.unpack_from(buf, pos)
            if (word >> 10) & 0x7 != LLRP_VERSION or not HEADER_LEN <= length <= MAX_MESSAGE_LEN:
                self.framing_errors += 1
                self._buf = bytearray()
                raise FramingError(f"bad LLRP header: version {(word >> 10) & 7}, length {length}")
            if n - pos < length:
                break
            frames.append(Frame(word & 0x3FF, msg_id, bytes(buf[pos + HEADER_LEN : pos + length])))
            pos += length
        if pos:
            del buf[:pos]
        return frames


# ---------------------------------------------------------------------------------------------- decoding


def iter_params(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int, int]]:
    """(type, value start, value end) of each parameter in data[start:end], TV and TLV alike."""
    end = len(data) if end is None else end
    if end > len(data):
        raise FramingError("parameter runs past its message")
    out: list[tuple[int, int, int]] = []
    i = start
    while i < end:
        b = data[i]
        if b & 0x80:
            ptype = b & 0x7F
            ln = TV_LEN.get(ptype)
            if ln is None:
                raise FramingError(f"unknown TV parameter {ptype}")
            nxt = i + 1 + ln
            val = i + 1
        else:
            if i + 4 > end:
                raise FramingError("truncated TLV header")
            ptype, ln = _TLV.unpack_from(data, i)
            ptype &= 0x3FF
            if ln < 4:
                raise FramingError(f"TLV {ptype} with length {ln}")
            nxt = i + ln
            val = i + 4
        if nxt > end:
            raise FramingError(f"parameter {ptype} runs past its parent")
        out.append((ptype, val, nxt))
        i = nxt
    return out


def find_param(data: bytes, ptype: int, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    for t, s, e in iter_params(data, start, end):
        if t == ptype:
            return s, e
    return None


@dataclass(frozen=True, slots=True)
class Status:
    code: int
    description: str

    @property
    def ok(self) -> bool:
        return self.code == STATUS_SUCCESS


def decode_status(body: bytes) -> Status:
    """The LLRPStatus of a response or ERROR_MESSAGE."""
    found = find_param(body, P.LLRP_STATUS)
    if found is None or found[1] - found[0] < 4:
        raise FramingError("response without LLRPStatus")
    s, e = found
    code, text_len = struct.unpack_from(">HH", body, s)
    if s + 4 + text_len > e:
        raise FramingError("LLRPStatus description runs past its parameter")
    return Status(code, body[s + 4 : s + 4 + text_len].decode(errors="replace"))


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """The events of a READER_EVENT_NOTIFICATION this client acts on."""

    utc_us: int | None
    connection_attempt: int | None  # status code, 0 = success
    connection_closed: bool


def decode_reader_event(body: bytes) -> ReaderEvent:
    found = find_param(body, P.READER_EVENT_NOTIFICATION_DATA)
    if found is None:
        raise FramingError("READER_EVENT_NOTIFICATION without ReaderEventNotificationData")
    utc, attempt, closed = None, None, False
    for t, s, e in iter_params(body, *found):
        if t == P.UTC_TIMESTAMP and e - s >= 8:
            utc = _U64.unpack_from(body, s)[0]
        elif t == P.CONNECTION_ATTEMPT_EVENT and e - s >= 2:
            attempt = _U16.unpack_from(body, s)[0]
        elif t == P.CONNECTION_CLOSE_EVENT:
            closed = True
    return ReaderEvent(utc, attempt, closed)


@dataclass(frozen=True, slots=True)
class Capabilities:
    antennas: int
    manufacturer: int  # IANA private enterprise number
    model: int
    firmware: str


def decode_capabilities(body: bytes) -> Capabilities:
    found = find_param(body, P.GENERAL_DEVICE_CAPABILITIES)
    if found is None or found[1] - found[0] < 14:
        raise FramingError("capabilities without GeneralDeviceCapabilities")
    s, e = found
    antennas, _flags, manufacturer, model, fw_len = struct.unpack_from(">HHIIH", body, s)
    if s + 14 + fw_len > e:
        raise FramingError("firmware version runs past its parameter")
    firmware = body[s + 14 : s + 14 + fw_len].decode(errors="replace")
    return Capabilities(antennas, manufacturer, model, firmware)


@dataclass(frozen=True, slots=True)
class TagBatch:
    """Tag reports decoded column by column (the tracking engine consumes columns, not objects)."""

    epc: list[str] = field(default_factory=list)  # upper-case hex
    antenna: list[int] = field(default_factory=list)  # 0 when the reader did not report it
    rssi_dbm: list[int] = field(default_factory=list)  # -128 when not reported
    first_seen_us: list[int] = field(default_factory=list)  # 0 when not reported
    tid: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epc)


def decode_ro_access_report(body: bytes, out: TagBatch | None = None) -> TagBatch:
    """Decode every TagReportData of an RO_ACCESS_REPORT body into columns (appending to `out`).

    The plain-Python reference of `llrp_fast`'s kernel (same results, held together by the tests),
    used where a message is already framed. Anything malformed raises FramingError.
    """
    batch = TagBatch() if out is None else out
    try:
        _decode_tag_reports(body, batch)
    except (IndexError, struct.error, ValueError) as exc:
        raise FramingError(f"malformed RO_ACCESS_REPORT: {exc}") from exc
    return batch


def _decode_tag_reports(data: bytes, batch: TagBatch) -> None:
    epcs, ants, rssis, seens, tids = batch.epc, batch.antenna, batch.rssi_dbm, batch.first_seen_us, batch.tid
    tlv_head, u16, u64, tv_len = _TLV.unpack_from, _U16.unpack_from, _U64.unpack_from, TV_LEN
    n = len(data)
    i = 0
    while i < n:
        if data[i] & 0x80:
            raise FramingError("TV parameter at the top of an RO_ACCESS_REPORT")
        ptype, ln = tlv_head(data, i)
        end = i + ln
        if ln < 4 or end > n:
            raise FramingError(f"bad length {ln} of parameter {ptype & 0x3FF}")
        if ptype & 0x3FF != 240:  # RFSurveyReportData, Custom: not tags
            i = end
            continue
        epc: str | None = None
        antenna, rssi, seen = 0, -128, 0
        tid: str | None = None
        j = i + 4
        while j < end:
            b = data[j]
            if b & 0x80:
                t = b & 0x7F
                ln = tv_len.get(t)
                if ln is None:
                    raise FramingError(f"unknown TV parameter {t}")
                nxt = j + 1 + ln
                if nxt > end:
                    raise FramingError("TV parameter runs past its TagReportData")
                if t == 13:
                    epc = data[j + 1 : nxt].hex().upper()
                elif t == 1:
                    antenna = u16(data, j + 1)[0]
                elif t == 6:
                    rssi = data[j + 1] - 256 if data[j + 1] > 127 else data[j + 1]
                elif t == 2:
                    seen = u64(data, j + 1)[0]
                j = nxt
            else:
                t, ln = tlv_head(data, j)
                t &= 0x3FF
                nxt = j + ln
                if ln < 4 or nxt > end:
                    raise FramingError(f"bad length {ln} of parameter {t}")
                if t == 241:  # EPCData: bit count, then the bits padded to whole bytes
                    bits = u16(data, j + 4)[0]
                    nbytes = (bits + 7) >> 3
                    if j + 6 + nbytes > nxt or nbytes > MAX_EPC_BYTES:
                        raise FramingError("EPCData bits run past the parameter")
                    epc = data[j + 6 : j + 6 + nbytes].hex().upper()
                elif t == 349 and ln >= 9 and data[j + 4] == 0:  # C1G2ReadOpSpecResult, success
                    words = u16(data, j + 7)[0]  # after result and op spec id: word count, words
                    if words and j + 9 + 2 * words <= nxt:
                        tid = data[j + 9 : j + 9 + min(2 * words, MAX_TID_BYTES)].hex().upper()
                j = nxt
        if epc is None:
            raise FramingError("TagReportData without an EPC")
        epcs.append(epc)
        ants.append(antenna)
        rssis.append(rssi)
        seens.append(seen)
        tids.append(tid)
        i = end


# ------------------------------------------------------------------------ reader side (the simulator's)


@dataclass(frozen=True, slots=True)
class RoSpecSummary:
    """What a reader needs from ADD_ROSPEC to run an inventory: id, antennas (empty = all), tags/report."""

    rospec_id: int
    antennas: tuple[int, ...]
    tags_per_report: int


def decode_add_rospec(body: bytes) -> RoSpecSummary:
    found = find_param(body, P.RO_SPEC)
    if found is None or found[1] - found[0] < 6:
        raise FramingError("ADD_ROSPEC without ROSpec")
    s, e = found
    rospec_id = _U32.unpack_from(body, s)[0]
    antennas: list[int] = []
    per_report = 1
    for t, ps, pe in iter_params(body, s + 6, e):
        if t == P.AI_SPEC and pe - ps >= 2:
            count = _U16.unpack_from(body, ps)[0]
            if ps + 2 + 2 * count > pe:
                raise FramingError("AISpec antenna list runs past its parameter")
            antennas += struct.unpack_from(f">{count}H", body, ps + 2)
        elif t == P.RO_REPORT_SPEC and pe - ps >= 3:
            per_report = _U16.unpack_from(body, ps + 1)[0]
    all_antennas = not antennas or 0 in antennas
    return RoSpecSummary(rospec_id, () if all_antennas else tuple(antennas), max(1, per_report))


def decode_tid_words(body: bytes) -> int:
    """Words of the TID bank an ADD_ACCESSSPEC asks to read (0 if it reads nothing from the TID bank)."""
    spec = find_param(body, P.ACCESS_SPEC)
    if spec is None or spec[1] - spec[0] < 12:
        raise FramingError("ADD_ACCESSSPEC without AccessSpec")
    command = find_param(body, P.ACCESS_COMMAND, spec[0] + 12, spec[1])
    if command is None:
        raise FramingError("AccessSpec without AccessCommand")
    for t, s, e in iter_params(body, *command):
        if t == P.C1G2_READ and e - s >= 11 and body[s + 6] >> 6 == TID_BANK:
            return _U16.unpack_from(body, s + 9)[0]
    return 0


def decode_keepalive_ms(body: bytes) -> int | None:
    """The periodic keepalive a SET_READER_CONFIG asks for: None if absent, 0 if switched off."""
    if not body:
        raise FramingError("empty SET_READER_CONFIG")
    found = find_param(body, P.KEEPALIVE_SPEC, 1)
    if found is None:
        return None
    s, e = found
    if e - s < 5:
        raise FramingError("short KeepaliveSpec")
    trigger, period = struct.unpack_from(">BI", body, s)
    return period if trigger == 1 else 0

"""LLRP 1.0.1 binary codec: framing, the messages and parameters Custodian and its simulator use.

Wire facts (EPCglobal LLRP 1.0.1): a message is a 10-byte header (3 reserved bits, 3-bit version = 1,
10-bit type; u32 total length; u32 message id) then parameters. A TLV parameter has a u16 type (low 10
bits) and a u16 length that includes its 4-byte header; a TV parameter is one byte with the top bit set
(7-bit type) followed by a value whose length is fixed by the type. Everything is big-endian. Vendor
extensions are Custom parameters (type 1023: vendor PEN u32, subtype u32, data) and CUSTOM_MESSAGE
(type 1023: vendor PEN u32, subtype u8, data); Impinj's (PEN 25882) are the ones readers in the field use.

The client side builds requests and decodes answers; the reader side (used by `llrp_simulator`) decodes
requests and builds answers. `decode_ro_access_report` is the plain-Python reference of the Numba
stream decoder in `llrp_fast`.
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
IMPINJ_PEN = 25882  # IANA private enterprise numbers, as readers announce them in their capabilities
ZEBRA_PEN = 161  # Zebra fixed readers (FX7500, FX9600, ATR7000) report the Motorola Solutions number

_HEADER = struct.Struct(">HII")
_TLV = struct.Struct(">HH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Msg(enum.IntEnum):
    GET_READER_CAPABILITIES = 1
    GET_READER_CONFIG = 2
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    GET_READER_CONFIG_RESPONSE = 12
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    DISABLE_ROSPEC = 25
    GET_ROSPECS = 26
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    DISABLE_ROSPEC_RESPONSE = 35
    GET_ROSPECS_RESPONSE = 36
    ADD_ACCESSSPEC = 40
    DELETE_ACCESSSPEC = 41
    ENABLE_ACCESSSPEC = 42
    DISABLE_ACCESSSPEC = 43
    GET_ACCESSSPECS = 44
    ADD_ACCESSSPEC_RESPONSE = 50
    DELETE_ACCESSSPEC_RESPONSE = 51
    ENABLE_ACCESSSPEC_RESPONSE = 52
    DISABLE_ACCESSSPEC_RESPONSE = 53
    GET_ACCESSSPECS_RESPONSE = 54
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    ENABLE_EVENTS_AND_REPORTS = 64
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100
    CUSTOM_MESSAGE = 1023


# Every request's response type; a reader answering a request with ERROR_MESSAGE is also a response.
RESPONSE_OF = {
    Msg.GET_READER_CAPABILITIES: Msg.GET_READER_CAPABILITIES_RESPONSE,
    Msg.GET_READER_CONFIG: Msg.GET_READER_CONFIG_RESPONSE,
    Msg.SET_READER_CONFIG: Msg.SET_READER_CONFIG_RESPONSE,
    Msg.CLOSE_CONNECTION: Msg.CLOSE_CONNECTION_RESPONSE,
    Msg.ADD_ROSPEC: Msg.ADD_ROSPEC_RESPONSE,
    Msg.DELETE_ROSPEC: Msg.DELETE_ROSPEC_RESPONSE,
    Msg.START_ROSPEC: Msg.START_ROSPEC_RESPONSE,
    Msg.STOP_ROSPEC: Msg.STOP_ROSPEC_RESPONSE,
    Msg.ENABLE_ROSPEC: Msg.ENABLE_ROSPEC_RESPONSE,
    Msg.DISABLE_ROSPEC: Msg.DISABLE_ROSPEC_RESPONSE,
    Msg.GET_ROSPECS: Msg.GET_ROSPECS_RESPONSE,
    Msg.ADD_ACCESSSPEC: Msg.ADD_ACCESSSPEC_RESPONSE,
    Msg.DELETE_ACCESSSPEC: Msg.DELETE_ACCESSSPEC_RESPONSE,
    Msg.ENABLE_ACCESSSPEC: Msg.ENABLE_ACCESSSPEC_RESPONSE,
    Msg.DISABLE_ACCESSSPEC: Msg.DISABLE_ACCESSSPEC_RESPONSE,
    Msg.GET_ACCESSSPECS: Msg.GET_ACCESSSPECS_RESPONSE,
    Msg.CUSTOM_MESSAGE: Msg.CUSTOM_MESSAGE,
}


class P(enum.IntEnum):
    """TLV parameter types."""

    UTC_TIMESTAMP = 128
    GENERAL_DEVICE_CAPABILITIES = 137
    RECEIVE_SENSITIVITY_TABLE_ENTRY = 139
    PER_ANTENNA_AIR_PROTOCOL = 140
    GPIO_CAPABILITIES = 141
    LLRP_CAPABILITIES = 142
    REGULATORY_CAPABILITIES = 143
    UHF_BAND_CAPABILITIES = 144
    TRANSMIT_POWER_LEVEL_TABLE_ENTRY = 145
    FREQUENCY_INFORMATION = 146
    FREQUENCY_HOP_TABLE = 147
    RO_SPEC = 177
    RO_BOUNDARY_SPEC = 178
    RO_SPEC_START_TRIGGER = 179
    PERIODIC_TRIGGER_VALUE = 180
    RO_SPEC_STOP_TRIGGER = 182
    AI_SPEC = 183
    AI_SPEC_STOP_TRIGGER = 184
    TAG_OBSERVATION_TRIGGER = 185
    INVENTORY_PARAMETER_SPEC = 186
    ACCESS_SPEC = 207
    ACCESS_SPEC_STOP_TRIGGER = 208
    ACCESS_COMMAND = 209
    LLRP_CONFIGURATION_STATE_VALUE = 217
    IDENTIFICATION = 218
    KEEPALIVE_SPEC = 220
    ANTENNA_PROPERTIES = 221
    ANTENNA_CONFIGURATION = 222
    RF_RECEIVER = 223
    RF_TRANSMITTER = 224
    EVENTS_AND_REPORTS = 226
    RO_REPORT_SPEC = 237
    TAG_REPORT_CONTENT_SELECTOR = 238
    ACCESS_REPORT_SPEC = 239
    TAG_REPORT_DATA = 240
    EPC_DATA = 241
    READER_EVENT_NOTIFICATION_SPEC = 244
    EVENT_NOTIFICATION_STATE = 245
    READER_EVENT_NOTIFICATION_DATA = 246
    ROSPEC_EVENT = 249
    AISPEC_EVENT = 254
    CONNECTION_ATTEMPT_EVENT = 256
    CONNECTION_CLOSE_EVENT = 257
    LLRP_STATUS = 287
    C1G2_LLRP_CAPABILITIES = 327
    C1G2_UHF_RF_MODE_TABLE = 328
    C1G2_UHF_RF_MODE_TABLE_ENTRY = 329
    C1G2_INVENTORY_COMMAND = 330
    C1G2_RF_CONTROL = 335
    C1G2_SINGULATION_CONTROL = 336
    C1G2_TAG_SPEC = 338
    C1G2_TARGET_TAG = 339
    C1G2_READ = 341
    C1G2_READ_OP_SPEC_RESULT = 349
    CUSTOM = 1023


class Status(enum.IntEnum):
    """LLRPStatus codes (LLRP 1.0.1 section 14.2.2): M_ message, P_ parameter, A_ field, R_ device errors."""

    M_SUCCESS = 0
    M_PARAMETER_ERROR = 100
    M_FIELD_ERROR = 101
    M_UNEXPECTED_PARAMETER = 102
    M_MISSING_PARAMETER = 103
    M_DUPLICATE_PARAMETER = 104
    M_OVERFLOW_PARAMETER = 105
    M_OVERFLOW_FIELD = 106
    M_UNKNOWN_PARAMETER = 107
    M_UNKNOWN_FIELD = 108
    M_UNSUPPORTED_MESSAGE = 109
    M_UNSUPPORTED_VERSION = 110
    M_UNSUPPORTED_PARAMETER = 111
    P_PARAMETER_ERROR = 200
    P_FIELD_ERROR = 201
    P_UNEXPECTED_PARAMETER = 202
    P_MISSING_PARAMETER = 203
    P_DUPLICATE_PARAMETER = 204
    P_OVERFLOW_PARAMETER = 205
    P_OVERFLOW_FIELD = 206
    P_UNKNOWN_PARAMETER = 207
    P_UNKNOWN_FIELD = 208
    P_UNSUPPORTED_PARAMETER = 209
    A_INVALID = 300
    A_OUT_OF_RANGE = 301
    R_DEVICE_ERROR = 401


class ConnectionStatus(enum.IntEnum):
    """ConnectionAttemptEvent status: what the reader tells a client about its connection attempt."""

    SUCCESS = 0
    FAILED_READER_INITIATED_CONNECTION_EXISTS = 1
    FAILED_CLIENT_INITIATED_CONNECTION_EXISTS = 2  # to a second client: someone else is connected
    FAILED_OTHER_REASON = 3
    ANOTHER_CONNECTION_ATTEMPTED = 4  # to the connected client: a second client tried and was refused


class NotificationEvent(enum.IntEnum):
    """EventNotificationState event types (ReaderEventNotificationSpec)."""

    HOPPING = 0
    GPI = 1
    ROSPEC = 2
    REPORT_BUFFER_FILL_WARNING = 3
    READER_EXCEPTION = 4
    RF_SURVEY = 5
    AISPEC = 6
    AISPEC_WITH_SINGULATION = 7
    ANTENNA = 8


class AiSpecStop(enum.IntEnum):
    NULL = 0
    DURATION = 1
    GPI_WITH_TIMEOUT = 2
    TAG_OBSERVATION = 3


class TagObservation(enum.IntEnum):
    UPON_N_TAGS = 0
    NO_NEW_TAGS_FOR_T_MS = 1
    N_ATTEMPTS = 2  # N attempts to see all tags in the field of view: N inventory rounds


class ReportTrigger(enum.IntEnum):
    NONE = 0
    N_TAGS_OR_END_OF_AISPEC = 1
    N_TAGS_OR_END_OF_ROSPEC = 2


class StartTrigger(enum.IntEnum):
    NULL = 0
    IMMEDIATE = 1
    PERIODIC = 2
    GPI = 3


class ImpinjSearchMode(enum.IntEnum):
    """ImpinjInventorySearchMode values (Octane LLRP)."""

    READER_SELECTED = 0
    SINGLE_TARGET = 1
    DUAL_TARGET = 2  # every tag answers every round: what a portal needs
    SINGLE_TARGET_WITH_SUPPRESSION = 3  # TagFocus


# Impinj custom message and parameter subtypes.
IMPINJ_ENABLE_EXTENSIONS, IMPINJ_ENABLE_EXTENSIONS_RESPONSE = 21, 22
IMPINJ_INVENTORY_SEARCH_MODE = 23
IMPINJ_TAG_REPORT_CONTENT_SELECTOR = 50
IMPINJ_ENABLE_SERIALIZED_TID, IMPINJ_ENABLE_RF_PHASE_ANGLE, IMPINJ_ENABLE_PEAK_RSSI = 51, 52, 53
IMPINJ_SERIALIZED_TID, IMPINJ_RF_PHASE_ANGLE, IMPINJ_PEAK_RSSI = 55, 56, 57

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
TV_ANTENNA_ID, TV_FIRST_SEEN_UTC, TV_LAST_SEEN_UTC, TV_PEAK_RSSI, TV_CHANNEL, TV_SEEN_COUNT = 1, 2, 4, 6, 7, 8
TV_ROSPEC_ID, TV_EPC96, TV_SPEC_INDEX = 9, 13, 14

# TagReportContentSelector bits (the first 10 bits of its u16, most significant first).
SELECT_ROSPEC_ID, SELECT_SPEC_INDEX, SELECT_INVENTORY_SPEC_ID, SELECT_ANTENNA_ID = 1 << 15, 1 << 14, 1 << 13, 1 << 12
SELECT_CHANNEL, SELECT_PEAK_RSSI, SELECT_FIRST_SEEN, SELECT_LAST_SEEN = 1 << 11, 1 << 10, 1 << 9, 1 << 8
SELECT_SEEN_COUNT, SELECT_ACCESS_SPEC_ID = 1 << 7, 1 << 6

TID_BANK = 2
PROTOCOL_C1G2 = 1


def status_name(code: int) -> str:
    try:
        return Status(code).name
    except ValueError:
        return f"status {code}"


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


def custom(vendor: int, subtype: int, data: bytes = b"") -> bytes:
    return tlv(P.CUSTOM, struct.pack(">II", vendor, subtype), data)


def custom_message_body(vendor: int, subtype: int, data: bytes = b"") -> bytes:
    return struct.pack(">IB", vendor, subtype) + data


def status(code: int = Status.M_SUCCESS, description: str = "") -> bytes:
    text = description.encode()
    return tlv(P.LLRP_STATUS, struct.pack(">HH", code, len(text)), text)


def rospec_id_body(rospec_id: int) -> bytes:
    return _U32.pack(rospec_id)


# ---- client requests


def get_reader_capabilities_body() -> bytes:
    return b"\x00"  # RequestedData = All


def get_reader_config_body() -> bytes:
    return struct.pack(">HBHH", 0, 0, 0, 0)  # all antennas, RequestedData = All, all GPI and GPO ports


def impinj_enable_extensions_body() -> bytes:
    return custom_message_body(IMPINJ_PEN, IMPINJ_ENABLE_EXTENSIONS, _U32.pack(0))


def set_reader_config_body(keepalive_ms: int, events: tuple[NotificationEvent, ...] = ()) -> bytes:
    """ResetToFactoryDefault = 0; a periodic KeepaliveSpec (both ends notice a dead link); `events` on."""
    keepalive = tlv(P.KEEPALIVE_SPEC, struct.pack(">BI", 1 if keepalive_ms else 0, keepalive_ms))
    notify = b""
    if events:
        states = b"".join(tlv(P.EVENT_NOTIFICATION_STATE, struct.pack(">HB", e, 0x80)) for e in events)
        notify = tlv(P.READER_EVENT_NOTIFICATION_SPEC, states)
    return b"\x00" + notify + keepalive


class RoundReporting(enum.StrEnum):
    """How a reader tells the host that an inventory round ended (see `InventoryPlan`)."""

    AISPEC_END = "aispec_end"  # one AISpec per antenna, ending after N inventory attempts (rounds)
    DURATION = "duration"  # one short Duration AISpec per antenna: for readers refusing tag-observation stops
    NONE = "none"  # one endless AISpec over every antenna: tags stream, no round is ever reported


@dataclass(frozen=True, slots=True)
class ImpinjContent:
    """Impinj report content: sub-dBm peak RSSI, RF phase angle, the TID without an AccessSpec."""

    peak_rssi: bool = True
    phase: bool = True
    serialized_tid: bool = False


@dataclass(frozen=True, slots=True)
class InventoryPlan:
    """The inventory an ROSpec asks for. Optional parts are None: a reader that refuses one is asked again
    without it (`llrp_reader` keeps the list of what it gave up)."""

    rospec_id: int
    antennas: tuple[int, ...]
    rounds: RoundReporting
    round_ms: int = 25  # DURATION: length of each antenna's AISpec
    attempts: int = 1  # AISPEC_END: inventory rounds per AISpec
    round_timeout_ms: int = 500  # AISPEC_END: longest an AISpec may take
    tags_per_report: int = 1
    session: int | None = None  # C1G2SingulationControl
    tag_population: int = 4
    mode_index: int | None = None  # C1G2RFControl: the reader's mode identifier
    impinj_search_mode: ImpinjSearchMode | None = None
    impinj_content: ImpinjContent | None = None
    start: StartTrigger = StartTrigger.IMMEDIATE  # the reader starts it on ENABLE and again after each pass

    def spec_antennas(self) -> list[tuple[int, ...]]:
        """The antennas of each AISpec, in order (SpecIndex i+1 is entry i)."""
        if self.rounds is RoundReporting.NONE:
            return [self.antennas]
        return [(a,) for a in self.antennas]


def _ai_stop(plan: InventoryPlan) -> bytes:
    if plan.rounds is RoundReporting.AISPEC_END:
        observe = tlv(P.TAG_OBSERVATION_TRIGGER, struct.pack(">BBHHHI", TagObservation.N_ATTEMPTS, 0, 0,
                                                             plan.attempts, 0, plan.round_timeout_ms))
        return tlv(P.AI_SPEC_STOP_TRIGGER, struct.pack(">BI", AiSpecStop.TAG_OBSERVATION, 0), observe)
    if plan.rounds is RoundReporting.DURATION:
        return tlv(P.AI_SPEC_STOP_TRIGGER, struct.pack(">BI", AiSpecStop.DURATION, plan.round_ms))
    return tlv(P.AI_SPEC_STOP_TRIGGER, struct.pack(">BI", AiSpecStop.NULL, 0))


def _inventory_command(plan: InventoryPlan) -> bytes:
    parts = []
    if plan.mode_index is not None:
        parts.append(tlv(P.C1G2_RF_CONTROL, struct.pack(">HH", plan.mode_index, 0)))
    if plan.session is not None:
        parts.append(tlv(P.C1G2_SINGULATION_CONTROL, struct.pack(">BHI", plan.session << 6, plan.tag_population, 0)))
    if plan.impinj_search_mode is not None:
        parts.append(custom(IMPINJ_PEN, IMPINJ_INVENTORY_SEARCH_MODE, _U16.pack(plan.impinj_search_mode)))
    return tlv(P.C1G2_INVENTORY_COMMAND, b"\x00", *parts) if parts else b""


def _inventory_spec(plan: InventoryPlan, antennas: tuple[int, ...]) -> bytes:
    command = _inventory_command(plan)
    configs = b"".join(tlv(P.ANTENNA_CONFIGURATION, _U16.pack(a), command) for a in antennas) if command else b""
    return tlv(P.INVENTORY_PARAMETER_SPEC, struct.pack(">HB", 1, PROTOCOL_C1G2), configs)


def ro_report_spec(plan: InventoryPlan) -> bytes:
    # EPC is always reported; antenna, peak RSSI and first-seen time are what the engine uses.
    selector = tlv(P.TAG_REPORT_CONTENT_SELECTOR, _U16.pack(SELECT_ANTENNA_ID | SELECT_PEAK_RSSI | SELECT_FIRST_SEEN))
    trigger = ReportTrigger.N_TAGS_OR_END_OF_ROSPEC if plan.rounds is RoundReporting.NONE \
        else ReportTrigger.N_TAGS_OR_END_OF_AISPEC
    extra = b""
    if plan.impinj_content is not None:
        c = plan.impinj_content
        flags = [(IMPINJ_ENABLE_SERIALIZED_TID, c.serialized_tid), (IMPINJ_ENABLE_RF_PHASE_ANGLE, c.phase),
                 (IMPINJ_ENABLE_PEAK_RSSI, c.peak_rssi)]
        extra = custom(IMPINJ_PEN, IMPINJ_TAG_REPORT_CONTENT_SELECTOR,
                       b"".join(custom(IMPINJ_PEN, sub, _U16.pack(int(on))) for sub, on in flags))
    return tlv(P.RO_REPORT_SPEC, struct.pack(">BH", trigger, plan.tags_per_report), selector, extra)


def add_rospec_body(plan: InventoryPlan) -> bytes:
    start = tlv(P.RO_SPEC_START_TRIGGER, struct.pack(">B", plan.start))
    stop = tlv(P.RO_SPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0))  # Null: runs until its AISpecs end
    boundary = tlv(P.RO_BOUNDARY_SPEC, start, stop)
    specs = b"".join(
        tlv(P.AI_SPEC, struct.pack(f">H{len(ants)}H", len(ants), *ants), _ai_stop(plan), _inventory_spec(plan, ants))
        for ants in plan.spec_antennas()
    )
    return tlv(P.RO_SPEC, struct.pack(">IBB", plan.rospec_id, 0, 0), boundary, specs, ro_report_spec(plan))


def add_tid_accessspec_body(access_spec_id: int, rospec_id: int, tid_words: int) -> bytes:
    """An AccessSpec reading `tid_words` words of the TID bank from every tag (match-all target)."""
    # EPC bank, Match = 1, empty mask and data: selects every tag.
    target = tlv(P.C1G2_TARGET_TAG, struct.pack(">BHHH", (1 << 6) | (1 << 5), 0, 0, 0))
    tag_spec = tlv(P.C1G2_TAG_SPEC, target)
    read = tlv(P.C1G2_READ, struct.pack(">HIBHH", 1, 0, TID_BANK << 6, 0, tid_words))
    command = tlv(P.ACCESS_COMMAND, tag_spec, read)
    stop = tlv(P.ACCESS_SPEC_STOP_TRIGGER, struct.pack(">BH", 0, 0))
    head = struct.pack(">IHBBI", access_spec_id, 0, PROTOCOL_C1G2, 0, rospec_id)  # antenna 0 = all, disabled
    return tlv(P.ACCESS_SPEC, head, stop, command)


# ---- reader answers and events (the simulator's side)


def reader_event_body(utc_us: int, event: bytes) -> bytes:
    return tlv(P.READER_EVENT_NOTIFICATION_DATA, tlv(P.UTC_TIMESTAMP, _U64.pack(utc_us)), event)


def connection_attempt_event(status_code: int) -> bytes:
    return tlv(P.CONNECTION_ATTEMPT_EVENT, _U16.pack(status_code))


def connection_close_event() -> bytes:
    return tlv(P.CONNECTION_CLOSE_EVENT)


def aispec_end_event(rospec_id: int, spec_index: int) -> bytes:
    return tlv(P.AISPEC_EVENT, struct.pack(">BIH", 0, rospec_id, spec_index))  # event type 0: end of AISpec


def rospec_event(event_type: int, rospec_id: int) -> bytes:
    return tlv(P.ROSPEC_EVENT, struct.pack(">BII", event_type, rospec_id, 0))  # 0 start, 1 end, 2 preempted


@dataclass(frozen=True, slots=True)
class RfMode:
    """One row of the reader's C1G2 RF mode table (the reader's own mode identifier and link timing)."""

    mode_id: int
    m: int  # 0 FM0, 1 Miller 2, 2 Miller 4, 3 Miller 8
    bdr_bps: int  # backscatter data rate
    pie: int = 1500
    min_tari_ns: int = 6250
    max_tari_ns: int = 25000


@dataclass(frozen=True, slots=True)
class ReaderDescription:
    """What a reader says in its capabilities."""

    antennas: int
    manufacturer: int
    model: int
    firmware: str
    modes: tuple[RfMode, ...] = ()
    power_table_cdbm: tuple[int, ...] = tuple(range(1000, 3025, 25))  # 10.00 .. 30.00 dBm
    hop_table_khz: tuple[int, ...] = tuple(902_750 + 500 * i for i in range(50))
    country_code: int = 840
    max_rospecs: int = 8
    max_specs_per_rospec: int = 16
    max_access_specs: int = 8


def _mode_entry(mode: RfMode) -> bytes:
    return tlv(P.C1G2_UHF_RF_MODE_TABLE_ENTRY,
               struct.pack(">IBBBBIIIII", mode.mode_id, 0x80, mode.m, 0, 2, mode.bdr_bps, mode.pie,
                           mode.min_tari_ns, mode.max_tari_ns, 1875))


def capabilities_response_body(reader: ReaderDescription) -> bytes:
    """GET_READER_CAPABILITIES_RESPONSE for RequestedData = All: general, LLRP, regulatory and C1G2."""
    fw = reader.firmware.encode()
    sensitivity = tlv(P.RECEIVE_SENSITIVITY_TABLE_ENTRY, struct.pack(">Hh", 1, 0))
    gpio = tlv(P.GPIO_CAPABILITIES, struct.pack(">HH", 4, 4))
    per_antenna = b"".join(tlv(P.PER_ANTENNA_AIR_PROTOCOL, struct.pack(">HHB", a, 1, PROTOCOL_C1G2))
                           for a in range(1, reader.antennas + 1))
    utc_clock = 1 << 14
    general = tlv(P.GENERAL_DEVICE_CAPABILITIES,
                  struct.pack(">HHIIH", reader.antennas, utc_clock, reader.manufacturer, reader.model, len(fw)),
                  fw, sensitivity, gpio, per_antenna)
    # No RF survey; buffer-fill warning; no client OpSpec; state-aware singulation; hold events and reports.
    llrp_caps = tlv(P.LLRP_CAPABILITIES, struct.pack(">BBHIIIII", 0x58, 1, 0, reader.max_rospecs,
                                                     reader.max_specs_per_rospec, 4, reader.max_access_specs, 8))
    powers = b"".join(tlv(P.TRANSMIT_POWER_LEVEL_TABLE_ENTRY, struct.pack(">Hh", i + 1, p))
                      for i, p in enumerate(reader.power_table_cdbm))
    hop = tlv(P.FREQUENCY_HOP_TABLE, struct.pack(f">BBH{len(reader.hop_table_khz)}I", 1, 0, len(reader.hop_table_khz),
                                                 *reader.hop_table_khz))
    frequency = tlv(P.FREQUENCY_INFORMATION, b"\x80", hop)  # hopping
    modes = tlv(P.C1G2_UHF_RF_MODE_TABLE, *(_mode_entry(m) for m in reader.modes))
    regulatory = tlv(P.REGULATORY_CAPABILITIES, struct.pack(">HH", reader.country_code, 1),  # FCC part 15
                     tlv(P.UHF_BAND_CAPABILITIES, powers, frequency, modes))
    c1g2 = tlv(P.C1G2_LLRP_CAPABILITIES, struct.pack(">BH", 0, 2))  # no block erase/write, 2 select filters
    return status() + general + llrp_caps + regulatory + c1g2


def reader_config_response_body(antennas: int, keepalive_ms: int, events: frozenset[int]) -> bytes:
    """GET_READER_CONFIG_RESPONSE for RequestedData = All."""
    identification = tlv(P.IDENTIFICATION, struct.pack(">BH", 0, 8), bytes.fromhex("001625fffe0000ab"))  # EUI-64
    props = b"".join(tlv(P.ANTENNA_PROPERTIES, struct.pack(">BHh", 0x80, a, 600)) for a in range(1, antennas + 1))
    configs = b"".join(
        tlv(P.ANTENNA_CONFIGURATION, _U16.pack(a), tlv(P.RF_RECEIVER, _U16.pack(1)),
            tlv(P.RF_TRANSMITTER, struct.pack(">HHH", 1, 1, 81)))
        for a in range(1, antennas + 1)
    )
    states = b"".join(tlv(P.EVENT_NOTIFICATION_STATE, struct.pack(">HB", e, 0x80 if e in events else 0))
                      for e in NotificationEvent)
    notify = tlv(P.READER_EVENT_NOTIFICATION_SPEC, states)
    report = tlv(P.RO_REPORT_SPEC, struct.pack(">BH", ReportTrigger.N_TAGS_OR_END_OF_AISPEC, 1),
                 tlv(P.TAG_REPORT_CONTENT_SELECTOR, _U16.pack(SELECT_ANTENNA_ID | SELECT_PEAK_RSSI)))
    access = tlv(P.ACCESS_REPORT_SPEC, b"\x00")
    state = tlv(P.LLRP_CONFIGURATION_STATE_VALUE, _U32.pack(0))
    keepalive = tlv(P.KEEPALIVE_SPEC, struct.pack(">BI", 1 if keepalive_ms else 0, keepalive_ms))
    holding = tlv(P.EVENTS_AND_REPORTS, b"\x00")
    return status() + identification + props + configs + notify + report + access + state + keepalive + holding


@dataclass(frozen=True, slots=True)
class ImpinjExtras:
    """Impinj per-tag report content a simulated Impinj reader adds when asked."""

    peak_rssi_cdbm: int | None = None
    phase: int | None = None  # 0..4095 for 0..2 pi
    serialized_tid: bytes | None = None


def tag_report_data(
    epc: bytes,
    antenna: int | None = None,
    rssi: int | None = None,
    first_seen_us: int | None = None,
    tid: bytes | None = None,
    *,
    last_seen_us: int | None = None,
    seen_count: int | None = None,
    rospec_id: int | None = None,
    spec_index: int | None = None,
    channel: int | None = None,
    impinj: ImpinjExtras | None = None,
) -> bytes:
    """One TagReportData: EPC-96 as TV when it is 96 bits, else EPCData; TID as a C1G2Read result."""
    epc_param = tv(TV_EPC96, epc) if len(epc) == 12 else tlv(P.EPC_DATA, _U16.pack(len(epc) * 8), epc)
    fields = [epc_param]
    if rospec_id is not None:
        fields.append(tv(TV_ROSPEC_ID, _U32.pack(rospec_id)))
    if spec_index is not None:
        fields.append(tv(TV_SPEC_INDEX, _U16.pack(spec_index)))
    if antenna is not None:
        fields.append(tv(TV_ANTENNA_ID, _U16.pack(antenna)))
    if rssi is not None:
        fields.append(tv(TV_PEAK_RSSI, struct.pack(">b", rssi)))
    if channel is not None:
        fields.append(tv(TV_CHANNEL, _U16.pack(channel)))
    if first_seen_us is not None:
        fields.append(tv(TV_FIRST_SEEN_UTC, _U64.pack(first_seen_us)))
    if last_seen_us is not None:
        fields.append(tv(TV_LAST_SEEN_UTC, _U64.pack(last_seen_us)))
    if seen_count is not None:
        fields.append(tv(TV_SEEN_COUNT, _U16.pack(seen_count)))
    if tid is not None:
        fields.append(tlv(P.C1G2_READ_OP_SPEC_RESULT, struct.pack(">BHH", 0, 1, len(tid) // 2), tid))
    if impinj is not None:
        if impinj.serialized_tid is not None:
            t = impinj.serialized_tid
            fields.append(custom(IMPINJ_PEN, IMPINJ_SERIALIZED_TID, _U16.pack(len(t) // 2) + t))
        if impinj.phase is not None:
            fields.append(custom(IMPINJ_PEN, IMPINJ_RF_PHASE_ANGLE, _U16.pack(impinj.phase)))
        if impinj.peak_rssi_cdbm is not None:
            fields.append(custom(IMPINJ_PEN, IMPINJ_PEAK_RSSI, struct.pack(">h", impinj.peak_rssi_cdbm)))
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


def _need(data: bytes, s: int, e: int, size: int, what: str) -> None:
    if e - s < size or e > len(data):
        raise FramingError(f"short {what}")


def custom_of(data: bytes, s: int, e: int) -> tuple[int, int, int]:
    """(vendor, subtype, data start) of a Custom parameter's value data[s:e]."""
    _need(data, s, e, 8, "Custom parameter")
    vendor, subtype = struct.unpack_from(">II", data, s)
    return vendor, subtype, s + 8


@dataclass(frozen=True, slots=True)
class StatusReply:
    code: int
    description: str

    @property
    def ok(self) -> bool:
        return self.code == Status.M_SUCCESS

    def __str__(self) -> str:
        return f"{status_name(self.code)}" + (f": {self.description}" if self.description else "")


def decode_status(body: bytes, start: int = 0) -> StatusReply:
    """The LLRPStatus of a response or ERROR_MESSAGE (after `start`: a custom message's header)."""
    found = find_param(body, P.LLRP_STATUS, start)
    if found is None or found[1] - found[0] < 4:
        raise FramingError("response without LLRPStatus")
    s, e = found
    code, text_len = struct.unpack_from(">HH", body, s)
    if s + 4 + text_len > e:
        raise FramingError("LLRPStatus description runs past its parameter")
    return StatusReply(code, body[s + 4 : s + 4 + text_len].decode(errors="replace"))


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """The events of a READER_EVENT_NOTIFICATION this client acts on."""

    utc_us: int | None
    connection_attempt: int | None  # ConnectionStatus
    connection_closed: bool
    aispec_end: tuple[int, int] | None = None  # (ROSpecID, SpecIndex) of an AISpec that ended
    rospec: tuple[int, int] | None = None  # (event type, ROSpecID): 0 started, 1 ended, 2 preempted


def decode_reader_event(body: bytes) -> ReaderEvent:
    found = find_param(body, P.READER_EVENT_NOTIFICATION_DATA)
    if found is None:
        raise FramingError("READER_EVENT_NOTIFICATION without ReaderEventNotificationData")
    utc, attempt, closed, aispec, rospec = None, None, False, None, None
    for t, s, e in iter_params(body, *found):
        if t == P.UTC_TIMESTAMP:
            _need(body, s, e, 8, "UTCTimestamp")
            utc = _U64.unpack_from(body, s)[0]
        elif t == P.CONNECTION_ATTEMPT_EVENT:
            _need(body, s, e, 2, "ConnectionAttemptEvent")
            attempt = _U16.unpack_from(body, s)[0]
        elif t == P.CONNECTION_CLOSE_EVENT:
            closed = True
        elif t == P.AISPEC_EVENT:
            _need(body, s, e, 7, "AISpecEvent")
            kind, rospec_id, index = struct.unpack_from(">BIH", body, s)
            if kind == 0:
                aispec = (rospec_id, index)
        elif t == P.ROSPEC_EVENT:
            _need(body, s, e, 9, "ROSpecEvent")
            kind, rospec_id, _ = struct.unpack_from(">BII", body, s)
            rospec = (kind, rospec_id)
    return ReaderEvent(utc, attempt, closed, aispec, rospec)


@dataclass(frozen=True, slots=True)
class Capabilities:
    antennas: int
    manufacturer: int  # IANA private enterprise number
    model: int
    firmware: str
    modes: tuple[RfMode, ...] = ()
    regulatory: bool = False  # the reply carried RegulatoryCapabilities
    llrp: bool = False  # ... LLRPCapabilities
    c1g2: bool = False  # ... C1G2LLRPCapabilities


def decode_capabilities(body: bytes) -> Capabilities:
    found = find_param(body, P.GENERAL_DEVICE_CAPABILITIES)
    if found is None or found[1] - found[0] < 14:
        raise FramingError("capabilities without GeneralDeviceCapabilities")
    s, e = found
    antennas, _flags, manufacturer, model, fw_len = struct.unpack_from(">HHIIH", body, s)
    if s + 14 + fw_len > e:
        raise FramingError("firmware version runs past its parameter")
    firmware = body[s + 14 : s + 14 + fw_len].decode(errors="replace")
    kinds = {t: (ps, pe) for t, ps, pe in iter_params(body)}
    modes: list[RfMode] = []
    if P.REGULATORY_CAPABILITIES in kinds:
        rs, re_ = kinds[P.REGULATORY_CAPABILITIES]
        band = find_param(body, P.UHF_BAND_CAPABILITIES, rs + 4, re_)
        table = find_param(body, P.C1G2_UHF_RF_MODE_TABLE, *band) if band else None
        if table is not None:
            for t, ms, me in iter_params(body, *table):
                if t == P.C1G2_UHF_RF_MODE_TABLE_ENTRY:
                    _need(body, ms, me, 28, "UHFC1G2RFModeTableEntry")
                    mode_id, _dr, m, _flm, _mask, bdr, pie, min_tari, max_tari, _step = struct.unpack_from(
                        ">IBBBBIIIII", body, ms)
                    modes.append(RfMode(mode_id, m, bdr, pie, min_tari, max_tari))
    return Capabilities(antennas, manufacturer, model, firmware, tuple(modes),
                        P.REGULATORY_CAPABILITIES in kinds, P.LLRP_CAPABILITIES in kinds,
                        P.C1G2_LLRP_CAPABILITIES in kinds)


def decode_custom_message(body: bytes) -> tuple[int, int, int]:
    """(vendor, subtype, data start) of a CUSTOM_MESSAGE body."""
    if len(body) < 5:
        raise FramingError("short CUSTOM_MESSAGE")
    vendor, subtype = struct.unpack_from(">IB", body)
    return vendor, subtype, 5


@dataclass(slots=True)
class ReportColumns:
    """Tag reports decoded by the plain-Python reference, column by column (hex strings: test use only)."""

    epc: list[str] = field(default_factory=list)  # upper-case hex
    antenna: list[int] = field(default_factory=list)  # 0 when the reader did not report it
    rssi_dbm: list[float] = field(default_factory=list)  # NaN when not reported
    first_seen_us: list[int] = field(default_factory=list)  # 0 when not reported
    tid: list[str | None] = field(default_factory=list)
    phase: list[int | None] = field(default_factory=list)  # Impinj 0..4095

    def __len__(self) -> int:
        return len(self.epc)


def decode_ro_access_report(body: bytes, out: ReportColumns | None = None) -> ReportColumns:
    """Decode every TagReportData of an RO_ACCESS_REPORT body into columns (appending to `out`).

    The plain-Python reference of `llrp_fast`'s kernel (same results, held together by the tests),
    used where a message is already framed. Anything malformed raises FramingError.
    """
    batch = ReportColumns() if out is None else out
    try:
        _decode_tag_reports(body, batch)
    except (IndexError, struct.error, ValueError) as exc:
        raise FramingError(f"malformed RO_ACCESS_REPORT: {exc}") from exc
    return batch


def _decode_tag_reports(data: bytes, batch: ReportColumns) -> None:
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
        if ptype & 0x3FF != P.TAG_REPORT_DATA:  # RFSurveyReportData, Custom: not tags
            i = end
            continue
        epc: str | None = None
        antenna, seen = 0, 0
        rssi = float("nan")
        impinj_rssi: float | None = None
        tid: str | None = None
        phase: int | None = None
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
                if t == TV_EPC96:
                    epc = data[j + 1 : nxt].hex().upper()
                elif t == TV_ANTENNA_ID:
                    antenna = u16(data, j + 1)[0]
                elif t == TV_PEAK_RSSI:
                    rssi = float(data[j + 1] - 256 if data[j + 1] > 127 else data[j + 1])
                elif t == TV_FIRST_SEEN_UTC:
                    seen = u64(data, j + 1)[0]
                j = nxt
            else:
                t, ln = tlv_head(data, j)
                t &= 0x3FF
                nxt = j + ln
                if ln < 4 or nxt > end:
                    raise FramingError(f"bad length {ln} of parameter {t}")
                if t == P.EPC_DATA:  # bit count, then the bits padded to whole bytes
                    bits = u16(data, j + 4)[0]
                    nbytes = (bits + 7) >> 3
                    if j + 6 + nbytes > nxt or nbytes > MAX_EPC_BYTES:
                        raise FramingError("EPCData bits run past the parameter")
                    epc = data[j + 6 : j + 6 + nbytes].hex().upper()
                elif t == P.C1G2_READ_OP_SPEC_RESULT and ln >= 9 and data[j + 4] == 0:  # a successful read
                    words = u16(data, j + 7)[0]  # after result and op spec id: word count, words
                    if words and j + 9 + 2 * words <= nxt:
                        tid = data[j + 9 : j + 9 + min(2 * words, MAX_TID_BYTES)].hex().upper()
                elif t == P.CUSTOM and ln >= 14 and u32_at(data, j + 4) == IMPINJ_PEN:
                    subtype = u32_at(data, j + 8)
                    if subtype == IMPINJ_PEAK_RSSI:
                        impinj_rssi = struct.unpack_from(">h", data, j + 12)[0] / 100.0
                    elif subtype == IMPINJ_RF_PHASE_ANGLE:
                        phase = u16(data, j + 12)[0]
                    elif subtype == IMPINJ_SERIALIZED_TID:
                        words = u16(data, j + 12)[0]
                        if words and j + 14 + 2 * words <= nxt:
                            tid = data[j + 14 : j + 14 + min(2 * words, MAX_TID_BYTES)].hex().upper()
                j = nxt
        if epc is None:
            raise FramingError("TagReportData without an EPC")
        batch.epc.append(epc)
        batch.antenna.append(antenna)
        batch.rssi_dbm.append(impinj_rssi if impinj_rssi is not None else rssi)
        batch.first_seen_us.append(seen)
        batch.tid.append(tid)
        batch.phase.append(phase)
        i = end


def u32_at(data: bytes, at: int) -> int:
    return _U32.unpack_from(data, at)[0]


# ------------------------------------------------------------------------ reader side (the simulator's)


@dataclass(frozen=True, slots=True)
class AiSpecRequest:
    """One AISpec of an ADD_ROSPEC, as a reader executes it."""

    antennas: tuple[int, ...]  # empty = every antenna
    stop: AiSpecStop
    duration_ms: int
    observation: tuple[int, int, int, int, int] | None  # TagObservationTrigger (type, N tags, attempts, T, timeout)
    session: int | None
    mode_index: int | None
    search_mode: int | None  # ImpinjInventorySearchMode


@dataclass(frozen=True, slots=True)
class RoSpecRequest:
    """What a reader needs from ADD_ROSPEC to run an inventory."""

    rospec_id: int
    start: StartTrigger
    aispecs: tuple[AiSpecRequest, ...]
    report_trigger: ReportTrigger
    tags_per_report: int  # N; 0 = no limit
    selector: int  # TagReportContentSelector bits
    impinj_content: ImpinjContent | None
    custom_parameters: tuple[tuple[int, int], ...]  # (vendor, subtype) of every Custom parameter inside
    raw: bytes  # the ROSpec parameter as added, for GET_ROSPECS


def decode_add_rospec(body: bytes) -> RoSpecRequest:
    found = find_param(body, P.RO_SPEC)
    if found is None or found[1] - found[0] < 6:
        raise FramingError("ADD_ROSPEC without ROSpec")
    s, e = found
    rospec_id = u32_at(body, s)
    start = StartTrigger.NULL
    aispecs: list[AiSpecRequest] = []
    trigger, per_report, selector = ReportTrigger.NONE, 0, 0
    impinj: ImpinjContent | None = None
    customs: list[tuple[int, int]] = []
    try:
        for t, ps, pe in iter_params(body, s + 6, e):
            if t == P.RO_BOUNDARY_SPEC:
                trig = find_param(body, P.RO_SPEC_START_TRIGGER, ps, pe)
                if trig is not None and trig[1] > trig[0]:
                    start = StartTrigger(body[trig[0]])
            elif t == P.AI_SPEC:
                aispecs.append(_decode_aispec(body, ps, pe, customs))
            elif t == P.RO_REPORT_SPEC:
                _need(body, ps, pe, 3, "ROReportSpec")
                trigger = ReportTrigger(body[ps])
                per_report = _U16.unpack_from(body, ps + 1)[0]
                for st, ss, se in iter_params(body, ps + 3, pe):
                    if st == P.TAG_REPORT_CONTENT_SELECTOR:
                        _need(body, ss, se, 2, "TagReportContentSelector")
                        selector = _U16.unpack_from(body, ss)[0]
                    elif st == P.CUSTOM:
                        vendor, subtype, at = custom_of(body, ss, se)
                        customs.append((vendor, subtype))
                        if (vendor, subtype) == (IMPINJ_PEN, IMPINJ_TAG_REPORT_CONTENT_SELECTOR):
                            impinj = _impinj_content(body, at, se, customs)
            elif t == P.CUSTOM:
                customs.append(custom_of(body, ps, pe)[:2])
    except ValueError as exc:  # an enumeration value the protocol does not define
        raise FramingError(f"ADD_ROSPEC: {exc}") from exc
    return RoSpecRequest(rospec_id, start, tuple(aispecs), trigger, per_report, selector, impinj, tuple(customs),
                         bytes(body[s - 4 : e]))


def _impinj_content(body: bytes, s: int, e: int, customs: list[tuple[int, int]]) -> ImpinjContent:
    enabled: dict[int, bool] = {}
    for t, ps, pe in iter_params(body, s, e):
        if t == P.CUSTOM:
            vendor, subtype, at = custom_of(body, ps, pe)
            customs.append((vendor, subtype))
            if vendor == IMPINJ_PEN and pe - at >= 2:
                enabled[subtype] = _U16.unpack_from(body, at)[0] != 0
    return ImpinjContent(enabled.get(IMPINJ_ENABLE_PEAK_RSSI, False), enabled.get(IMPINJ_ENABLE_RF_PHASE_ANGLE, False),
                         enabled.get(IMPINJ_ENABLE_SERIALIZED_TID, False))


def _decode_aispec(body: bytes, s: int, e: int, customs: list[tuple[int, int]]) -> AiSpecRequest:
    _need(body, s, e, 2, "AISpec")
    count = _U16.unpack_from(body, s)[0]
    if s + 2 + 2 * count > e:
        raise FramingError("AISpec antenna list runs past its parameter")
    antennas = tuple(a for a in struct.unpack_from(f">{count}H", body, s + 2) if a)
    if count and len(antennas) < count:
        antennas = ()  # antenna 0 in the list means every antenna
    stop, duration, observation = AiSpecStop.NULL, 0, None
    session = mode = search = None
    for t, ps, pe in iter_params(body, s + 2 + 2 * count, e):
        if t == P.AI_SPEC_STOP_TRIGGER:
            _need(body, ps, pe, 5, "AISpecStopTrigger")
            stop = AiSpecStop(body[ps])
            duration = u32_at(body, ps + 1)
            obs = find_param(body, P.TAG_OBSERVATION_TRIGGER, ps + 5, pe)
            if obs is not None:
                _need(body, obs[0], obs[1], 12, "TagObservationTrigger")
                kind, _r, n_tags, attempts, t_ms, timeout = struct.unpack_from(">BBHHHI", body, obs[0])
                observation = (kind, n_tags, attempts, t_ms, timeout)
        elif t == P.INVENTORY_PARAMETER_SPEC:
            for ct, cs, ce in iter_params(body, ps + 3, pe):
                if ct != P.ANTENNA_CONFIGURATION:
                    continue
                for it, is_, ie in iter_params(body, cs + 2, ce):
                    if it != P.C1G2_INVENTORY_COMMAND:
                        continue
                    for xt, xs, xe in iter_params(body, is_ + 1, ie):
                        if xt == P.C1G2_RF_CONTROL:
                            _need(body, xs, xe, 4, "C1G2RFControl")
                            mode = _U16.unpack_from(body, xs)[0]
                        elif xt == P.C1G2_SINGULATION_CONTROL:
                            _need(body, xs, xe, 7, "C1G2SingulationControl")
                            session = body[xs] >> 6
                        elif xt == P.CUSTOM:
                            vendor, subtype, at = custom_of(body, xs, xe)
                            customs.append((vendor, subtype))
                            if (vendor, subtype) == (IMPINJ_PEN, IMPINJ_INVENTORY_SEARCH_MODE) and xe - at >= 2:
                                search = _U16.unpack_from(body, at)[0]
        elif t == P.CUSTOM:
            customs.append(custom_of(body, ps, pe)[:2])
    return AiSpecRequest(antennas, stop, duration, observation, session, mode, search)


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


@dataclass(frozen=True, slots=True)
class ReaderConfigRequest:
    """What a SET_READER_CONFIG asks for: keepalive (None absent, 0 off) and event notifications."""

    keepalive_ms: int | None
    events: dict[int, bool]


def decode_set_reader_config(body: bytes) -> ReaderConfigRequest:
    if not body:
        raise FramingError("empty SET_READER_CONFIG")
    keepalive: int | None = None
    events: dict[int, bool] = {}
    for t, s, e in iter_params(body, 1):
        if t == P.KEEPALIVE_SPEC:
            _need(body, s, e, 5, "KeepaliveSpec")
            trigger, period = struct.unpack_from(">BI", body, s)
            keepalive = period if trigger == 1 else 0
        elif t == P.READER_EVENT_NOTIFICATION_SPEC:
            for st, ss, se in iter_params(body, s, e):
                if st == P.EVENT_NOTIFICATION_STATE:
                    _need(body, ss, se, 3, "EventNotificationState")
                    events[_U16.unpack_from(body, ss)[0]] = bool(body[ss + 2] & 0x80)
    return ReaderConfigRequest(keepalive, events)

"""ThingMagic Mercury serial protocol (M5e/M6e/Nano modules): frames, CRC and the payloads Custodian uses.

A host request is `FF len opcode data... crc_hi crc_lo`; a module response is `FF len opcode status_hi
status_lo data... crc_hi crc_lo`, where `len` counts the data bytes only. The CRC is ThingMagic's: the
0x1021 polynomial with initial value 0xFFFF, but with message bits shifted *into* the register (no
augmentation), so it differs from the usual CRC-16/CCITT-FALSE; it covers every byte after the 0xFF.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from firmware_bridge.errors import FramingError

HEADER = 0xFF


class Op(enum.IntEnum):
    VERSION = 0x03
    READ_TAG_MULTIPLE = 0x22
    READ_TAG_DATA = 0x28  # only used embedded in READ_TAG_MULTIPLE, to read the TID with each EPC
    GET_TAG_BUFFER = 0x29
    CLEAR_TAG_BUFFER = 0x2A
    GET_ANTENNA = 0x61
    GET_REGION = 0x67
    SET_ANTENNA = 0x91
    SET_PROTOCOL = 0x93
    SET_REGION = 0x97


class Region(enum.IntEnum):
    NA = 0x01
    EU = 0x02
    KR = 0x03
    IN = 0x04
    JP = 0x05
    PRC = 0x06
    EU3 = 0x08
    AU = 0x0B
    NZ = 0x0C
    OPEN = 0xFF


class Status(enum.IntEnum):
    OK = 0x0000
    WRONG_DATA_LENGTH = 0x0100
    INVALID_OPCODE = 0x0101
    INVALID_PARAMETER = 0x0105
    NO_TAGS_FOUND = 0x0400


PROTOCOL_GEN2 = 0x05
SET_PROTOCOL_GEN2 = PROTOCOL_GEN2.to_bytes(2, "big")
BANK_TID = 0x02
# READ_TAG_MULTIPLE search flags (Mercury API's TMR_SR_SearchFlag).
SEARCH_EMBEDDED_OP = 0x0004  # an embedded command (here: read the TID) follows
SEARCH_LARGE_TAG_POPULATION = 0x0010  # the vendor library always sets it; M6e modules then count in 4 bytes
# GET_TAG_BUFFER metadata: read count, RSSI, antenna, timestamp, embedded-read data.
META_COUNT, META_RSSI, META_ANTENNA, META_TIMESTAMP, META_DATA = 0x0001, 0x0002, 0x0004, 0x0010, 0x0080
METADATA = META_COUNT | META_RSSI | META_ANTENNA | META_TIMESTAMP | META_DATA


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_TABLE = _crc_table()


def crc(data: bytes) -> int:
    """ThingMagic CRC: each byte is shifted into the register; the byte shifted out selects the table row."""
    reg = 0xFFFF
    for byte in data:
        reg = (((reg << 8) | byte) & 0xFFFF) ^ _TABLE[reg >> 8]
    return reg


def encode_request(opcode: int, data: bytes = b"") -> bytes:
    if len(data) > 255:
        raise ValueError("Mercury frames carry at most 255 data bytes")
    body = bytes([len(data), opcode]) + data
    return bytes([HEADER]) + body + crc(body).to_bytes(2, "big")


def encode_response(opcode: int, status: int, data: bytes = b"") -> bytes:
    if len(data) > 255:
        raise ValueError("Mercury frames carry at most 255 data bytes")
    body = bytes([len(data), opcode]) + status.to_bytes(2, "big") + data
    return bytes([HEADER]) + body + crc(body).to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class MercuryFrame:
    opcode: int
    status: int  # always 0 for requests
    data: bytes


class MercuryFramer:
    """Finds frames in a serial byte stream. Garbage and corrupt frames are skipped (resynchronising on
    the next 0xFF) and counted in `framing_errors`; valid frames after them are still delivered."""

    def __init__(self, *, responses: bool) -> None:
        self._overhead = 7 if responses else 5  # header, len, opcode, [status x2], crc x2
        self._responses = responses
        self._buf = bytearray()
        self.framing_errors = 0
        self.skipped_bytes = 0

    def feed(self, data: bytes) -> list[MercuryFrame]:
        buf = self._buf
        buf += data
        frames: list[MercuryFrame] = []
        while buf:
            start = buf.find(HEADER)
            if start < 0:
                self._skip(len(buf))
                break
            if start:
                self._skip(start)
            if len(buf) < 2:
                break
            total = buf[1] + self._overhead
            if len(buf) < total:
                break
            body = bytes(buf[1 : total - 2])
            if crc(body) != int.from_bytes(buf[total - 2 : total], "big"):
                self._skip(1)  # not a frame after all: resynchronise on the next 0xFF
                continue
            del buf[:total]
            if self._responses:
                frames.append(MercuryFrame(body[1], int.from_bytes(body[2:4], "big"), body[4:]))
            else:
                frames.append(MercuryFrame(body[1], 0, body[2:]))
        return frames

    def reset(self) -> None:
        """Forget a partial frame (counted as an error): Mercury is request/response, so bytes still
        pending when the host sends a new request belong to nothing it will wait for."""
        if self._buf:
            self._skip(len(self._buf))

    def _skip(self, n: int) -> None:
        del self._buf[:n]
        self.framing_errors += 1
        self.skipped_bytes += n


# ---------------------------------------------------------------------------------------------- payloads


@dataclass(frozen=True, slots=True)
class MercuryVersion:
    bootloader: str
    hardware: str
    firmware_date: str
    firmware: str
    protocols: int  # bit mask of supported tag protocols


def encode_version(v: MercuryVersion) -> bytes:
    return b"".join(bytes.fromhex(x) for x in (v.bootloader, v.hardware, v.firmware_date, v.firmware)) + \
        v.protocols.to_bytes(4, "big")


def decode_version(data: bytes) -> MercuryVersion:
    if len(data) < 20:
        raise FramingError(f"version reply has {len(data)} bytes, expected 20")
    parts = [data[i : i + 4].hex().upper() for i in range(0, 16, 4)]
    return MercuryVersion(*parts, protocols=int.from_bytes(data[16:20], "big"))


def encode_read_multiple(timeout_ms: int, tid_words: int = 0, *,
                         flags: int = SEARCH_LARGE_TAG_POPULATION) -> bytes:
    """READ_TAG_MULTIPLE: option, search flags, timeout; with `tid_words`, an embedded TID read."""
    if not tid_words:
        return struct.pack(">BHH", 0, flags, timeout_ms)
    embedded = struct.pack(">BHBBIB", Op.READ_TAG_DATA, timeout_ms, 0, BANK_TID, 0, tid_words)
    return struct.pack(">BHHBB", 0, flags | SEARCH_EMBEDDED_OP, timeout_ms, 1, len(embedded)) + embedded


@dataclass(frozen=True, slots=True)
class ReadMultipleRequest:
    timeout_ms: int
    tid_words: int
    flags: int = SEARCH_LARGE_TAG_POPULATION

    @property
    def embedded(self) -> bool:
        return bool(self.flags & SEARCH_EMBEDDED_OP)

    @property
    def large_population(self) -> bool:
        return bool(self.flags & SEARCH_LARGE_TAG_POPULATION)


def decode_read_multiple(data: bytes) -> ReadMultipleRequest:
    if len(data) < 5:
        raise FramingError("READ_TAG_MULTIPLE too short")
    _option, flags, timeout_ms = struct.unpack_from(">BHH", data)
    tid_words = 0
    if flags & SEARCH_EMBEDDED_OP:
        if len(data) < 7 or len(data) < 7 + data[6] or data[6] < 10:
            raise FramingError("embedded command truncated")
        if data[7] == Op.READ_TAG_DATA and data[11] == BANK_TID:
            tid_words = data[16]
    return ReadMultipleRequest(timeout_ms, tid_words, flags)


@dataclass(frozen=True, slots=True)
class ReadMultipleReply:
    """A READ_TAG_MULTIPLE reply: tags found; with an embedded command, how often it worked and failed."""

    count: int
    select_option: int | None = None  # the ISO 18000-6B select option some firmware echoes
    embedded_ok: int | None = None
    embedded_failed: int | None = None


# Plain replies (option, search flags, then the count) come in four public forms, by data length:
# 4: 1-byte count (modules without large-population support); 5: select option, 1-byte count;
# 7: 4-byte count; 8: select option, 4-byte count. Embedded-command replies add the embedded command
# count and opcode and two u16 counters after a count that is 4 bytes only with SEARCH_LARGE_TAG_POPULATION
# (on M6e modules; others keep 1 byte even then).
PLAIN_FORMS = (4, 5, 7, 8)
EMBEDDED_NARROW, EMBEDDED_WIDE = 10, 13


def encode_read_multiple_reply(request: ReadMultipleRequest, count: int, *, form: int | None = None,
                               ok: int = 0, failed: int = 0, select_option: int = 0) -> bytes:
    """The reply a module sends; `form` is the data length (see PLAIN_FORMS, EMBEDDED_*)."""
    head = struct.pack(">BH", 0, request.flags)
    if request.embedded:
        form = form or (EMBEDDED_WIDE if request.large_population else EMBEDDED_NARROW)
        counted = struct.pack(">I", count) if form == EMBEDDED_WIDE else struct.pack(">B", min(count, 255))
        return head + counted + struct.pack(">BBHH", 1, Op.READ_TAG_DATA, ok, failed)
    form = form or (7 if request.large_population else 4)
    if form not in PLAIN_FORMS:
        raise ValueError(f"no READ_TAG_MULTIPLE reply form of {form} bytes")
    select = struct.pack(">B", select_option) if form in (5, 8) else b""
    counted = struct.pack(">I", count) if form in (7, 8) else struct.pack(">B", min(count, 255))
    return head + select + counted


def decode_read_multiple_reply(data: bytes, request: ReadMultipleRequest | None = None) -> ReadMultipleReply:
    """Decode any public form of the reply to `request` (default: a plain request)."""
    embedded = request is not None and request.embedded
    n = len(data)
    if embedded:
        if n == EMBEDDED_NARROW:
            count = data[3]
        elif n == EMBEDDED_WIDE and request is not None and request.large_population:
            count = struct.unpack_from(">I", data, 3)[0]
        else:
            raise FramingError(f"embedded READ_TAG_MULTIPLE reply of {n} bytes")
        at = 3 + (4 if n == EMBEDDED_WIDE else 1)
        ok, failed = struct.unpack_from(">HH", data, at + 2)
        return ReadMultipleReply(count, None, ok, failed)
    if n == 4:
        return ReadMultipleReply(data[3])
    if n == 5:
        return ReadMultipleReply(data[4], data[3])
    if n == 7:
        return ReadMultipleReply(struct.unpack_from(">I", data, 3)[0])
    if n == 8:
        return ReadMultipleReply(struct.unpack_from(">I", data, 4)[0], data[3])
    raise FramingError(f"READ_TAG_MULTIPLE reply of {n} bytes is none of the public forms")


@dataclass(frozen=True, slots=True)
class BufferedTag:
    """One entry of the module's tag buffer."""

    epc: bytes
    antenna: int  # the receive port
    rssi_dbm: int
    read_count: int
    timestamp_ms: int  # since the READ_TAG_MULTIPLE that found it
    tid: bytes | None


def encode_tag_buffer(tags: list[BufferedTag]) -> bytes:
    out = bytearray(struct.pack(">HBB", METADATA, 0, len(tags)))
    for t in tags:
        tid = t.tid or b""
        epc = t.epc
        pc = (len(epc) // 2) << 11  # EPC length in words, as the tag's protocol-control word says
        out += struct.pack(">BbBIH", t.read_count, t.rssi_dbm, (t.antenna << 4) | t.antenna, t.timestamp_ms,
                           len(tid) * 8)
        out += tid
        out += struct.pack(">HH", (len(epc) + 4) * 8, pc) + epc + crc(epc).to_bytes(2, "big")
    return bytes(out)


def decode_tag_buffer(data: bytes) -> list[BufferedTag]:
    """GET_TAG_BUFFER reply with the metadata this driver asks for (METADATA)."""
    try:
        return _decode_tag_buffer(data)
    except (IndexError, struct.error, ValueError) as exc:
        raise FramingError(f"malformed tag buffer: {exc}") from exc


def _decode_tag_buffer(data: bytes) -> list[BufferedTag]:
    flags, _option, count = struct.unpack_from(">HBB", data)
    if flags != METADATA:
        raise FramingError(f"tag buffer metadata {flags:#06x}, asked for {METADATA:#06x}")
    tags: list[BufferedTag] = []
    i = 4
    for _ in range(count):
        read_count, rssi, ports, stamp, data_bits = struct.unpack_from(">BbBIH", data, i)
        i += 9
        tid = bytes(data[i : i + data_bits // 8]) if data_bits else None
        i += data_bits // 8
        epc_bits = struct.unpack_from(">H", data, i)[0]
        epc_len = epc_bits // 8 - 4  # minus the PC and CRC words
        if epc_len < 0 or i + 4 + epc_len + 2 > len(data):
            raise FramingError("EPC runs past the frame")
        epc = bytes(data[i + 4 : i + 4 + epc_len])
        i += 4 + epc_len + 2
        tags.append(BufferedTag(epc, ports & 0x0F, rssi, read_count, stamp, tid))
    if i != len(data):
        raise FramingError(f"{len(data) - i} stray bytes after the tag buffer")
    return tags

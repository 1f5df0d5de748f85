"""Mercury framing: CRC, frame tables (whole, split, byte by byte, corrupt, garbage) and fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import FramingError
from firmware_bridge.rfid import mercury_codec as mc
from firmware_bridge.rfid.mercury_codec import BufferedTag, MercuryFramer, Op

# The version request every ThingMagic host sends first, as published in vendor and community docs.
VERSION_REQUEST = bytes.fromhex("FF 00 03 1D 0C")


def _bitwise_crc(data: bytes) -> int:
    """Slow, obvious form of the ThingMagic CRC: shift each message bit in, xor 0x1021 on carry-out."""
    reg = 0xFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            carry = reg & 0x8000
            reg = ((reg << 1) | ((byte >> bit) & 1)) & 0xFFFF
            if carry:
                reg ^= 0x1021
    return reg


def test_known_version_request_and_crc() -> None:
    assert mc.encode_request(Op.VERSION) == VERSION_REQUEST
    assert mc.crc(b"\x00\x03") == 0x1D0C


@given(st.binary(max_size=64))
def test_table_crc_equals_bitwise_definition(data: bytes) -> None:
    assert mc.crc(data) == _bitwise_crc(data)


REPLY_REGION = mc.encode_response(Op.GET_REGION, 0, b"\x08")
REPLY_NO_TAGS = mc.encode_response(Op.READ_TAG_MULTIPLE, mc.Status.NO_TAGS_FOUND)
REPLIES = REPLY_REGION + REPLY_NO_TAGS


@pytest.mark.parametrize("split", ["whole", "halves", "bytewise"])
def test_reply_stream_split_anywhere(split: str) -> None:
    if split == "whole":
        pieces = [REPLIES]
    elif split == "halves":
        pieces = [REPLIES[:5], REPLIES[5:]]
    else:
        pieces = [REPLIES[i : i + 1] for i in range(len(REPLIES))]
    framer = MercuryFramer(responses=True)
    frames = [f for p in pieces for f in framer.feed(p)]
    assert [(f.opcode, f.status, f.data) for f in frames] == [
        (Op.GET_REGION, 0, b"\x08"), (Op.READ_TAG_MULTIPLE, 0x0400, b"")
    ]
    assert framer.framing_errors == 0


def _corrupt_crc(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


@pytest.mark.parametrize(
    ("name", "noise"),
    [
        ("bad CRC", _corrupt_crc(REPLY_REGION)),
        ("wrong length", bytes([0xFF, 0x05]) + REPLY_REGION[2:]),  # claims 5 data bytes, has 1
        ("garbage", b"\x00\x13\x37garbage\xfe"),
        ("lone header bytes", b"\xff\xff\xff"),
    ],
)
def test_corruption_is_skipped_counted_and_later_frames_survive(name: str, noise: bytes) -> None:
    framer = MercuryFramer(responses=True)
    first = framer.feed(noise + REPLY_NO_TAGS + REPLY_REGION)
    if name in ("bad CRC", "garbage"):  # nothing pretends to be a longer frame: resynchronised at once
        assert [f.opcode for f in first] == [Op.READ_TAG_MULTIPLE, Op.GET_REGION]
    # A false header claiming a long frame holds bytes until its CRC fails; then frames are found again.
    later = framer.feed(REPLY_REGION * 40)
    assert framer.framing_errors >= 1
    opcodes = [f.opcode for f in first + later]
    assert opcodes == [Op.READ_TAG_MULTIPLE] + [Op.GET_REGION] * 41  # only the noise was lost


def test_reset_discards_a_stale_partial_frame() -> None:
    framer = MercuryFramer(responses=True)
    assert framer.feed(b"\xff\xff") == []
    framer.reset()
    assert framer.framing_errors == 1
    assert [f.opcode for f in framer.feed(REPLY_REGION)] == [Op.GET_REGION]


def test_request_framer_reads_host_frames() -> None:
    framer = MercuryFramer(responses=False)
    frames = framer.feed(VERSION_REQUEST + mc.encode_request(Op.SET_REGION, b"\x01"))
    assert [(f.opcode, f.data) for f in frames] == [(Op.VERSION, b""), (Op.SET_REGION, b"\x01")]


def test_tag_buffer_round_trip_and_epc_crc() -> None:
    tags = [
        BufferedTag(bytes.fromhex("3034257BF7194E4000001A85"), 2, -61, 3, 17,
                    bytes.fromhex("E2003412013AF40000000001")),
        BufferedTag(bytes.fromhex("E2801170000020A0"), 1, -45, 1, 0, None),
    ]
    data = mc.encode_tag_buffer(tags)
    assert mc.decode_tag_buffer(data) == tags
    # The EPC block ends with the EPC's own CRC word, as a Gen2 tag backscatters it.
    epc = tags[1].epc
    assert data.endswith(epc + mc.crc(epc).to_bytes(2, "big"))


def test_read_multiple_with_embedded_tid_read_round_trips() -> None:
    request = mc.decode_read_multiple(mc.encode_read_multiple(250, tid_words=6))
    assert (request.timeout_ms, request.tid_words, request.embedded, request.large_population) == (250, 6, True, True)
    plain = mc.decode_read_multiple(mc.encode_read_multiple(90, flags=0))
    assert plain == mc.ReadMultipleRequest(90, 0, 0) and not plain.large_population


# READ_TAG_MULTIPLE replies as modules send them, hand-assembled after the vendor's public Mercury API
# (serial_reader_l3.c): data = option, search flags, [select option], count; embedded-command replies add
# the embedded command count and opcode, then the commands that worked and failed (u16 each).
PLAIN = mc.ReadMultipleRequest(100, 0, mc.SEARCH_LARGE_TAG_POPULATION)
NARROW_PLAIN = mc.ReadMultipleRequest(100, 0, 0)
EMBEDDED = mc.ReadMultipleRequest(100, 6, mc.SEARCH_EMBEDDED_OP)
EMBEDDED_WIDE = mc.ReadMultipleRequest(100, 6, mc.SEARCH_EMBEDDED_OP | mc.SEARCH_LARGE_TAG_POPULATION)
REPLY_FORMS = [
    # (form, the request it answers, data bytes, count, select option, embedded ok, embedded failed)
    ("4: 1-byte count", NARROW_PLAIN, "00 0000 07", 7, None, None, None),
    ("5: select option, 1-byte count", NARROW_PLAIN, "00 0000 01 07", 7, 1, None, None),
    ("7: 4-byte count", PLAIN, "00 0010 00012345", 0x12345, None, None, None),
    ("8: select option, 4-byte count", PLAIN, "00 0010 01 00012345", 0x12345, 1, None, None),
    ("embedded, 1-byte count (flag 0x0010 unset)", EMBEDDED, "00 0004 05 01 28 0004 0001", 5, None, 4, 1),
    ("embedded, 1-byte count (flag set, not an M6e)", EMBEDDED_WIDE, "00 0014 05 01 28 0005 0000", 5, None, 5, 0),
    ("embedded, 4-byte count (flag 0x0010 set)", EMBEDDED_WIDE, "00 0014 00000105 01 28 0100 0005", 261, None,
     256, 5),
]


def _pieces(frame: bytes, split: str) -> list[bytes]:
    if split == "whole":
        return [frame]
    if split == "halves":
        return [frame[: len(frame) // 2], frame[len(frame) // 2 :]]
    return [frame[i : i + 1] for i in range(len(frame))]


@pytest.mark.parametrize("split", ["whole", "halves", "bytewise"])
@pytest.mark.parametrize(("form", "request_", "data", "count", "select", "ok", "failed"), REPLY_FORMS,
                         ids=[f[0] for f in REPLY_FORMS])
def test_every_read_multiple_reply_form_decodes_whole_split_and_byte_by_byte(
    form: str, request_: mc.ReadMultipleRequest, data: str, count: int, select: int | None, ok: int | None,
    failed: int | None, split: str
) -> None:
    frame = mc.encode_response(Op.READ_TAG_MULTIPLE, 0, bytes.fromhex(data))
    framer = MercuryFramer(responses=True)
    frames = [f for piece in _pieces(frame, split) for f in framer.feed(piece)]
    assert len(frames) == 1 and framer.framing_errors == 0
    reply = mc.decode_read_multiple_reply(frames[0].data, request_)
    assert (reply.count, reply.select_option, reply.embedded_ok, reply.embedded_failed) == (count, select, ok, failed)


@pytest.mark.parametrize(("form", "request_", "data", "count", "select", "ok", "failed"), REPLY_FORMS,
                         ids=[f[0] for f in REPLY_FORMS])
def test_every_reply_form_corrupted_is_skipped_and_truncated_is_refused(
    form: str, request_: mc.ReadMultipleRequest, data: str, count: int, select: int | None, ok: int | None,
    failed: int | None
) -> None:
    raw = bytes.fromhex(data)
    frame = mc.encode_response(Op.READ_TAG_MULTIPLE, 0, raw)
    framer = MercuryFramer(responses=True)
    assert framer.feed(_corrupt_crc(frame)) == [] and framer.framing_errors >= 1
    with pytest.raises(FramingError):
        mc.decode_read_multiple_reply(raw[:3], request_)


@pytest.mark.parametrize("length", [0, 1, 2, 3, 6, 9, 10, 13])
def test_plain_reply_lengths_that_are_no_public_form_are_refused(length: int) -> None:
    with pytest.raises(FramingError):
        mc.decode_read_multiple_reply(bytes(length), PLAIN)


def test_our_encoder_writes_the_forms_the_table_describes() -> None:
    for form, request_, data, count, select, ok, failed in REPLY_FORMS:
        wide = len(bytes.fromhex(data))
        encoded = mc.encode_read_multiple_reply(request_, count, form=wide, ok=ok or 0, failed=failed or 0,
                                                select_option=select or 0)
        assert encoded == bytes.fromhex(data), form


def test_a_4_byte_count_is_refused_where_the_request_did_not_ask_for_it() -> None:
    with pytest.raises(FramingError):
        mc.decode_read_multiple_reply(bytes.fromhex("00 0004 00000105 01 28 0100 0005"), EMBEDDED)


@given(st.binary(max_size=600))
def test_fuzz_framer_never_raises_counts_noise_and_recovers(junk: bytes) -> None:
    framer = MercuryFramer(responses=True)
    framer.feed(junk)
    if junk and 0xFF not in junk:
        assert framer.framing_errors >= 1
    # A false header can hold at most 262 bytes hostage; valid frames after that are read again.
    frames = framer.feed(REPLY_REGION * 40)
    assert frames and all(f.opcode == Op.GET_REGION for f in frames[1:])


@given(st.binary(max_size=300))
def test_fuzz_payload_decoders_raise_only_framing_error(data: bytes) -> None:
    for decode in (mc.decode_version, mc.decode_tag_buffer, mc.decode_read_multiple, mc.decode_read_multiple_reply):
        with contextlib.suppress(FramingError):
            decode(data)
    for request in (PLAIN, EMBEDDED, EMBEDDED_WIDE):
        with contextlib.suppress(FramingError):
            mc.decode_read_multiple_reply(data, request)

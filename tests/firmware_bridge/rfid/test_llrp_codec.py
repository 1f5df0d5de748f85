"""LLRP framing and tag-report decoding: hand-assembled frames, splits, corruption, fuzzing, and the
Numba stream decoder held against the plain-Python reference."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import FramingError
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_fast import PHASE_SCALE, LlrpStreamDecoder

# Hand-assembled from the LLRP 1.0.1 layouts (not produced by our encoder).
KEEPALIVE = bytes.fromhex("043E 0000000A 00000007")  # ver 1, type 62, length 10, id 7
# RO_ACCESS_REPORT (type 61, length 41), one TagReportData (TLV 240, length 31): EPC-96 (TV 13), AntennaID (TV 1)
# = 3, PeakRSSI (TV 6) = -61 (0xC3), FirstSeenTimestampUTC (TV 2) = 0x0005F5E100000001.
REPORT = bytes.fromhex(
    "043D 00000029 00000000"
    "00F0 001F"
    "8D 3034257BF7194E4000001A85"
    "81 0003"
    "86 C3"
    "82 0005F5E100000001"
)
REPORT_EPC, REPORT_ANTENNA, REPORT_RSSI, REPORT_SEEN = "3034257BF7194E4000001A85", 3, -61, 0x0005F5E100000001
STREAM = KEEPALIVE + REPORT + KEEPALIVE


def _python_decode(stream: bytes) -> tuple[list[int], llrp.ReportColumns]:
    kinds, batch = [], llrp.ReportColumns()
    for frame in llrp.LlrpFramer().feed(stream):
        kinds.append(frame.msg_type)
        if frame.msg_type == llrp.Msg.RO_ACCESS_REPORT:
            llrp.decode_ro_access_report(frame.body, batch)
    return kinds, batch


def _kernel_feed(pieces: list[bytes]) -> tuple[list[int], dict[str, list[object]], list[str]]:
    decoder = LlrpStreamDecoder()
    kinds: list[int] = []
    cols: dict[str, list[object]] = {"epc": [], "antenna": [], "rssi": [], "seen": [], "tid": [], "phase": []}
    errors: list[str] = []
    for piece in pieces:
        chunk = decoder.feed(piece)
        kinds += [f.msg_type for f in chunk.others]
        tags = chunk.tags
        cols["epc"] += tags.epc_hex()
        cols["antenna"] += tags.antenna.tolist()
        cols["rssi"] += [None if r != r else r for r in tags.rssi_dbm.tolist()]
        cols["seen"] += tags.time_us.tolist()
        cols["tid"] += tags.tid_hex()
        cols["phase"] += [None] * len(tags) if tags.phase_rad is None else \
            [None if p != p else round(p / PHASE_SCALE) for p in tags.phase_rad.tolist()]
        if chunk.error:
            errors.append(chunk.error)
    return kinds, cols, errors


def test_hand_assembled_report_decodes_to_its_fields() -> None:
    kinds, batch = _python_decode(STREAM)
    assert kinds == [62, 61, 62]
    assert batch.epc == [REPORT_EPC]
    assert (batch.antenna, batch.rssi_dbm, batch.first_seen_us) == ([REPORT_ANTENNA], [REPORT_RSSI], [REPORT_SEEN])
    assert batch.tid == [None] and batch.phase == [None]


# One TagReportData with Impinj Octane content, assembled by hand from the Octane LLRP layouts: Custom
# (TLV 1023) = vendor 25882 (0x651A), subtype, value. ImpinjPeakRSSI (57) = -54.32 dBm as s16 hundredths
# (0xEAC8), ImpinjRFPhaseAngle (56) = 1024 (a quarter turn), ImpinjSerializedTID (55) = 2 words.
IMPINJ_REPORT = bytes.fromhex(
    "043D 0000004E 00000000"
    "00F0 0044"
    "8D 3034257BF7194E4000001A85"
    "81 0001"
    "86 C9"
    "03FF 000E 0000651A 00000039 EAC8"
    "03FF 000E 0000651A 00000038 0400"
    "03FF 0012 0000651A 00000037 0002 E2801105"
)


def test_hand_assembled_impinj_content_decodes_in_both_decoders() -> None:
    _kinds, ref = _python_decode(IMPINJ_REPORT)
    assert (ref.epc, ref.rssi_dbm, ref.phase, ref.tid) == ([REPORT_EPC], [-54.32], [1024], ["E2801105"])
    tags = LlrpStreamDecoder().feed(IMPINJ_REPORT).tags
    assert tags.epc_hex() == [REPORT_EPC] and tags.tid_hex() == ["E2801105"] and tags.tid_bits.tolist() == [32]
    assert tags.rssi_dbm.tolist() == [-54.32]  # the sub-dBm value wins over PeakRSSI's whole dBm
    assert tags.phase_rad is not None and abs(tags.phase_rad[0] - 3.14159265 / 2) < 1e-6


def test_our_encoder_reproduces_the_hand_assembled_bytes() -> None:
    body = llrp.tag_report_data(bytes.fromhex(REPORT_EPC), REPORT_ANTENNA, REPORT_RSSI, REPORT_SEEN)
    assert llrp.encode(llrp.Msg.RO_ACCESS_REPORT, 0, body) == REPORT
    assert llrp.encode(llrp.Msg.KEEPALIVE, 7) == KEEPALIVE


@pytest.mark.parametrize("split", ["whole", "halves", "bytewise"])
def test_stream_split_anywhere_gives_the_same_messages(split: str) -> None:
    if split == "whole":
        pieces = [STREAM]
    elif split == "halves":
        pieces = [STREAM[: len(STREAM) // 2], STREAM[len(STREAM) // 2 :]]
    else:
        pieces = [STREAM[i : i + 1] for i in range(len(STREAM))]
    framer = llrp.LlrpFramer()
    frames = [f for piece in pieces for f in framer.feed(piece)]
    assert [f.msg_type for f in frames] == [62, 61, 62]
    kinds, cols, errors = _kernel_feed(pieces)
    assert kinds == [62, 62] and errors == []
    assert cols["epc"] == [REPORT_EPC] and cols["antenna"] == [REPORT_ANTENNA] and cols["rssi"] == [REPORT_RSSI]
    assert cols["seen"] == [REPORT_SEEN]


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("version 2", bytes.fromhex("083E 0000000A 00000007")),
        ("length below header", bytes.fromhex("043E 00000004 00000007")),
        ("absurd length", bytes.fromhex("043E 7FFFFFFF 00000007")),
        ("garbage", b"\x00\x01GET / HTTP/1.1\r\n"),
    ],
)
def test_corrupt_header_raises_framing_error_and_is_counted(name: str, bad: bytes) -> None:
    framer = llrp.LlrpFramer()
    assert [f.msg_type for f in framer.feed(KEEPALIVE)] == [62]
    with pytest.raises(FramingError):
        framer.feed(bad + KEEPALIVE)
    assert framer.framing_errors == 1
    decoder = LlrpStreamDecoder()
    chunk = decoder.feed(KEEPALIVE + bad + KEEPALIVE)
    assert [f.msg_type for f in chunk.others] == [62]  # what came before the corruption is kept
    assert chunk.error is not None and decoder.framing_errors == 1


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("TLV length below 4", bytes.fromhex("00F0 0002")),
        ("TagReportData longer than the message", bytes.fromhex("00F0 0040 8D") + bytes(12)),
        ("unknown TV type", bytes.fromhex("00F0 0006 FF 0000")),
        ("no EPC", bytes.fromhex("00F0 0007 81 0003")),
        ("EPC-96 cut short", bytes.fromhex("00F0 000A 8D 3034257BF7")),
    ],
)
def test_corrupt_report_body_is_a_framing_error_in_both_decoders(name: str, body: bytes) -> None:
    with pytest.raises(FramingError):
        llrp.decode_ro_access_report(body)
    chunk = LlrpStreamDecoder().feed(llrp.encode(llrp.Msg.RO_ACCESS_REPORT, 0, body))
    assert chunk.error is not None and len(chunk.tags) == 0


impinj_strategy = st.none() | st.builds(
    llrp.ImpinjExtras,
    st.none() | st.integers(-12800, 0),
    st.none() | st.integers(0, 4095),
    st.none() | st.binary(min_size=2, max_size=40).filter(lambda b: len(b) % 2 == 0),
)
tags_strategy = st.lists(
    st.tuples(
        st.binary(min_size=0, max_size=llrp.MAX_EPC_BYTES),  # 12 bytes -> EPC-96, else EPCData
        st.integers(0, 0xFFFF),
        st.integers(-128, 127),
        st.integers(0, 2**63 - 1),
        st.none() | st.binary(min_size=2, max_size=40).filter(lambda b: len(b) % 2 == 0),
        impinj_strategy,
    ),
    min_size=1,
    max_size=20,
)


def _expected_tid(tid: bytes | None, impinj: llrp.ImpinjExtras | None) -> str | None:
    found = impinj.serialized_tid if impinj is not None and impinj.serialized_tid else tid  # the later one wins
    return found[: llrp.MAX_TID_BYTES].hex().upper() if found else None


@given(tags=tags_strategy, per_report=st.integers(1, 7), cut=st.integers(1, 50))
def test_kernel_matches_python_reference_on_valid_reports(
    tags: list[tuple[bytes, int, int, int, bytes | None, llrp.ImpinjExtras | None]], per_report: int, cut: int
) -> None:
    bodies = [llrp.tag_report_data(*t[:5], impinj=t[5]) for t in tags]
    stream = b"".join(
        llrp.encode(llrp.Msg.RO_ACCESS_REPORT, 0, b"".join(bodies[i : i + per_report]))
        for i in range(0, len(bodies), per_report)
    )
    _kinds, ref = _python_decode(stream)
    pieces = [stream[i : i + cut] for i in range(0, len(stream), cut)]
    _, cols, errors = _kernel_feed(pieces)
    assert errors == []
    assert cols["epc"] == ref.epc == [t[0].hex().upper() for t in tags]
    assert cols["antenna"] == ref.antenna == [t[1] for t in tags]
    expected_rssi = [t[5].peak_rssi_cdbm / 100 if t[5] and t[5].peak_rssi_cdbm is not None else t[2] for t in tags]
    assert cols["rssi"] == ref.rssi_dbm == expected_rssi
    assert cols["seen"] == ref.first_seen_us == [t[3] for t in tags]
    assert cols["tid"] == ref.tid == [_expected_tid(t[4], t[5]) for t in tags]
    assert cols["phase"] == ref.phase == [t[5].phase if t[5] else None for t in tags]


@given(junk=st.binary(max_size=300))
def test_fuzz_framer_raises_only_framing_error(junk: bytes) -> None:
    framer = llrp.LlrpFramer()
    try:
        framer.feed(junk)
    except FramingError:
        assert framer.framing_errors == 1


@given(body=st.binary(max_size=300))
def test_fuzz_report_decoders_agree_and_fail_only_with_framing_error(body: bytes) -> None:
    try:
        ref: llrp.ReportColumns | None = llrp.decode_ro_access_report(body)
    except FramingError:
        ref = None
    decoder = LlrpStreamDecoder()
    chunk = decoder.feed(llrp.encode(llrp.Msg.RO_ACCESS_REPORT, 0, body))
    if ref is None:
        assert chunk.error is not None and decoder.framing_errors == 1
    else:
        assert chunk.error is None
        assert chunk.tags.epc_hex() == ref.epc and chunk.tags.antenna.tolist() == ref.antenna
        assert [None if r != r else r for r in chunk.tags.rssi_dbm.tolist()] == \
            [None if r != r else r for r in ref.rssi_dbm]
        assert chunk.tags.tid_hex() == ref.tid


@given(body=st.binary(max_size=200))
def test_fuzz_message_decoders_raise_only_framing_error(body: bytes) -> None:
    for decode in (llrp.decode_status, llrp.decode_reader_event, llrp.decode_capabilities,
                   llrp.decode_add_rospec, llrp.decode_tid_words, llrp.decode_set_reader_config,
                   llrp.decode_custom_message):
        with contextlib.suppress(FramingError):
            decode(body)


@given(junk=st.binary(max_size=400))
def test_fuzz_stream_decoder_never_raises(junk: bytes) -> None:
    decoder = LlrpStreamDecoder()
    chunk = decoder.feed(junk)
    chunk2 = decoder.feed(KEEPALIVE)
    assert decoder.framing_errors == int(chunk.error is not None) + int(chunk2.error is not None)

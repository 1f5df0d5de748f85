"""TagBatch: the bridge's EPC/TID words are the tracking engine's layout (tracking.epc), held together here."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.events import TagBatch, hex_to_words, words_to_hex
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_fast import LlrpStreamDecoder
from tracking.epc import encode_epcs

epcs = st.lists(st.binary(min_size=12, max_size=62).filter(lambda b: len(b) % 2 == 0), min_size=1, max_size=12)


@given(epcs)
def test_words_are_the_layout_of_tracking_encode_epcs(values: list[bytes]) -> None:
    words, bits = hex_to_words(values)
    theirs, their_bits = encode_epcs([v.hex().upper() for v in values])
    assert bits.tolist() == their_bits.tolist()
    assert np.array_equal(words, theirs[:, : words.shape[1]]) and not theirs[:, words.shape[1]:].any()


@given(epcs)
def test_the_stream_decoder_writes_the_same_words(values: list[bytes]) -> None:
    message = llrp.encode(llrp.Msg.RO_ACCESS_REPORT, 0, b"".join(llrp.tag_report_data(v, 1, -50, 7) for v in values))
    tags = LlrpStreamDecoder("r").feed(message).tags
    theirs, their_bits = encode_epcs([v.hex().upper() for v in values])
    assert tags.epc_bits.tolist() == their_bits.tolist()
    assert np.array_equal(tags.epc_words, theirs[:, : tags.epc_words.shape[1]])
    assert words_to_hex(tags.epc_words, tags.epc_bits) == [v.hex().upper() for v in values]


def test_from_hex_concat_and_the_per_tag_view() -> None:
    a = TagBatch.from_hex("r", ["3034257BF7194E4000001A85"], time_us=[1], antenna=[1], rssi_dbm=[-50.0],
                          tids=["E2801105"])
    b = TagBatch.from_hex("r", ["3034257BF7194E4000001A8600000000"], time_us=[2], antenna=[2], rssi_dbm=[-51.0],
                          stale=True)
    both = TagBatch.concat([a, b])
    assert both.epc_hex() == ["3034257BF7194E4000001A85", "3034257BF7194E4000001A8600000000"]
    assert both.tid_hex() == ["E2801105", None] and both.stale.tolist() == [False, True]
    assert both.epc_words.shape == (2, 2) and both.tid_bits.tolist() == [32, 0]
    assert len(TagBatch.empty("r")) == 0

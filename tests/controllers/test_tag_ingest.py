"""A reader's TagBatch becomes the engine's ReadBatch by column operations, equal to what tracking's
per-tag reference (`ReadBatch.from_reads` on hex strings) makes of the same reads."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from controllers.tag_ingest import read_batch, tid_hash_columns
from firmware_bridge.events import TagBatch, hex_to_words
from tracking.epc import tid_hash
from tracking.events import ReadBatch, TagRead

epc_bytes = st.binary(min_size=8, max_size=62)  # valid lengths and malformed ones (64, 104 bits ...)
tid_bytes = st.none() | st.binary(min_size=1, max_size=32)


@given(st.lists(tid_bytes, min_size=1, max_size=20))
def test_tid_hash_on_words_is_tracking_tid_hash(tids: list[bytes | None]) -> None:
    words, bits = hex_to_words([t or b"" for t in tids], allow_empty=True)
    assert tid_hash_columns(words, bits).tolist() == [tid_hash(t.hex().upper() if t else None) for t in tids]


@given(st.lists(st.tuples(epc_bytes, tid_bytes, st.integers(1, 8), st.floats(-90, -20)), min_size=1, max_size=20),
       st.sampled_from(["portal-1", "unknown-reader"]))
def test_read_batch_equals_the_per_tag_reference(reads: list[tuple[bytes, bytes | None, int, float]],
                                                 reader: str) -> None:
    codes = {"portal-1": 3}
    times = [1_000 + i for i in range(len(reads))]
    batch = TagBatch.from_hex(reader, [e.hex() for e, _t, _a, _r in reads], time_us=times,
                              antenna=[a for _e, _t, a, _r in reads], rssi_dbm=[r for *_x, r in reads],
                              tids=[t.hex() if t else None for _e, t, _a, _r in reads])
    ours = read_batch(batch, codes)
    ref = ReadBatch.from_reads([TagRead(reader, a, e.hex().upper(), t_us, r, t.hex().upper() if t else None)
                                for (e, t, a, r), t_us in zip(reads, times, strict=True)], codes)
    assert np.array_equal(ours.time_us, ref.time_us) and np.array_equal(ours.reader, ref.reader)
    assert np.array_equal(ours.antenna, ref.antenna) and np.array_equal(ours.rssi, ref.rssi)
    assert np.array_equal(ours.epc_bits, ref.epc_bits) and np.array_equal(ours.tid_hash, ref.tid_hash)
    width = max(ours.epc_words.shape[1], ref.epc_words.shape[1])
    pad = lambda w: np.pad(w, ((0, 0), (0, width - w.shape[1])))  # noqa: E731
    assert np.array_equal(pad(ours.epc_words), pad(ref.epc_words))

"""Tag batches from the readers become the engine's read batches: column operations only.

A `firmware_bridge.events.TagBatch` already holds EPCs and TIDs as big-endian 64-bit words; here the
engine's conventions are applied to whole columns: the snapshot's reader code, EPC lengths the engine
accepts (others get 0 bits: a data-quality problem it reports), and the TID fingerprint of
`tracking.epc.tid_hash` computed on the words instead of on hex strings.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from firmware_bridge.events import TagBatch
from tracking.epc import EPC_MAX_BITS, EPC_MIN_BITS
from tracking.events import ReadBatch


def read_batch(batch: TagBatch, reader_code: Mapping[str, int]) -> ReadBatch:
    """The engine's ReadBatch for `batch` (reader codes of the snapshot `reader_code` belongs to)."""
    n = len(batch)
    bits = batch.epc_bits
    valid = (bits >= EPC_MIN_BITS) & (bits <= EPC_MAX_BITS) & (bits % 16 == 0)
    words = batch.epc_words
    if not valid.all():
        bits = np.where(valid, bits, 0).astype(np.int16)
        words = np.where(valid[:, None], words, np.uint64(0))
    # stale rows (held by the reader while its link was down) are evidence for nothing but still alarm
    return ReadBatch(batch.time_us, np.full(n, reader_code.get(batch.reader, -1), np.int32), batch.antenna, words,
                     bits, batch.rssi_dbm, tid_hash_columns(batch.tid_words, batch.tid_bits),
                     batch.stale if batch.stale.any() else None)


def tid_hash_columns(words: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """`tracking.epc.tid_hash` of every row's TID (words + bit length; 0 bits = no TID -> 0).

    tid_hash folds the TID's value into 64 bits by XOR of 64-bit chunks counted from its least
    significant end, with the hex length in the top byte: so each row's bytes are right-aligned to a
    whole number of words, then the words are XORed.
    """
    n = len(bits)
    out = np.zeros(n, np.uint64)
    present = bits > 0
    if not present.any():
        return out
    raw = np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(n, -1)
    nbytes = (bits.astype(np.int64) + 7) // 8
    pad = (-nbytes) % 8
    shifted = np.zeros((n, raw.shape[1] + 8), np.uint8)
    columns = np.arange(raw.shape[1])
    shifted[np.arange(n)[:, None], columns[None, :] + pad[:, None]] = raw
    folded = np.bitwise_xor.reduce(shifted.view(">u8").astype(np.uint64), axis=1)
    folded ^= (2 * nbytes).astype(np.uint64) << np.uint64(56)
    folded[folded == 0] = 1
    out[present] = folded[present]
    return out

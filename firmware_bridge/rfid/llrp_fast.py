"""The hot path of LLRP ingest: one Numba kernel frames the TCP stream and decodes every tag report.

A portal reader streams thousands of RO_ACCESS_REPORTs a second; object-per-parameter decoding (and
even a tight Python loop) spends most of its time on interpreter overhead. The kernel walks the raw
bytes once, writes tag fields straight into the columns of a `TagBatch` (EPC and TID as big-endian
64-bit words, the layout the tracking engine hashes) and hands every other message back as (offset,
length) for the ordinary codec. `llrp_codec.decode_ro_access_report` is the plain-Python reference with
the same semantics; the tests hold the two against each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from firmware_bridge.events import TagBatch
from firmware_bridge.rfid import llrp_codec as llrp

MAX_EPC_WORDS = (llrp.MAX_EPC_BYTES + 7) // 8
MAX_TID_WORDS = llrp.MAX_TID_BYTES // 8
MIN_TAG_REPORT = 10  # smallest TagReportData: TLV header + an empty EPCData
PHASE_SCALE = 2 * math.pi / 4096  # Impinj RF phase angle units

OK, BAD_HEADER, BAD_PARAMETER, UNKNOWN_TV, NO_EPC = 0, 1, 2, 3, 4
_ERRORS = {
    BAD_HEADER: "bad LLRP message header (version or length)",
    BAD_PARAMETER: "parameter length inconsistent with its message",
    UNKNOWN_TV: "unknown TV parameter type in a tag report",
    NO_EPC: "TagReportData without an EPC",
}

_TV_LEN = np.full(128, -1, dtype=np.int64)
for _t, _n in llrp.TV_LEN.items():
    _TV_LEN[_t] = _n


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """What one `feed` produced: the tags, every other complete message, and an error that stopped it."""

    tags: TagBatch
    others: list[llrp.Frame]
    error: str | None  # set when the stream is corrupt; the link must be dropped


@numba.njit(cache=True, nogil=True)
def _u16(buf: np.ndarray, i: int) -> int:
    return (np.int64(buf[i]) << 8) | np.int64(buf[i + 1])


@numba.njit(cache=True, nogil=True)
def _u32(buf: np.ndarray, i: int) -> int:
    return (_u16(buf, i) << 16) | _u16(buf, i + 2)


@numba.njit(cache=True, nogil=True)
def _u64(buf: np.ndarray, i: int) -> np.uint64:
    return (np.uint64(_u32(buf, i)) << np.uint64(32)) | np.uint64(_u32(buf, i + 4))


@numba.njit(cache=True, nogil=True)
def _put_epc96(words: np.ndarray, row: int, buf: np.ndarray, start: int) -> None:
    """The common case, a 96-bit EPC: two words, the second holding 4 bytes."""
    words[row, 0] = _u64(buf, start)
    words[row, 1] = np.uint64(_u32(buf, start + 8)) << np.uint64(32)


@numba.njit(cache=True, nogil=True)
def _put_bytes(words: np.ndarray, row: int, buf: np.ndarray, start: int, count: int) -> None:
    """Bytes buf[start:start+count] into the first words of row `row` (big-endian uint64; words past them
    are left as they were: `_zero_past` clears them for the whole batch)."""
    for w in range((count + 7) >> 3):
        words[row, w] = 0
    for k in range(count):
        shift = np.uint64(56 - 8 * (k & 7))
        words[row, k >> 3] |= np.uint64(buf[start + k]) << shift


@numba.njit(cache=True, nogil=True)
def _scan(
    buf: np.ndarray,
    tv_len: np.ndarray,
    epc_words: np.ndarray,
    epc_bits: np.ndarray,
    antenna: np.ndarray,
    rssi: np.ndarray,
    seen: np.ndarray,
    tid_words: np.ndarray,
    tid_bits: np.ndarray,
    phase: np.ndarray,
    others: np.ndarray,
) -> tuple[int, int, int, int]:
    """Frame and decode buf. Returns (bytes consumed, tags, other messages, error code).

    Stops at the first incomplete message (consumed excludes it) or at the first corrupt one (its
    tags are not counted and the error code says why)."""
    n = buf.shape[0]
    pos = 0
    tags = 0
    n_others = 0
    max_epc = epc_words.shape[1] * 8
    max_tid = tid_words.shape[1] * 8
    while n - pos >= 10:
        word = _u16(buf, pos)
        length = _u32(buf, pos + 2)
        if (word >> 10) & 7 != 1 or length < 10 or length > 4 * 1024 * 1024:
            return pos, tags, n_others, 1
        if n - pos < length:
            break
        end = pos + length
        if word & 0x3FF != 61:
            others[n_others, 0] = pos
            others[n_others, 1] = length
            n_others += 1
            pos = end
            continue
        row = tags
        i = pos + 10
        while i < end:
            if buf[i] & 0x80:
                return pos, tags, n_others, 2  # TV at the top of a report
            if end - i < 4:
                return pos, tags, n_others, 2
            ptype = _u16(buf, i) & 0x3FF
            plen = _u16(buf, i + 2)
            pend = i + plen
            if plen < 4 or pend > end:
                return pos, tags, n_others, 2
            if ptype != 240:
                i = pend
                continue
            epc_bits[row] = -1
            antenna[row] = 0
            rssi[row] = np.nan
            impinj_rssi = np.nan
            seen[row] = 0
            tid_bits[row] = 0
            phase[row] = np.nan
            j = i + 4
            while j < pend:
                b = buf[j]
                if b & 0x80:
                    t = b & 0x7F
                    ln = tv_len[t]
                    if ln < 0:
                        return pos, tags, n_others, 3
                    nxt = j + 1 + ln
                    if nxt > pend:
                        return pos, tags, n_others, 2
                    if t == 13:
                        _put_epc96(epc_words, row, buf, j + 1)
                        epc_bits[row] = 96
                    elif t == 1:
                        antenna[row] = _u16(buf, j + 1)
                    elif t == 6:
                        v = np.int64(buf[j + 1])
                        rssi[row] = v - 256 if v > 127 else v
                    elif t == 2:
                        seen[row] = (_u32(buf, j + 1) << 32) | _u32(buf, j + 5)
                    j = nxt
                else:
                    if pend - j < 4:
                        return pos, tags, n_others, 2
                    t = _u16(buf, j) & 0x3FF
                    ln = _u16(buf, j + 2)
                    nxt = j + ln
                    if ln < 4 or nxt > pend:
                        return pos, tags, n_others, 2
                    if t == 241:
                        if ln < 6:
                            return pos, tags, n_others, 2
                        bits = _u16(buf, j + 4)
                        nbytes = (bits + 7) >> 3
                        if j + 6 + nbytes > nxt or nbytes > max_epc:
                            return pos, tags, n_others, 2
                        _put_bytes(epc_words, row, buf, j + 6, nbytes)
                        epc_bits[row] = bits
                    elif t == 349 and ln >= 9 and buf[j + 4] == 0:
                        words = _u16(buf, j + 7)
                        if j + 9 + 2 * words <= nxt:
                            count = min(2 * words, max_tid)
                            _put_bytes(tid_words, row, buf, j + 9, count)
                            tid_bits[row] = 8 * count
                    elif t == 1023 and ln >= 14 and _u32(buf, j + 4) == 25882:  # Impinj
                        subtype = _u32(buf, j + 8)
                        if subtype == 57:  # ImpinjPeakRSSI, 1/100 dBm
                            v = _u16(buf, j + 12)
                            impinj_rssi = (v - 65536 if v > 32767 else v) / 100.0
                        elif subtype == 56:  # ImpinjRFPhaseAngle, 0..4095 for 0..2 pi
                            phase[row] = _u16(buf, j + 12) * PHASE_SCALE
                        elif subtype == 55:  # ImpinjSerializedTID: word count, words
                            words = _u16(buf, j + 12)
                            if words and j + 14 + 2 * words <= nxt:
                                count = min(2 * words, max_tid)
                                _put_bytes(tid_words, row, buf, j + 14, count)
                                tid_bits[row] = 8 * count
                    j = nxt
            if epc_bits[row] < 0:
                return pos, tags, n_others, 4
            if not np.isnan(impinj_rssi):
                rssi[row] = impinj_rssi
            row += 1
            i = pend
        tags = row
        pos = end
    return pos, tags, n_others, 0


@numba.njit(cache=True, nogil=True)
def _summary(n: int, epc_bits: np.ndarray, tid_bits: np.ndarray, phase: np.ndarray,
             seen: np.ndarray) -> tuple[int, int, int, int, bool, bool]:
    """One pass over the decoded rows: (EPC words max, min; TID words max, min; any phase; any time missing)."""
    epc_max, epc_min, tid_max, tid_min = 0, 1 << 30, 0, 1 << 30
    any_phase, time_missing = False, False
    for row in range(n):
        e = (np.int64(epc_bits[row]) + 63) >> 6
        t = (np.int64(tid_bits[row]) + 63) >> 6
        epc_max, epc_min = max(epc_max, e), min(epc_min, e)
        tid_max, tid_min = max(tid_max, t), min(tid_min, t)
        any_phase = any_phase or not np.isnan(phase[row])
        time_missing = time_missing or seen[row] == 0
    return epc_max, epc_min, tid_max, tid_min, any_phase, time_missing


def _zero_past(words: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Zero each row's words past its bits (the kernel writes only the words a value fills)."""
    used = (bits.astype(np.int64) + 63) // 64
    words[np.arange(words.shape[1])[None, :] >= used[:, None]] = 0
    return words


class LlrpStreamDecoder:
    """Feed TCP bytes; get tag columns and the other messages. Counts framing errors like LlrpFramer.

    `time_us` of a row is the reader's FirstSeenTimestampUTC, or `now_us` given to `feed` when the reader
    did not report one.
    """

    def __init__(self, reader: str = "") -> None:
        self.reader = reader
        self._pending = b""
        self.framing_errors = 0

    def feed(self, data: bytes, now_us: int = 0) -> StreamChunk:
        raw = self._pending + data if self._pending else data
        buf = np.frombuffer(raw, dtype=np.uint8)
        rows = len(raw) // MIN_TAG_REPORT + 1
        epc_words = np.empty((rows, MAX_EPC_WORDS), np.uint64)
        epc_bits = np.empty(rows, np.int16)
        antenna = np.empty(rows, np.int32)
        rssi = np.empty(rows, np.float64)
        seen = np.empty(rows, np.int64)
        tid_words = np.empty((rows, MAX_TID_WORDS), np.uint64)
        tid_bits = np.empty(rows, np.int16)
        phase = np.empty(rows, np.float64)
        others_at = np.empty((rows, 2), np.int64)
        consumed, n, n_others, error = _scan(buf, _TV_LEN, epc_words, epc_bits, antenna, rssi, seen, tid_words,
                                             tid_bits, phase, others_at)
        others = [_frame(raw, int(at), int(length)) for at, length in others_at[:n_others]]
        tags = self._batch(n, epc_words, epc_bits, antenna, rssi, seen, tid_words, tid_bits, phase, now_us)
        if error:
            self.framing_errors += 1
            self._pending = b""
            return StreamChunk(tags, others, _ERRORS[error])
        self._pending = raw[consumed:]
        return StreamChunk(tags, others, None)

    def _batch(self, n: int, epc_words: np.ndarray, epc_bits: np.ndarray, antenna: np.ndarray, rssi: np.ndarray,
               seen: np.ndarray, tid_words: np.ndarray, tid_bits: np.ndarray, phase: np.ndarray,
               now_us: int) -> TagBatch:
        if n == 0:
            return TagBatch.empty(self.reader)
        epc_max, epc_min, tid_max, tid_min, any_phase, time_missing = _summary(n, epc_bits, tid_bits, phase, seen)
        time_us = seen[:n]
        if now_us and time_missing:
            time_us = np.where(time_us == 0, now_us, time_us)
        epc = np.ascontiguousarray(epc_words[:n, : max(1, epc_max)])
        tid = np.ascontiguousarray(tid_words[:n, :tid_max])
        if epc_min < epc_max:  # mixed lengths: shorter rows have unwritten words
            _zero_past(epc, epc_bits[:n])
        if tid_min < tid_max:
            _zero_past(tid, tid_bits[:n])
        return TagBatch(self.reader, time_us, antenna[:n], epc, epc_bits[:n], rssi[:n], tid, tid_bits[:n],
                        np.zeros(n, bool), phase[:n] if any_phase else None)


def _frame(raw: bytes, at: int, length: int) -> llrp.Frame:
    word = int.from_bytes(raw[at : at + 2], "big")
    return llrp.Frame(word & 0x3FF, int.from_bytes(raw[at + 6 : at + 10], "big"), raw[at + 10 : at + length])

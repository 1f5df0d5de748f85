"""The hot path of LLRP ingest: one Numba kernel frames the TCP stream and decodes every tag report.

A portal reader streams thousands of RO_ACCESS_REPORTs a second; object-per-parameter decoding (and
even a tight Python loop) spends most of its time on interpreter overhead. The kernel walks the raw
bytes once, writes tag fields into preallocated NumPy columns and hands every other message back as
(offset, length) for the ordinary codec. `llrp_codec.decode_ro_access_report` is the plain-Python
reference with the same semantics; the tests hold the two against each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from firmware_bridge.rfid import llrp_codec as llrp

MAX_EPC_BYTES, MAX_TID_BYTES = llrp.MAX_EPC_BYTES, llrp.MAX_TID_BYTES
MIN_TAG_REPORT = 10  # smallest TagReportData: TLV header + an empty EPCData

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
class TagColumns:
    """Decoded tag reports, one row per tag. Lengths of 0 in `tid_len` mean no TID was reported."""

    epc: np.ndarray  # uint8 (n, MAX_EPC_BYTES); row i holds epc_len[i] bytes
    epc_len: np.ndarray  # int64 (n,)
    antenna: np.ndarray  # int64 (n,); 0 when not reported
    rssi_dbm: np.ndarray  # int64 (n,); -128 when not reported
    first_seen_us: np.ndarray  # uint64 (n,); 0 when not reported
    tid: np.ndarray  # uint8 (n, MAX_TID_BYTES)
    tid_len: np.ndarray  # int64 (n,)

    def __len__(self) -> int:
        return len(self.epc_len)

    def epc_hex(self) -> list[str]:
        """EPCs as upper-case hex; one hex conversion for the whole column when lengths agree."""
        return _hex_rows(self.epc, self.epc_len)

    def tid_hex(self) -> list[str | None]:
        rows: list[str | None] = list(_hex_rows(self.tid, self.tid_len))
        return [r if r else None for r in rows]


def _hex_rows(data: np.ndarray, lengths: np.ndarray) -> list[str]:
    n = len(lengths)
    if n == 0:
        return []
    width = int(lengths[0])
    if width == 0 and not lengths.any():
        return [""] * n
    if bool(np.all(lengths == width)):
        text = np.ascontiguousarray(data[:, :width]).tobytes().hex().upper()
        step = 2 * width
        return [text[i : i + step] for i in range(0, n * step, step)]
    return [data[i, : lengths[i]].tobytes().hex().upper() for i in range(n)]


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """What one `feed` produced: the tags, every other complete message, and an error that stopped it."""

    tags: TagColumns
    others: list[llrp.Frame]
    error: str | None  # set when the stream is corrupt; the link must be dropped


@numba.njit(cache=True, nogil=True)
def _u16(buf: np.ndarray, i: int) -> int:
    return (np.int64(buf[i]) << 8) | np.int64(buf[i + 1])


@numba.njit(cache=True, nogil=True)
def _u32(buf: np.ndarray, i: int) -> int:
    return (_u16(buf, i) << 16) | _u16(buf, i + 2)


@numba.njit(cache=True, nogil=True)
def _scan(
    buf: np.ndarray,
    tv_len: np.ndarray,
    epc: np.ndarray,
    epc_len: np.ndarray,
    antenna: np.ndarray,
    rssi: np.ndarray,
    seen: np.ndarray,
    tid: np.ndarray,
    tid_len: np.ndarray,
    others: np.ndarray,
) -> tuple[int, int, int, int]:
    """Frame and decode buf. Returns (bytes consumed, tags, other messages, error code).

    Stops at the first incomplete message (consumed excludes it) or at the first corrupt one (its
    tags are not counted and the error code says why)."""
    n = buf.shape[0]
    pos = 0
    tags = 0
    n_others = 0
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
            epc_len[row] = -1
            antenna[row] = 0
            rssi[row] = -128
            seen[row] = 0
            tid_len[row] = 0
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
                        for k in range(12):
                            epc[row, k] = buf[j + 1 + k]
                        epc_len[row] = 12
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
                        nbytes = (_u16(buf, j + 4) + 7) >> 3
                        if j + 6 + nbytes > nxt or nbytes > epc.shape[1]:
                            return pos, tags, n_others, 2
                        for k in range(nbytes):
                            epc[row, k] = buf[j + 6 + k]
                        epc_len[row] = nbytes
                    elif t == 349 and ln >= 9 and buf[j + 4] == 0:
                        words = _u16(buf, j + 7)
                        if j + 9 + 2 * words <= nxt:
                            count = min(2 * words, tid.shape[1])
                            for k in range(count):
                                tid[row, k] = buf[j + 9 + k]
                            tid_len[row] = count
                    j = nxt
            if epc_len[row] < 0:
                return pos, tags, n_others, 4
            row += 1
            i = pend
        tags = row
        pos = end
    return pos, tags, n_others, 0


class LlrpStreamDecoder:
    """Feed TCP bytes; get tag columns and the other messages. Counts framing errors like LlrpFramer."""

    def __init__(self) -> None:
        self._pending = b""
        self.framing_errors = 0

    def feed(self, data: bytes) -> StreamChunk:
        raw = self._pending + data if self._pending else data
        buf = np.frombuffer(raw, dtype=np.uint8)
        rows = len(raw) // MIN_TAG_REPORT + 1
        cols = TagColumns(
            np.empty((rows, MAX_EPC_BYTES), np.uint8), np.empty(rows, np.int64), np.empty(rows, np.int64),
            np.empty(rows, np.int64), np.empty(rows, np.uint64), np.empty((rows, MAX_TID_BYTES), np.uint8),
            np.empty(rows, np.int64),
        )
        others_at = np.empty((rows, 2), np.int64)
        consumed, tags, n_others, error = _scan(buf, _TV_LEN, cols.epc, cols.epc_len, cols.antenna,
                                                cols.rssi_dbm, cols.first_seen_us, cols.tid, cols.tid_len,
                                                others_at)
        others = [_frame(raw, int(at), int(length)) for at, length in others_at[:n_others]]
        out = TagColumns(*(a[:tags] for a in (cols.epc, cols.epc_len, cols.antenna, cols.rssi_dbm,
                                               cols.first_seen_us, cols.tid, cols.tid_len)))
        if error:
            self.framing_errors += 1
            self._pending = b""
            return StreamChunk(out, others, _ERRORS[error])
        self._pending = raw[consumed:]
        return StreamChunk(out, others, None)


def _frame(raw: bytes, at: int, length: int) -> llrp.Frame:
    word = int.from_bytes(raw[at : at + 2], "big")
    return llrp.Frame(word & 0x3FF, int.from_bytes(raw[at + 6 : at + 10], "big"), raw[at + 10 : at + length])

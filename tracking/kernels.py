"""Numba kernels of the tracking core. Private: call them through tracking.numba_core.

Inputs are validated and converted to these dtypes by the Python wrappers; kernels never see a
malformed read. Arrays are grouped in named tuples (KSnap: the register, KState: per-item state,
KOut: output buffers) instead of long positional lists; the kernels see the fields of all of them,
and of KConfig, flattened into one KCtx (see there for why). The semantics are those of
tracking.reference, which is the readable statement of every rule.

All jitted code lives in this one file because Numba's on-disk cache (cache=True) is keyed on the
defining file only: a kernel would keep a stale copy of a helper edited in another file. Constants
imported from results/codes are frozen into the cache the same way; after changing them, delete
tracking/__pycache__/*.nbi.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.core.extending import overload
from numba.experimental import structref

from tracking.codes import KIND_CODE, SIDE_IGNORE, SIDE_NONE, SIDE_OUTSIDE, STATUS_CODE
from tracking.model import TOP_SECRET
from tracking.results import (
    A_CLONE,
    A_DESTROYED_SEEN,
    A_UNAUTHORIZED_EXIT,
    A_VENUE_CEILING,
    CLONE_TID,
    CLONE_TRAVEL,
    R_ABROAD_MISSING,
    R_APPROVAL_EXPIRED,
    R_APPROVAL_MISSING,
    R_APPROVAL_USED_UP,
    R_BORDER,
    R_CLEARANCE,
    R_DESTINATION_CEILING,
    R_ITEM_STATUS,
    R_SCOPE,
    R_TWO_PERSON,
)

_MIX = np.uint64(0x9E3779B97F4A7C15)
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)


@njit(cache=True, nogil=True, inline="always")
def hash_words(words: np.ndarray, start: int, nwords: int, bits: int) -> np.uint64:
    """Hash of an EPC stored as words[start:start + nwords] with its bit length."""
    h = np.uint64(bits) * _MIX
    for k in range(nwords):
        h = (h ^ words[start + k]) * _MIX
    # murmur3 finaliser: every input bit reaches the low bits used as the table slot
    h = (h ^ (h >> _S33)) * _FMIX1
    h = (h ^ (h >> _S33)) * _FMIX2
    return h ^ (h >> _S33)


@njit(cache=True, nogil=True, inline="always")
def find_item(table: np.ndarray, ptr: np.ndarray, words: np.ndarray, bits: np.ndarray,
              q: np.ndarray, qstart: int, qbits: int) -> int:
    """Item index of the EPC stored as q[qstart:...] with length qbits, or -1 when not registered.

    Flat arrays with offsets and a single exit: per-read row views and early returns made the
    lookup several times slower.
    """
    mask = len(table) - 1
    slot = np.int64(hash_words(q, qstart, (qbits + 63) // 64, qbits) & np.uint64(mask))
    found = -1
    while True:
        item = table[slot]
        if item < 0:
            break
        if bits[item] == qbits:
            start = ptr[item]
            same = True
            for k in range(ptr[item + 1] - start):
                if words[start + k] != q[qstart + k]:
                    same = False
                    break
            if same:
                found = item
                break
        slot = (slot + 1) & mask
    return found


@njit(cache=True)
def _fill_table(table: np.ndarray, ptr: np.ndarray, words: np.ndarray, bits: np.ndarray) -> int:
    """Insert every item; returns the index of the first duplicate EPC, or -1."""
    for i in range(len(bits)):
        if find_item(table, ptr, words, bits, words, ptr[i], bits[i]) >= 0:
            return i
        mask = len(table) - 1
        slot = np.int64(hash_words(words, ptr[i], ptr[i + 1] - ptr[i], bits[i]) & np.uint64(mask))
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        table[slot] = i
    return -1


# pass_flags bits
F_OPEN, F_SEEN_IN, F_SEEN_OUT, F_FIRST_OUT, F_LAST_OUT, F_TID_ALARMED, F_LISTED = 1, 2, 4, 8, 16, 32, 64
DESTROYED, SEIZED, DECLASSIFIED = STATUS_CODE["destroyed"], STATUS_CODE["seized"], STATUS_CODE["declassified"]
K_CARRY_OUT, K_TRANSFER, K_ABROAD = KIND_CODE["carry_out"], KIND_CODE["transfer"], KIND_CODE["abroad"]
NO_OPEN_PASS = 2**62  # settle_due's "oldest" when no pass is open
ALARMS_PER_READ = 4  # worst case: a settled pass (2) plus clone travel and destroyed (2)


class KSnap(NamedTuple):
    item_level: np.ndarray
    item_status: np.ndarray
    item_tid: np.ndarray
    scope_ptr: np.ndarray
    scope_ref: np.ndarray
    epc_ptr: np.ndarray
    epc_words: np.ndarray
    epc_bits: np.ndarray
    table: np.ndarray
    venue_ceiling: np.ndarray
    venue_ts: np.ndarray
    portal_inside: np.ndarray
    portal_outside: np.ndarray
    portal_border: np.ndarray
    portal_xy: np.ndarray
    person_clearance: np.ndarray
    pgroup_ptr: np.ndarray
    pgroup_idx: np.ndarray
    n_people: int
    appr_kind: np.ndarray
    appr_from: np.ndarray
    appr_until: np.ndarray
    appr_portal: np.ndarray
    appr_dest: np.ndarray
    appr_ref_ptr: np.ndarray
    appr_ref: np.ndarray
    item_appr_ptr: np.ndarray
    item_appr: np.ndarray


class KState(NamedTuple):
    pass_portal: np.ndarray  # int32, portal of the current or last pass, -1 = never read
    pass_first: np.ndarray  # int64
    pass_last: np.ndarray  # int64
    pass_reads: np.ndarray  # int16, saturating
    pass_flags: np.ndarray  # uint8, F_*
    venue: np.ndarray  # int32, current venue index
    allow_portal: np.ndarray  # int32, portal of the last allow covering the item
    allow_us: np.ndarray  # int64
    open_items: np.ndarray  # int32, items with F_LISTED (compacted by settle_due)
    n_open: np.ndarray  # int64[1]
    appr_uses: np.ndarray  # int32


class KConfig(NamedTuple):
    settle_us: int
    association_us: int
    min_reads: int
    max_speed_m_per_s: float


class KOut(NamedTuple):
    mov_item: np.ndarray
    mov_portal: np.ndarray
    mov_exit: np.ndarray
    mov_time: np.ndarray
    mov_from: np.ndarray
    mov_to: np.ndarray
    al_kind: np.ndarray
    al_time: np.ndarray
    al_portal: np.ndarray
    al_item: np.ndarray
    al_detail: np.ndarray
    unknown_rows: np.ndarray
    counts: np.ndarray  # int64[3]: movements, alarms, unknown rows


@structref.register
class KCtxType(types.StructRef):
    """Numba type of KCtx: one field per field of KSnap, KState, KConfig and KOut."""

    def preprocess_fields(self, fields: tuple) -> tuple:
        return tuple((name, types.unliteral(t)) for name, t in fields)


class KCtx(structref.StructRefProxy):
    """Every array and setting of KSnap, KState, KConfig and KOut as a field of one object.

    Why: a call from Python unboxes each array it is given (~0.25 us each, ~10 us for the ~55 of the
    four tuples), and a tuple handed to a helper inside a kernel costs a reference-count update per
    member, which Numba does not always elide in loops. A KCtx unboxes as one pointer and its fields
    are reached one at a time. It holds the same array objects as the tuples, so in-place writes
    from Python are seen by the kernels.
    """


structref.define_boxing(KCtxType, KCtx)


def _new_ctx(snap: KSnap, st: KState, cfg: KConfig, out: KOut) -> KCtx:
    raise NotImplementedError("only callable from jitted code")


@overload(_new_ctx)
def _new_ctx_impl(snap, st, cfg, out) -> Callable[..., KCtx]:  # type: ignore[no-untyped-def]
    """Typing-time builder of the KCtx type and its constructor, from the Numba types of the tuples.

    Parameters unannotated: Numba requires the typing and implementation signatures to be equal.
    """
    parts = {"snap": snap, "st": st, "cfg": cfg, "out": out}
    fields = [(name, t) for tup in parts.values() for name, t in zip(tup.fields, tup.types, strict=True)]
    if len({name for name, _ in fields}) != len(fields):
        raise TypeError("KSnap, KState, KConfig and KOut must not share a field name")
    # the constructor: one assignment per field, written out here since the fields come from the types
    copies = "".join(f"    ctx.{name} = {arg}.{name}\n" for arg, tup in parts.items() for name in tup.fields)
    namespace: dict = {"structref": structref, "ctx_type": KCtxType(fields=fields)}
    exec(f"def impl(snap, st, cfg, out):\n    ctx = structref.new(ctx_type)\n{copies}    return ctx\n", namespace)
    return namespace["impl"]


@njit(cache=True)
def make_ctx(snap: KSnap, st: KState, cfg: KConfig, out: KOut) -> KCtx:
    return _new_ctx(snap, st, cfg, out)


@njit(cache=True, inline="always")
def _level(ctx: KCtx, i: int) -> int:
    return 0 if ctx.item_status[i] == DECLASSIFIED else int(ctx.item_level[i])


@njit(cache=True, inline="always")
def _alarm(ctx: KCtx, kind: int, t: int, p: int, i: int, detail: int) -> None:
    k = ctx.counts[1]
    ctx.al_kind[k] = kind
    ctx.al_time[k] = t
    ctx.al_portal[k] = p
    ctx.al_item[k] = i
    ctx.al_detail[k] = detail
    ctx.counts[1] = k + 1


@njit(cache=True, inline="always")
def _needs_approval(ctx: KCtx, p: int, level: int) -> bool:
    vi = ctx.portal_inside[p]
    vo = ctx.portal_outside[p]
    lower = vo < 0 or ctx.venue_ceiling[vo] < ctx.venue_ceiling[vi]
    return lower or (ctx.portal_border[p] and level >= 1)


@njit(cache=True, inline="always")
def _settle(ctx: KCtx, i: int) -> None:
    """Close item i's open pass: a movement if both sides saw it in order, else nothing (rule 8)."""
    flags = ctx.pass_flags[i]
    ctx.pass_flags[i] = flags & ~np.uint8(F_OPEN)
    both = (flags & F_SEEN_IN) != 0 and (flags & F_SEEN_OUT) != 0
    crossed = ((flags & F_FIRST_OUT) != 0) != ((flags & F_LAST_OUT) != 0)
    if not (both and crossed and ctx.pass_reads[i] >= ctx.min_reads):
        return
    p = ctx.pass_portal[i]
    t = ctx.pass_last[i]
    is_exit = (flags & F_FIRST_OUT) == 0
    vi = ctx.portal_inside[p]
    vo = ctx.portal_outside[p]
    src, dst = (vi, vo) if is_exit else (vo, vi)
    k = ctx.counts[0]
    ctx.mov_item[k] = i
    ctx.mov_portal[k] = p
    ctx.mov_exit[k] = is_exit
    ctx.mov_time[k] = t
    ctx.mov_from[k] = src
    ctx.mov_to[k] = dst
    ctx.counts[0] = k + 1
    ctx.venue[i] = dst
    level = _level(ctx, i)
    if dst >= 0 and (level > ctx.venue_ceiling[dst] or (level == TOP_SECRET and not ctx.venue_ts[dst])):
        _alarm(ctx, A_VENUE_CEILING, t, p, i, 0)
    covered = ctx.allow_portal[i] == p and ctx.allow_us[i] >= ctx.pass_first[i] - ctx.association_us
    if is_exit and _needs_approval(ctx, p, level) and not covered:
        _alarm(ctx, A_UNAUTHORIZED_EXIT, t, p, i, 0)


@njit(cache=True, nogil=True)
def apply_reads(ctx: KCtx, start: int, time_us: np.ndarray, portal: np.ndarray, side: np.ndarray,
                words: np.ndarray, bits: np.ndarray, tid: np.ndarray) -> int:
    """Apply time-ordered valid reads from row `start`; returns the first row not applied.

    Stops early when an output buffer could overflow; the caller drains it and calls again.
    """
    cap_mov = len(ctx.mov_item)
    cap_al = len(ctx.al_kind)
    cap_unknown = len(ctx.unknown_rows)
    width = words.shape[1]
    flat = words.reshape(-1)
    # hoisted: inside the loop Numba reloads a KCtx field at every use (array writes might alias it)
    counts, table, epc_ptr, epc_words, epc_bits = ctx.counts, ctx.table, ctx.epc_ptr, ctx.epc_words, ctx.epc_bits
    pass_flags, pass_portal, pass_last, pass_reads = ctx.pass_flags, ctx.pass_portal, ctx.pass_last, ctx.pass_reads
    item_tid, settle_us = ctx.item_tid, ctx.settle_us
    for r in range(start, len(time_us)):
        if counts[0] + 1 > cap_mov or counts[1] + ALARMS_PER_READ > cap_al or counts[2] >= cap_unknown:
            return r
        t = time_us[r]
        p = portal[r]
        s = side[r]
        i = find_item(table, epc_ptr, epc_words, epc_bits, flat, r * width, bits[r])
        if i < 0:
            ctx.unknown_rows[counts[2]] = r
            counts[2] += 1
            continue
        flags = pass_flags[i]
        out_side = np.uint8(F_LAST_OUT) if s == SIDE_OUTSIDE else np.uint8(0)
        seen = np.uint8(F_SEEN_OUT) if s == SIDE_OUTSIDE else np.uint8(F_SEEN_IN)
        if (flags & F_OPEN) and pass_portal[i] == p and t - pass_last[i] <= settle_us:
            pass_last[i] = t
            if pass_reads[i] < 32767:
                pass_reads[i] += 1
            flags = (flags & ~np.uint8(F_LAST_OUT)) | out_side | seen
        else:
            if flags & F_OPEN:
                _settle(ctx, i)
            prev = pass_portal[i]
            if prev >= 0 and prev != p:
                dx = ctx.portal_xy[p, 0] - ctx.portal_xy[prev, 0]
                dy = ctx.portal_xy[p, 1] - ctx.portal_xy[prev, 1]
                if (t - pass_last[i]) * ctx.max_speed_m_per_s < np.sqrt(dx * dx + dy * dy) * 1e6:
                    _alarm(ctx, A_CLONE, t, p, i, CLONE_TRAVEL)
            if ctx.item_status[i] == DESTROYED:
                _alarm(ctx, A_DESTROYED_SEEN, t, p, i, 0)
            if not (pass_flags[i] & F_LISTED):
                ctx.open_items[ctx.n_open[0]] = i
                ctx.n_open[0] += 1
            pass_portal[i] = p
            ctx.pass_first[i] = t
            pass_last[i] = t
            pass_reads[i] = 1
            first_out = np.uint8(F_FIRST_OUT) if s == SIDE_OUTSIDE else np.uint8(0)
            flags = np.uint8(F_OPEN | F_LISTED) | first_out | out_side | seen
        if tid[r] != 0 and item_tid[i] != 0 and tid[r] != item_tid[i] and not (flags & F_TID_ALARMED):
            _alarm(ctx, A_CLONE, t, p, i, CLONE_TID)
            flags |= np.uint8(F_TID_ALARMED)
        pass_flags[i] = flags
    return len(time_us)


@njit(cache=True, nogil=True)
def settle_due(ctx: KCtx, horizon_us: int) -> tuple[bool, int]:
    """Settle passes whose last read is more than settle_us before the horizon; compact the list.

    Returns (done, oldest): done False when it stopped early because an output buffer is nearly
    full; oldest, the earliest last read of the passes still open (NO_OPEN_PASS when none).
    """
    keep = 0
    n = ctx.n_open[0]
    done = True
    oldest = NO_OPEN_PASS
    for k in range(n):
        i = ctx.open_items[k]
        flags = ctx.pass_flags[i]
        if done and (flags & F_OPEN) and horizon_us - ctx.pass_last[i] > ctx.settle_us:
            if ctx.counts[0] + 1 > len(ctx.mov_item) or ctx.counts[1] + 2 > len(ctx.al_kind):
                done = False
            else:
                _settle(ctx, i)
                flags = ctx.pass_flags[i]
        if flags & F_OPEN:
            ctx.open_items[keep] = i
            keep += 1
            oldest = min(oldest, ctx.pass_last[i])
        else:
            ctx.pass_flags[i] = flags & ~np.uint8(F_LISTED)
    ctx.n_open[0] = keep
    return done, oldest


@njit(cache=True, inline="always")
def _covered(ptr: np.ndarray, refs: np.ndarray, row: int, ctx: KCtx, person: int) -> bool:
    """Is the person, or a group the person is in, on row `row` of a person/group list?"""
    for k in range(ptr[row], ptr[row + 1]):
        ref = refs[k]
        if ref == person:
            return True
        if ref >= ctx.n_people:
            for g in range(ctx.pgroup_ptr[person], ctx.pgroup_ptr[person + 1]):
                if ctx.pgroup_idx[g] + ctx.n_people == ref:
                    return True
    return False


@njit(cache=True)
def item_reasons(ctx: KCtx, i: int, person: int, p: int, badge_us: int,
                 ts_badges: int) -> tuple[int, int]:
    """Reasons mask and chosen approval index (-1 = none) for item i leaving through portal p.

    An item already allowed out in this crossing (a companion badged first) needs no second
    approval and no scope check for the companion.
    """
    level = _level(ctx, i)
    reasons = 0
    status = ctx.item_status[i]
    if status == DESTROYED or status == SEIZED:  # noqa: SIM109 (Numba: no tuple membership)
        reasons |= R_ITEM_STATUS
    if level > ctx.person_clearance[person]:
        reasons |= R_CLEARANCE
    if level == TOP_SECRET and ts_badges < 2:
        reasons |= R_TWO_PERSON
    vo = ctx.portal_outside[p]
    if vo >= 0 and (level > ctx.venue_ceiling[vo] or (level == TOP_SECRET and not ctx.venue_ts[vo])):
        reasons |= R_DESTINATION_CEILING
    border = ctx.portal_border[p]
    if border and level == TOP_SECRET:
        reasons |= R_BORDER
    chosen = -1
    already = ctx.allow_portal[i] == p and ctx.allow_us[i] >= ctx.pass_first[i] - ctx.association_us
    if already:
        return reasons, chosen
    if _needs_approval(ctx, p, level):
        abroad = border and level >= 1
        expired = False
        used_up = False
        for k in range(ctx.item_appr_ptr[i], ctx.item_appr_ptr[i + 1]):
            a = ctx.item_appr[k]
            kind = ctx.appr_kind[a]
            kind_ok = kind == K_ABROAD if abroad else (kind == K_CARRY_OUT or kind == K_TRANSFER)  # noqa: SIM109
            if not kind_ok or not _covered(ctx.appr_ref_ptr, ctx.appr_ref, a, ctx, person):
                continue
            if ctx.appr_portal[a] >= 0 and ctx.appr_portal[a] != p:
                continue
            if ctx.appr_dest[a] >= 0 and ctx.appr_dest[a] != vo:
                continue
            if ctx.appr_uses[a] <= 0:
                used_up = True
            elif not (ctx.appr_from[a] <= badge_us < ctx.appr_until[a]):
                expired = True
            else:
                chosen = a
                break
        if chosen < 0:
            if expired:
                reasons |= R_APPROVAL_EXPIRED
            elif used_up:
                reasons |= R_APPROVAL_USED_UP
            else:
                reasons |= R_ABROAD_MISSING if abroad else R_APPROVAL_MISSING
    if level >= 1 and chosen < 0 and not _covered(ctx.scope_ptr, ctx.scope_ref, i, ctx, person):
        reasons |= R_SCOPE
    return reasons, chosen


@njit(cache=True, nogil=True)
def decide_items(ctx: KCtx, p: int, person: int, badge_us: int, decide_us: int, ts_badges: int,
                 items: np.ndarray, reasons: np.ndarray, approvals: np.ndarray) -> int:
    """Items associated with an exit at portal p (live pass begun within the association window,
    seen on the inside) and, for each, its reasons and chosen approval. Returns the item count."""
    n = 0
    for k in range(ctx.n_open[0]):
        i = ctx.open_items[k]
        flags = ctx.pass_flags[i]
        if not (flags & F_OPEN) or ctx.pass_portal[i] != p or not (flags & F_SEEN_IN):
            continue
        if decide_us - ctx.pass_last[i] > ctx.settle_us or ctx.pass_first[i] < badge_us - ctx.association_us:
            continue
        items[n] = i
        reasons[n] = 0
        approvals[n] = -1
        if person >= 0:
            mask, chosen = item_reasons(ctx, i, person, p, badge_us, ts_badges)
            reasons[n] = mask
            approvals[n] = chosen
        n += 1
    return n


@njit(cache=True, nogil=True)
def sweep_seen(ctx: KCtx, words: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Item index of each swept EPC (-1 = unregistered)."""
    found = np.empty(len(bits), dtype=np.int32)
    width = words.shape[1]
    flat = words.reshape(-1)
    for r in range(len(bits)):
        found[r] = find_item(ctx.table, ctx.epc_ptr, ctx.epc_words, ctx.epc_bits, flat, r * width, bits[r])
    return found


# read classification codes (validate_reads)
READ_OK, READ_BAD_RSSI, READ_IGNORED, READ_UNKNOWN_ANTENNA, READ_BAD_EPC = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def validate_reads(ant_portal: np.ndarray, ant_side: np.ndarray, reader: np.ndarray, antenna: np.ndarray,
                   bits: np.ndarray, rssi: np.ndarray, rssi_min: float, rssi_max: float,
                   portal: np.ndarray, side: np.ndarray, code: np.ndarray) -> int:
    """Map each read to (portal, side) and a READ_* code; returns how many are not READ_OK.

    A read with an implausible RSSI is still tracked (READ_BAD_RSSI): only its RSSI is suspect.
    """
    bad = 0
    n_readers, n_antennas = ant_portal.shape
    for r in range(len(reader)):
        rd = reader[r]
        an = antenna[r]
        c = READ_OK
        p = -1
        sd = SIDE_NONE
        if rd < 0 or rd >= n_readers or an < 0 or an >= n_antennas or ant_portal[rd, an] < 0:
            c = READ_UNKNOWN_ANTENNA
        elif bits[r] == 0:
            c = READ_BAD_EPC
        else:
            p = ant_portal[rd, an]
            sd = ant_side[rd, an]
            if sd == SIDE_IGNORE:
                c = READ_IGNORED
            elif not (rssi_min <= rssi[r] <= rssi_max):
                c = READ_BAD_RSSI
        portal[r] = p
        side[r] = sd
        code[r] = c
        if c != READ_OK:
            bad += 1
    return bad


@njit(cache=True, nogil=True)
def is_sorted(values: np.ndarray) -> bool:
    for r in range(1, len(values)):  # noqa: SIM110 (Numba: plain loop, no generator)
        if values[r] < values[r - 1]:
            return False
    return True

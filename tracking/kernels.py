"""Numba kernels of the tracking core. Private: call them through tracking.numba_core.

Inputs are validated and converted to these dtypes by the Python wrappers; kernels never see a
malformed read. Arrays are grouped in named tuples (KSnap: the register, KState: per-item state,
KOut: output buffers) instead of long positional lists; the kernels see the fields of all of them,
and of KConfig, flattened into one KCtx (see there for why). The semantics are those of
tracking.reference, which is the readable statement of every rule.

All jitted code lives in this one file because Numba's on-disk cache (cache=True) is keyed on the
defining file only: a kernel would keep a stale copy of a helper edited in another file. Constants
imported from results/codes/types are frozen into the cache the same way; after changing them, delete
tracking/__pycache__/*.nbi.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.core.extending import overload
from numba.experimental import structref

from tracking.codes import FINAL_NEXT, FINAL_OUTSIDE, KIND_CODE, SIDE_IGNORE, SIDE_NONE, SIDE_OUTSIDE, STATUS_CODE
from tracking.model import INTERNAL, TOP_SECRET
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
    R_UNCERTAIN,
)
from tracking.types import J_APPROVAL, J_REASONS, J_REFUSE

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


# PASS_DTYPE.flags bits; F_MOVED: the pass settled into a movement
F_OPEN, F_SEEN_IN, F_SEEN_OUT, F_FIRST_OUT, F_LAST_OUT, F_TID_ALARMED, F_LISTED, F_MOVED = 1, 2, 4, 8, 16, 32, 64, 128
DESTROYED, SEIZED, DECLASSIFIED = STATUS_CODE["destroyed"], STATUS_CODE["seized"], STATUS_CODE["declassified"]
K_CARRY_OUT, K_TRANSFER, K_ABROAD = KIND_CODE["carry_out"], KIND_CODE["transfer"], KIND_CODE["abroad"]
NO_OPEN_PASS = 2**62  # settle_due's "oldest" when no pass is open
NO_HIT = -(2**63)  # watch_hit when no watched portal changed
# worst case per read: a settled pass (2), then clone travel, destroyed and TID (3)
ALARMS_PER_READ = 5
NO_RSSI = -128  # a burst with no plausible RSSI (whole dBm, int8)
MAX_BURST = 255  # burst read counts saturate here (uint8)
# decide_items flags
V_UNCERTAIN, V_NEW_USE, V_RESTING = 1, 2, 4
# One record per item: its current or last pass. 32 bytes, aligned: a read touches one cache line of
# state instead of one per field (the reads of a bulk batch hit items at random).
PASS_DTYPE = np.dtype([
    ("flags", np.uint8),  # F_*
    ("burst_in", np.uint8),  # reads in the inside burst (saturating at MAX_BURST)
    ("burst_out", np.uint8),
    ("peak_in", np.int8),  # strongest RSSI of the inside burst, whole dBm, NO_RSSI = none
    ("peak_out", np.int8),
    ("pad", np.uint8),
    ("portal", np.int16),  # portal index of the pass, -1 = never read
    ("last", np.int64),  # last read
    ("other", np.int64),  # last read on the side opposite to the last read's
    ("first", np.int64),  # first read
])
MAX_PORTALS = 2**15 - 1  # PASS_DTYPE.portal
# One row of decide_items output per item within reach: a record, so that Python reads a decision's
# rows with one tolist() (five columns cost five slices and five conversions).
DEC_DTYPE = np.dtype([
    ("item", np.int32),  # item index
    ("reasons", np.int64),  # reasons mask
    ("approval", np.int32),  # covering approval index, -1 = none
    ("flags", np.int8),  # V_*
    ("since", np.int64),  # first read of its pass
])


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
    n_venues: int
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
    appr_ref_ptr: np.ndarray
    appr_ref: np.ndarray
    item_appr_ptr: np.ndarray
    item_appr: np.ndarray
    route_dist: np.ndarray
    appr_row_target: np.ndarray
    appr_row_portal: np.ndarray
    appr_final: np.ndarray


class KState(NamedTuple):
    passes: np.ndarray  # PASS_DTYPE, one per item
    venue: np.ndarray  # int32, current venue index
    allow_portal: np.ndarray  # int16 (portals < MAX_PORTALS), portal of the last allow covering the item
    allow_us: np.ndarray  # int64
    custody: np.ndarray  # int32, approval the item is carried under along its route, -1 = none
    # The items with F_LISTED, per portal (their pass's): a doubly linked list per portal (-1 ends it), so that
    # a decision looks at the passes of its own portal only, however many are open at others; and the portals
    # whose list may be non-empty, which settle_due walks (and compacts).
    portal_listed: np.ndarray  # int32 per portal: first item of its list
    listed_next: np.ndarray  # int32 per item
    listed_prev: np.ndarray  # int32 per item
    active_portals: np.ndarray  # int32 per portal: the first n_active are the portals settle_due walks
    n_active: np.ndarray  # int64[1]
    portal_active: np.ndarray  # bool per portal: among the first n_active of active_portals
    appr_uses: np.ndarray  # int32
    portal_new: np.ndarray  # int64 per portal: when a pass last opened there
    portal_change: np.ndarray  # int64 per portal: last read there that opened a pass or made an item clear
    # Portals with an armed decision (set by the engine): apply_reads stops after the reads of the first moment
    # at which one of them changed (portal_change), so the decision is looked at again right then.
    portal_watch: np.ndarray  # bool per portal
    watch_hit: np.ndarray  # int64[1]: that moment, NO_HIT when none since the caller reset it
    dec: np.ndarray  # DEC_DTYPE, decide_items output (scratch, not state)


class KConfig(NamedTuple):
    settle_us: int
    association_us: int
    reach_us: int
    two_person_us: int
    door_grant_us: int
    burst_gap_us: int
    min_reads: int
    side_reads_full: int
    rssi_weak_dbm: float
    rssi_strong_dbm: float
    rssi_min_dbm: float
    rssi_max_dbm: float
    movement_confidence_min: float
    presence_min_reads: int
    presence_rssi_dbm: float
    internal_needs_approval: bool
    max_speed_m_per_s: float


class KOut(NamedTuple):
    mov_item: np.ndarray
    mov_portal: np.ndarray
    mov_exit: np.ndarray
    mov_time: np.ndarray
    mov_from: np.ndarray
    mov_to: np.ndarray
    mov_conf: np.ndarray
    al_kind: np.ndarray
    al_time: np.ndarray
    al_portal: np.ndarray
    al_item: np.ndarray
    al_detail: np.ndarray
    al_late: np.ndarray
    unknown_rows: np.ndarray
    counts: np.ndarray  # int64[3]: movements, alarms, unknown rows


@structref.register
class KCtxType(types.StructRef):
    """Numba type of KCtx: one field per field of KSnap, KState, KConfig and KOut."""

    def preprocess_fields(self, fields: tuple) -> tuple:
        return tuple((name, types.unliteral(t)) for name, t in fields)


class KCtx(structref.StructRefProxy):
    """Every array and setting of KSnap, KState, KConfig and KOut as a field of one object.

    Why: a call from Python unboxes each array it is given (~0.25 us each, ~15 us for the ~80 of the
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
def _alarm(ctx: KCtx, kind: int, t: int, p: int, i: int, detail: int, late: bool) -> None:
    k = ctx.counts[1]
    ctx.al_kind[k] = kind
    ctx.al_time[k] = t
    ctx.al_portal[k] = p
    ctx.al_item[k] = i
    ctx.al_detail[k] = detail
    ctx.al_late[k] = late
    ctx.counts[1] = k + 1


@njit(cache=True, inline="always")
def _needs_approval(ctx: KCtx, p: int, level: int) -> bool:
    if level == 0 or (level == INTERNAL and not ctx.internal_needs_approval):
        return False
    vi = ctx.portal_inside[p]
    vo = ctx.portal_outside[p]
    lower = vo < 0 or ctx.venue_ceiling[vo] < ctx.venue_ceiling[vi]
    return lower or ctx.portal_border[p]


@njit(cache=True, inline="always")
def _rejects(ctx: KCtx, v: int, level: int) -> bool:
    """Would venue v (-1: the outside of the unit) refuse an item of this level?"""
    return v >= 0 and (level > ctx.venue_ceiling[v] or (level == TOP_SECRET and not ctx.venue_ts[v]))


@njit(cache=True, inline="always")
def _node(ctx: KCtx, v: int) -> int:
    """Route node of a venue index (-1, the outside of the unit, is node n_venues)."""
    return ctx.n_venues if v < 0 else v


@njit(cache=True, inline="always")
def _dbm(ctx: KCtx, rssi: float) -> int:
    if not (ctx.rssi_min_dbm <= rssi <= ctx.rssi_max_dbm):  # NaN fails too
        return NO_RSSI
    return max(-127, min(127, int(np.floor(rssi + 0.5))))


@njit(cache=True, inline="always")
def _strength(ctx: KCtx, reads: int, peak: int) -> float:
    count = min(1.0, reads / ctx.side_reads_full)
    if peak == NO_RSSI:
        return count
    span = ctx.rssi_strong_dbm - ctx.rssi_weak_dbm
    return count * min(1.0, max(0.0, (peak - ctx.rssi_weak_dbm) / span))


@njit(cache=True, inline="always")
def _on_route(ctx: KCtx, a: int, p: int) -> bool:
    """Is crossing portal p a step along approval a's route? (tracking.reference._on_route)"""
    src = ctx.portal_inside[p]
    dst = _node(ctx, ctx.portal_outside[p])
    dist = ctx.route_dist
    rt = ctx.appr_row_target[a]
    toward = rt < 0 or dist[rt, dst] < dist[rt, src]
    x = ctx.appr_portal[a]
    if x < 0 or x == p:
        return toward
    rx = ctx.appr_row_portal[a]
    if dist[rx, dst] < dist[rx, src]:
        return True  # on the way to the approval's portal
    if rt < 0:
        return False
    return dist[rt, src] < dist[rt, ctx.portal_inside[x]] and toward


@njit(cache=True, inline="always")
def _ceiling(ctx: KCtx, a: int, next_venue: int, level: int) -> int:
    """destination_ceiling where the item comes to rest: approval a's destination, else next_venue."""
    rest = next_venue
    if a >= 0:
        final = ctx.appr_final[a]
        if final == FINAL_OUTSIDE:
            rest = -1
        elif final != FINAL_NEXT:
            rest = final
    return R_DESTINATION_CEILING if _rejects(ctx, rest, level) else 0


@njit(cache=True, inline="always")
def _in_transit(ctx: KCtx, i: int, src: int, dst: int) -> bool:
    """Is item i carried on through dst in custody on its route? Ends the custody otherwise."""
    a = ctx.custody[i]
    if a >= 0:
        rt = ctx.appr_row_target[a]
        if rt >= 0:
            d = ctx.route_dist[rt, _node(ctx, dst)]
            if d != 0 and d < ctx.route_dist[rt, _node(ctx, src)]:
                return True
    ctx.custody[i] = -1
    return False


@njit(cache=True, inline="always")
def _clear(ctx: KCtx, rec: np.void) -> bool:
    """Is the item of this pass clearly present inside (tracking.reference, rule 4.8)? NO_RSSI is
    below any presence_rssi_dbm, so a burst without RSSI is clear by its count only."""
    return (rec.flags & F_SEEN_IN) != 0 and (rec.burst_in >= ctx.presence_min_reads
                                             or rec.peak_in >= ctx.presence_rssi_dbm)


@njit(cache=True, inline="always")
def _settle(ctx: KCtx, i: int) -> None:
    """Close item i's open pass: a movement if both sides give enough evidence in order (rule 4.10)."""
    rec = ctx.passes[i]
    flags = rec.flags & ~np.uint8(F_OPEN)
    rec.flags = flags
    both = (flags & F_SEEN_IN) != 0 and (flags & F_SEEN_OUT) != 0
    crossed = ((flags & F_FIRST_OUT) != 0) != ((flags & F_LAST_OUT) != 0)
    if not (both and crossed):
        return
    n_in = int(rec.burst_in)
    n_out = int(rec.burst_out)
    if n_in + n_out < ctx.min_reads:
        return
    confidence = min(_strength(ctx, n_in, int(rec.peak_in)), _strength(ctx, n_out, int(rec.peak_out)))
    if confidence < ctx.movement_confidence_min:
        return
    rec.flags = flags | np.uint8(F_MOVED)
    p = int(rec.portal)
    t = rec.last
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
    ctx.mov_conf[k] = confidence
    ctx.counts[0] = k + 1
    ctx.venue[i] = dst
    level = _level(ctx, i)
    if not _in_transit(ctx, i, src, dst) and _rejects(ctx, dst, level):
        _alarm(ctx, A_VENUE_CEILING, t, p, i, 0, False)
    if is_exit and _needs_approval(ctx, p, level):
        allow = ctx.allow_us[i]
        covered = ctx.allow_portal[i] == p and rec.first - ctx.reach_us <= allow and \
            rec.other <= allow + ctx.door_grant_us
        if not covered:
            _alarm(ctx, A_UNAUTHORIZED_EXIT, t, p, i, 0, False)


@njit(cache=True, inline="always")
def _link(ctx: KCtx, i: int, p: int) -> None:
    """Put listed item i first in portal p's list."""
    head = ctx.portal_listed[p]
    ctx.listed_next[i] = head
    ctx.listed_prev[i] = -1
    if head >= 0:
        ctx.listed_prev[head] = i
    ctx.portal_listed[p] = i
    if not ctx.portal_active[p]:
        ctx.portal_active[p] = True
        ctx.active_portals[ctx.n_active[0]] = p
        ctx.n_active[0] += 1


@njit(cache=True, inline="always")
def _unlink(ctx: KCtx, i: int, p: int) -> None:
    """Take item i out of portal p's list."""
    before = ctx.listed_prev[i]
    after = ctx.listed_next[i]
    if before >= 0:
        ctx.listed_next[before] = after
    else:
        ctx.portal_listed[p] = after
    if after >= 0:
        ctx.listed_prev[after] = before


@njit(cache=True, inline="always")
def _too_far(ctx: KCtx, a: int, b: int, gap_us: int) -> bool:
    dx = ctx.portal_xy[b, 0] - ctx.portal_xy[a, 0]
    dy = ctx.portal_xy[b, 1] - ctx.portal_xy[a, 1]
    return gap_us * ctx.max_speed_m_per_s < np.sqrt(dx * dx + dy * dy) * 1e6


@njit(cache=True, inline="always")
def _stale_read(ctx: KCtx, i: int, p: int, t: int, tid: np.uint64) -> None:
    """Alarms of a late or stale read as of its own time; it changes no state (rule 4.9)."""
    rec = ctx.passes[i]
    prev = int(rec.portal)
    if prev >= 0 and prev != p:
        gap = rec.first - t if t < rec.first else max(0, t - rec.last)
        if _too_far(ctx, prev, p, gap):
            _alarm(ctx, A_CLONE, t, p, i, CLONE_TRAVEL, True)
    if ctx.item_status[i] == DESTROYED:
        _alarm(ctx, A_DESTROYED_SEEN, t, p, i, 0, True)
    if tid != 0 and ctx.item_tid[i] != 0 and tid != ctx.item_tid[i]:
        _alarm(ctx, A_CLONE, t, p, i, CLONE_TID, True)


@njit(cache=True, nogil=True)
def apply_reads(ctx: KCtx, start: int, time_us: np.ndarray, portal: np.ndarray, side: np.ndarray,
                words: np.ndarray, bits: np.ndarray, tid: np.ndarray, rssi: np.ndarray, stale: np.ndarray) -> int:
    """Apply time-ordered valid reads from row `start`; returns the first row not applied.

    Stops early when an output buffer could overflow (the caller drains it and calls again), and after the
    rows of the moment at which a watched portal changed (watch_hit, until the caller resets it).
    """
    cap_mov = len(ctx.mov_item)
    cap_al = len(ctx.al_kind)
    cap_unknown = len(ctx.unknown_rows)
    width = words.shape[1]
    flat = words.reshape(-1)
    # hoisted: inside the loop Numba reloads a KCtx field at every use (array writes might alias it)
    counts, table, epc_ptr, epc_words, epc_bits = ctx.counts, ctx.table, ctx.epc_ptr, ctx.epc_words, ctx.epc_bits
    passes, item_tid, settle_us, burst_gap = ctx.passes, ctx.item_tid, ctx.settle_us, ctx.burst_gap_us
    min_reads, min_dbm = ctx.presence_min_reads, ctx.presence_rssi_dbm
    watch, hit = ctx.portal_watch, ctx.watch_hit
    moment = hit[0]  # kept in a local as well: a load of hit[0] per read would not be hoisted
    for r in range(start, len(time_us)):
        if counts[0] + 1 > cap_mov or counts[1] + ALARMS_PER_READ > cap_al or counts[2] >= cap_unknown:
            return r
        t = time_us[r]
        if moment != NO_HIT and t != moment:
            return r
        p = portal[r]
        i = find_item(table, epc_ptr, epc_words, epc_bits, flat, r * width, bits[r])
        if i < 0:
            ctx.unknown_rows[counts[2]] = r
            counts[2] += 1
            continue
        if stale[r]:
            _stale_read(ctx, i, p, t, tid[r])
            continue
        rec = passes[i]
        outside = side[r] == SIDE_OUTSIDE
        dbm = _dbm(ctx, rssi[r])
        flags = rec.flags
        out_side = np.uint8(F_LAST_OUT) if outside else np.uint8(0)
        seen = np.uint8(F_SEEN_OUT) if outside else np.uint8(F_SEEN_IN)
        if (flags & F_OPEN) and rec.portal == p and t - rec.last <= settle_us:
            if outside == ((flags & F_LAST_OUT) != 0):
                side_last = rec.last
            else:
                side_last = rec.other
                rec.other = rec.last
            if outside:
                if rec.burst_out == 0 or t - side_last > burst_gap:
                    rec.burst_out = 1
                    rec.peak_out = dbm
                else:
                    rec.burst_out = min(int(rec.burst_out) + 1, MAX_BURST)
                    rec.peak_out = max(int(rec.peak_out), dbm)
            else:  # only an inside read can make the item clearly present (_clear)
                was_clear = (flags & F_SEEN_IN) != 0 and (rec.burst_in >= min_reads or rec.peak_in >= min_dbm)
                if rec.burst_in == 0 or t - side_last > burst_gap:
                    rec.burst_in = 1
                    rec.peak_in = dbm
                else:
                    rec.burst_in = min(int(rec.burst_in) + 1, MAX_BURST)
                    rec.peak_in = max(int(rec.peak_in), dbm)
                if not was_clear and (rec.burst_in >= min_reads or rec.peak_in >= min_dbm):
                    ctx.portal_change[p] = t
                    if watch[p] and moment == NO_HIT:
                        moment = hit[0] = t
            rec.last = t
            flags = (flags & ~np.uint8(F_LAST_OUT)) | out_side | seen
        else:
            if flags & F_OPEN:
                _settle(ctx, i)
            prev = int(rec.portal)
            if prev >= 0 and prev != p and _too_far(ctx, prev, p, t - rec.last):
                _alarm(ctx, A_CLONE, t, p, i, CLONE_TRAVEL, False)
            if ctx.item_status[i] == DESTROYED:
                _alarm(ctx, A_DESTROYED_SEEN, t, p, i, 0, False)
            if not (rec.flags & F_LISTED):
                _link(ctx, i, p)
            elif prev != p:  # listed still at the portal of its last pass
                _unlink(ctx, i, prev)
                _link(ctx, i, p)
            rec.portal = p
            rec.first = t
            rec.last = t
            rec.other = t
            if outside:
                rec.burst_out, rec.peak_out, rec.burst_in, rec.peak_in = 1, dbm, 0, NO_RSSI
            else:
                rec.burst_in, rec.peak_in, rec.burst_out, rec.peak_out = 1, dbm, 0, NO_RSSI
            ctx.portal_new[p] = t
            ctx.portal_change[p] = t
            if watch[p] and moment == NO_HIT:
                moment = hit[0] = t
            first_out = np.uint8(F_FIRST_OUT) if outside else np.uint8(0)
            flags = np.uint8(F_OPEN | F_LISTED) | first_out | out_side | seen
        if tid[r] != 0 and item_tid[i] != 0 and tid[r] != item_tid[i] and not (flags & F_TID_ALARMED):
            _alarm(ctx, A_CLONE, t, p, i, CLONE_TID, False)
            flags |= np.uint8(F_TID_ALARMED)
        rec.flags = flags
    return len(time_us)


@njit(cache=True, nogil=True)
def settle_due(ctx: KCtx, horizon_us: int) -> tuple[bool, int]:
    """Settle passes whose last read is more than settle_us before the horizon; unlist the old ones.

    A settled pass stays listed while it may still be within reach of a decision (reach_us before a
    badge, decided at most settle_us after it). Returns (done, oldest): done False when it stopped
    early because an output buffer is nearly full; oldest, the earliest last read of the passes still
    open (NO_OPEN_PASS when none).
    """
    done = True
    oldest = NO_OPEN_PASS
    listed_us = ctx.reach_us + ctx.settle_us
    passes = ctx.passes
    keep = 0
    for a in range(ctx.n_active[0]):
        p = ctx.active_portals[a]
        following = ctx.portal_listed[p]
        while following >= 0:
            i = following
            following = ctx.listed_next[i]
            rec = passes[i]
            flags = rec.flags
            if done and (flags & F_OPEN) and horizon_us - rec.last > ctx.settle_us:
                if ctx.counts[0] + 1 > len(ctx.mov_item) or ctx.counts[1] + 2 > len(ctx.al_kind):
                    done = False
                else:
                    _settle(ctx, i)
                    flags = rec.flags
            if flags & F_OPEN:
                oldest = min(oldest, rec.last)
            elif horizon_us - rec.last > listed_us:
                rec.flags = flags & ~np.uint8(F_LISTED)
                _unlink(ctx, i, p)
        if ctx.portal_listed[p] >= 0:
            ctx.active_portals[keep] = p
            keep += 1
        else:
            ctx.portal_active[p] = False
    ctx.n_active[0] = keep
    return done, oldest


@njit(cache=True, nogil=True)
def link_listed(ctx: KCtx) -> None:
    """The per-portal lists of a state whose passes are set (a register swap), from their F_LISTED flags."""
    ctx.portal_listed[:] = -1
    ctx.portal_active[:] = False
    ctx.n_active[0] = 0
    for i in range(len(ctx.passes)):
        if ctx.passes[i].flags & F_LISTED:
            _link(ctx, i, int(ctx.passes[i].portal))


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
def item_reasons(ctx: KCtx, i: int, person: int, p: int, badge_us: int, ts_people: int) -> tuple[int, int, bool]:
    """(reasons mask, covering approval index or -1, whether it spends a use) for item i leaving
    through portal p (tracking.reference._item_verdict)."""
    level = _level(ctx, i)
    reasons = 0
    status = ctx.item_status[i]
    if status == DESTROYED or status == SEIZED:  # noqa: SIM109 (Numba: no tuple membership)
        reasons |= R_ITEM_STATUS
    if level > ctx.person_clearance[person]:
        reasons |= R_CLEARANCE
    if level == TOP_SECRET and ts_people < 2:
        reasons |= R_TWO_PERSON
    vo = ctx.portal_outside[p]
    border = ctx.portal_border[p]
    if border and level == TOP_SECRET:
        reasons |= R_BORDER
    custody = ctx.custody[i]
    allow = ctx.allow_us[i]
    during = allow >= ctx.passes[i].first - ctx.reach_us
    if ctx.allow_portal[i] == p and allow >= badge_us - ctx.two_person_us and during:
        # already allowed out in this crossing (during this pass, within the two-person window):
        # a companion needs no second approval or scope
        chosen = custody if custody >= 0 and _on_route(ctx, custody, p) else -1
        return reasons | _ceiling(ctx, chosen, vo, level), chosen, False
    abroad = border and level >= 1
    matching = False
    usable = False
    custody_ok = False
    first_valid = -1
    for k in range(ctx.item_appr_ptr[i], ctx.item_appr_ptr[i + 1]):
        a = ctx.item_appr[k]
        kind = ctx.appr_kind[a]
        kind_ok = kind == K_ABROAD if abroad else (kind == K_CARRY_OUT or kind == K_TRANSFER or kind == K_ABROAD)  # noqa: SIM109
        if not kind_ok or not _covered(ctx.appr_ref_ptr, ctx.appr_ref, a, ctx, person) or not _on_route(ctx, a, p):
            continue
        matching = True
        timely = ctx.appr_from[a] <= badge_us < ctx.appr_until[a]
        if a == custody and timely:
            custody_ok = True
        if ctx.appr_uses[a] > 0:
            usable = True
            if timely and first_valid < 0:
                first_valid = a
    chosen = -1
    new_use = False
    if custody_ok:
        chosen = custody  # carried on along its route: no second use
    elif _needs_approval(ctx, p, level):
        if first_valid >= 0:
            chosen = first_valid
            new_use = True
        elif usable:
            reasons |= R_APPROVAL_EXPIRED
        elif matching:
            reasons |= R_APPROVAL_USED_UP
        else:
            reasons |= R_ABROAD_MISSING if abroad else R_APPROVAL_MISSING
    reasons |= _ceiling(ctx, chosen, vo, level)
    if level >= 1 and chosen < 0 and not _covered(ctx.scope_ptr, ctx.scope_ref, i, ctx, person):
        reasons |= R_SCOPE
    return reasons, chosen, new_use


@njit(cache=True, nogil=True)
def decide_items(ctx: KCtx, p: int, person: int, badge_us: int, ts_people: int, entry: bool) -> int:
    """Every item within reach of portal p for a badge at badge_us (tracking.reference.decide), with
    its reasons, covering approval and V_* flags, into the rows of ctx.dec. Returns the item count."""
    dec = ctx.dec
    n = 0
    outside = ctx.portal_outside[p]
    following = ctx.portal_listed[p]
    while following >= 0:
        i = following
        following = ctx.listed_next[i]
        rec = ctx.passes[i]
        if rec.last < badge_us - ctx.reach_us:
            continue
        flags = rec.flags
        if ctx.venue[i] == outside and (entry or not (flags & F_SEEN_IN)):
            continue  # outside it is: read only outside, or being brought in through a door opened for an entry
        if (flags & F_MOVED) and not (flags & F_FIRST_OUT):
            continue  # already left through this door
        clear = _clear(ctx, rec)
        mask = 0
        chosen = -1
        new_use = False
        if person >= 0:
            mask, chosen, new_use = item_reasons(ctx, i, person, p, badge_us, ts_people)
        first = rec.first
        row = dec[n]
        row.item = i
        row.reasons = mask
        row.approval = chosen
        row.flags = (0 if clear else V_UNCERTAIN) | (V_NEW_USE if new_use else 0) | \
            (V_RESTING if first < badge_us - ctx.association_us else 0)
        row.since = first
        n += 1
    return n


@njit(cache=True, nogil=True)
def judge_items(ctx: KCtx, p: int, person: int, badge_us: int, ts_people: int, entry: bool) -> tuple[int, int, int]:
    """decide_items, and what the engine decides from its rows at once (tracking.types.summarize): the item
    count, the J_* summary and the OR of the items' masks, marked uncertain."""
    n = decide_items(ctx, p, person, badge_us, ts_people, entry)
    dec = ctx.dec
    summary = 0
    mask = 0
    for r in range(n):
        row = dec[r]
        reasons = row.reasons
        if reasons:
            uncertain = (row.flags & V_UNCERTAIN) != 0
            summary |= J_REASONS if uncertain or reasons == R_TWO_PERSON else J_REASONS | J_REFUSE
            mask |= reasons | (R_UNCERTAIN if uncertain else 0)
        if row.approval >= 0:
            summary |= J_APPROVAL
    return n, summary, mask


@njit(cache=True, nogil=True)
def commit_decided(ctx: KCtx, n: int, p: int, allow_us: int) -> None:
    """The n items of the last decide_items leave through portal p at allow_us (tracking.reference
    commit_allow): an approval it chose that has a destination takes the item into custody."""
    dec = ctx.dec
    for r in range(n):
        row = dec[r]
        i = row.item
        ctx.allow_portal[i] = p
        ctx.allow_us[i] = allow_us
        a = row.approval
        if a >= 0 and ctx.appr_row_target[a] >= 0:
            ctx.custody[i] = a


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
def validate_reads(ant_portal: np.ndarray, ant_side: np.ndarray, time_us: np.ndarray, reader: np.ndarray,
                   antenna: np.ndarray, bits: np.ndarray, rssi: np.ndarray, rssi_min: float, rssi_max: float,
                   portal: np.ndarray, side: np.ndarray, code: np.ndarray) -> tuple[int, bool]:
    """Map each read to (portal, side) and a READ_* code; returns (how many are not READ_OK, whether
    the reads are in time order), in one pass over the batch.

    A read with an implausible RSSI is still tracked (READ_BAD_RSSI): only its RSSI is suspect.
    """
    bad = 0
    ordered = True
    n_readers, n_antennas = ant_portal.shape
    for r in range(len(reader)):
        if r and time_us[r] < time_us[r - 1]:
            ordered = False
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
    return bad, ordered

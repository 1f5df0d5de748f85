"""Numba core: per-item state in arrays, the same interface and semantics as ReferenceCore.

Public methods validate nothing (the engine does) but own the conversion between register ids and
array indices and the draining of the kernels' bounded output buffers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from numba.core import types

from tracking import kernels as k
from tracking.codes import STATUS_CODE
from tracking.model import EngineConfig
from tracking.snapshot import Snapshot
from tracking.types import NO_EVENTS, CoreEvents, ItemVerdict, ValidReads

_BUFFER = 65_536
# decide builds an ItemVerdict per item at every evaluation: from its tuple of all fields, without the
# named tuple's Python __new__
_verdict = tuple.__new__
_NEW_USE, _UNCERTAIN, _RESTING = k.V_NEW_USE, k.V_UNCERTAIN, k.V_RESTING


def _ksnap(s: Snapshot) -> k.KSnap:
    return k.KSnap(
        s.item_level, s.item_status, s.item_tid, s.scope_ptr, s.scope_ref, s.epc_ptr, s.epc_words,
        s.epc_bits, s.table, s.venue_ceiling, s.venue_ts, len(s.venue_ids), s.portal_inside, s.portal_outside,
        s.portal_border, s.portal_xy, s.person_clearance, s.pgroup_ptr, s.pgroup_idx, len(s.person_ids),
        s.appr_kind, s.appr_from, s.appr_until, s.appr_portal, s.appr_ref_ptr, s.appr_ref,
        s.item_appr_ptr, s.item_appr, s.route_dist, s.appr_row_target, s.appr_row_portal, s.appr_final,
    )


def _kconfig(c: EngineConfig) -> k.KConfig:
    return k.KConfig(
        c.settle_us, c.association_us, c.reach_us, c.two_person_us, c.door_grant_us, c.burst_gap_us, c.min_reads,
        c.side_reads_full, float(c.rssi_weak_dbm), float(c.rssi_strong_dbm), float(c.rssi_min_dbm),
        float(c.rssi_max_dbm), float(c.movement_confidence_min), c.presence_min_reads, float(c.presence_rssi_dbm),
        bool(c.internal_needs_approval), float(c.max_speed_m_per_s),
    )


def _no_passes(n: int) -> np.ndarray:
    passes = np.zeros(n, dtype=k.PASS_DTYPE)
    passes["portal"] = -1
    passes["peak_in"] = passes["peak_out"] = k.NO_RSSI
    return passes


def _fresh_state(s: Snapshot) -> k.KState:
    n = s.n_items
    return k.KState(
        passes=_no_passes(n),
        venue=s.item_venue.copy(),
        allow_portal=np.full(n, -1, dtype=np.int16),
        allow_us=np.full(n, -1, dtype=np.int64),
        custody=np.full(n, -1, dtype=np.int32),
        portal_listed=np.full(len(s.portal_ids), -1, dtype=np.int32),
        listed_next=np.full(n, -1, dtype=np.int32),
        listed_prev=np.full(n, -1, dtype=np.int32),
        active_portals=np.zeros(len(s.portal_ids), dtype=np.int32),
        n_active=np.zeros(1, dtype=np.int64),
        portal_active=np.zeros(len(s.portal_ids), dtype=np.bool_),
        appr_uses=s.appr_uses.copy(),
        portal_new=np.full(len(s.portal_ids), -(2**62), dtype=np.int64),
        portal_change=np.full(len(s.portal_ids), -(2**62), dtype=np.int64),
        portal_watch=np.zeros(len(s.portal_ids), dtype=np.bool_),
        watch_hit=np.full(1, k.NO_HIT, dtype=np.int64),
        dec=np.zeros(max(n, 1), k.DEC_DTYPE),
    )


def _out_buffers(size: int) -> k.KOut:
    return k.KOut(
        np.zeros(size, np.int32), np.zeros(size, np.int32), np.zeros(size, np.bool_), np.zeros(size, np.int64),
        np.zeros(size, np.int32), np.zeros(size, np.int32), np.zeros(size, np.float64),
        np.zeros(size, np.int8), np.zeros(size, np.int64), np.zeros(size, np.int32), np.zeros(size, np.int32),
        np.zeros(size, np.int8), np.zeros(size, np.bool_), np.zeros(size, np.int64), np.zeros(3, np.int64),
    )


class NumbaCore:
    """Array state + Numba kernels; see tracking.reference for the rules."""

    def __init__(self, snapshot: Snapshot, config: EngineConfig) -> None:
        self.config = config
        self.kcfg = _kconfig(config)
        self.out = _out_buffers(_BUFFER)
        self._install(snapshot, _fresh_state(snapshot))

    def _install(self, snapshot: Snapshot, state: k.KState) -> None:
        if len(snapshot.portal_ids) > k.MAX_PORTALS:
            raise ValueError(f"the Numba core tracks at most {k.MAX_PORTALS} portals")
        self.snapshot = snapshot
        self.ksnap = _ksnap(snapshot)
        self.state = state
        self.ctx = k.make_ctx(self.ksnap, state, self.kcfg, self.out)
        # The kernels the latency path calls with this ctx and scalars only, as their compiled code for
        # exactly those types (what Numba's dispatch would choose, loaded from its cache): a call then
        # skips typing the KCtx argument, a struct of ~90 fields, ~0.5 us each time.
        ctx_type, i64 = numba.typeof(self.ctx), types.int64
        self._judge_items = k.judge_items.compile((ctx_type, i64, i64, i64, i64, types.boolean))
        self._settle_due = k.settle_due.compile((ctx_type, i64))
        self._commit_decided = k.commit_decided.compile((ctx_type, i64, i64, i64))
        # and apply_reads for the column types of ValidReads (the engine guarantees them): Numba's dispatch
        # would type the ctx and nine arrays at every call, on the latency path once or twice per event
        column = types.Array
        self._apply_reads = k.apply_reads.compile((
            ctx_type, i64, column(i64, 1, "C"), column(types.int32, 1, "C"), column(types.int8, 1, "C"),
            column(types.uint64, 2, "C"), column(types.int16, 1, "C"), column(types.uint64, 1, "C"),
            column(types.float64, 1, "C"), column(types.boolean, 1, "C"),
        ))
        # venue index -> register id; index -1 (the outside of the unit) -> -1
        self._venue_id_or_outside = np.append(snapshot.venue_ids, -1).astype(np.int64)
        self._id_order = np.argsort(snapshot.item_ids)
        # a lower bound on the last read of every open pass: no sweep is needed before it expires
        self._oldest_last = -(2**62)
        self._approval_pos = {int(a): i for i, a in enumerate(snapshot.appr_ids)}
        self._appr_ids = snapshot.appr_ids.tolist()
        self._n_decided = 0  # the items of the last judge: its rows of state.dec (verdicts, commit_decided)

    def state_bytes(self) -> int:
        """Bytes of tracking state (the dec scratch rows of decide_items are not state)."""
        return sum(a.nbytes for name, a in self.state._asdict().items() if isinstance(a, np.ndarray) and name != "dec")

    def swap(self, snapshot: Snapshot) -> None:
        """Use a new register: venues and approval uses come from it; passes carry over by id."""
        old, old_snap = self.state, self.snapshot
        new = _fresh_state(snapshot)
        # item and portal index maps old -> new by register id (-1 = gone)
        order = np.argsort(snapshot.item_ids)
        pos = np.searchsorted(snapshot.item_ids, old_snap.item_ids, sorter=order)
        pos = np.minimum(pos, max(len(order) - 1, 0))
        item_map = np.full(old_snap.n_items, -1, np.int64)
        if len(order):
            hit = snapshot.item_ids[order[pos]] == old_snap.item_ids
            item_map[hit] = order[pos[hit]]
        portal_pos = {pid: i for i, pid in enumerate(snapshot.portal_ids.tolist())}
        portal_map = np.array([portal_pos.get(pid, -1) for pid in old_snap.portal_ids.tolist()] + [-1], np.int32)
        keep = item_map >= 0
        src, dst = np.nonzero(keep)[0], item_map[keep]
        old_portal = old.passes["portal"].astype(np.int64)
        pass_ok = portal_map[old_portal[src]] >= 0
        s2, d2 = src[pass_ok], dst[pass_ok]
        new.passes[d2] = old.passes[s2]
        new.passes["portal"][d2] = portal_map[old_portal[s2]]
        allow_ok = portal_map[old.allow_portal[src]] >= 0
        s3, d3 = src[allow_ok], dst[allow_ok]
        new.allow_portal[d3] = portal_map[old.allow_portal[s3]]
        new.allow_us[d3] = old.allow_us[s3]
        appr_pos = {int(a): i for i, a in enumerate(snapshot.appr_ids)}
        appr_map = np.array([appr_pos.get(int(a), -1) for a in old_snap.appr_ids] + [-1], np.int32)
        new.custody[dst] = appr_map[old.custody[src]]
        for p_old, p_new in enumerate(portal_map[:-1].tolist()):
            if p_new >= 0:
                new.portal_new[p_new] = old.portal_new[p_old]
                new.portal_change[p_new] = old.portal_change[p_old]
        self._install(snapshot, new)
        k.link_listed(self.ctx)  # open passes and those still within reach, in their portals' lists

    def _drain(self, events: CoreEvents) -> CoreEvents:
        """Copy the kernels' output buffers into events as columns of register ids; returns events, or
        new ones when it was NO_EVENTS (most calls on the latency path produce nothing)."""
        out, s = self.out, self.snapshot
        n_mov, n_al, n_unk = out.counts.tolist()
        if not (n_mov or n_al or n_unk):
            return events
        if events is NO_EVENTS:
            events = CoreEvents()
        if n_mov:
            venue = self._venue_id_or_outside
            events.movement_columns.append((
                s.item_ids[out.mov_item[:n_mov]], s.portal_ids[out.mov_portal[:n_mov]], out.mov_exit[:n_mov].copy(),
                out.mov_time[:n_mov].copy(), venue[out.mov_from[:n_mov]], venue[out.mov_to[:n_mov]],
                out.mov_conf[:n_mov].copy(),
            ))
        if n_al:
            events.alarm_columns.append((
                out.al_kind[:n_al].copy(), out.al_time[:n_al].copy(), s.portal_ids[out.al_portal[:n_al]],
                s.item_ids[out.al_item[:n_al]], out.al_detail[:n_al].copy(), out.al_late[:n_al].copy(),
            ))
        events.unknown_rows.extend(out.unknown_rows[:n_unk].tolist())
        out.counts[:] = 0
        return events

    def apply_reads(self, reads: ValidReads) -> CoreEvents:
        events = NO_EVENTS
        n, hit = len(reads.time_us), self.state.watch_hit
        if n:  # a lower bound (stale rows open no pass, but counting them is only cautious)
            self._oldest_last = min(self._oldest_last, reads.time_us.item(0))
        row, apply = 0, self._apply_reads
        while row < n:
            row = apply(self.ctx, row, reads.time_us, reads.portal, reads.side, reads.epc_words, reads.epc_bits,
                        reads.tid_hash, reads.rssi, reads.stale)
            events = self._drain(events)
            if hit.item(0) != k.NO_HIT:  # a watched portal changed: no reason to stop here
                hit[0] = k.NO_HIT
        return events

    def apply_reads_watching(self, reads: ValidReads) -> tuple[CoreEvents, int, int | None]:
        """apply_reads up to and including the first moment at which a read changed a watched portal
        (portal_changed): (events, rows applied, that moment or None)."""
        events = NO_EVENTS
        n, hit = len(reads.time_us), self.state.watch_hit
        if n:
            self._oldest_last = min(self._oldest_last, reads.time_us.item(0))
        row, apply = 0, self._apply_reads
        while row < n:
            row = apply(self.ctx, row, reads.time_us, reads.portal, reads.side, reads.epc_words, reads.epc_bits,
                        reads.tid_hash, reads.rssi, reads.stale)
            events = self._drain(events)
            moment = hit.item(0)
            if moment != k.NO_HIT and (row == n or reads.time_us.item(row) != moment):
                hit[0] = k.NO_HIT
                return events, row, moment
        return events, n, None

    def watch(self, portal_index: int, on: bool) -> None:
        """Whether apply_reads_watching stops at a change of the portal (it has an armed decision)."""
        self.state.portal_watch[portal_index] = on

    def settle_due(self, horizon_us: int) -> CoreEvents:
        if horizon_us - self.config.settle_us <= self._oldest_last:
            return NO_EVENTS  # no open pass can be due yet
        events, done = NO_EVENTS, False
        while not done:
            done, self._oldest_last = self._settle_due(self.ctx, horizon_us)
            events = self._drain(events)
        return events

    def judge(self, portal_index: int, person_index: int, badge_us: int, ts_people: int,
              entry: bool = False) -> tuple[int, int, int]:
        """Decide every item within reach (ReferenceCore.decide) and summarize it (tracking.types.summarize); the
        verdicts are built only when asked for (verdicts), as most evaluations of a badge need only the summary."""
        result = self._judge_items(self.ctx, portal_index, person_index, badge_us, ts_people, entry)
        self._n_decided = result[0]
        return result

    def verdicts(self) -> list[ItemVerdict]:
        """The verdicts of the last judge."""
        n, item_ids, appr_ids = self._n_decided, self.snapshot.item_ids, self._appr_ids
        # one item (most decisions): its row as a tuple without a view of the rows between
        rows = [self.state.dec.item(0)] if n == 1 else self.state.dec[:n].tolist() if n else []
        return [_verdict(ItemVerdict, (item_ids.item(i), reasons, None if a < 0 else appr_ids[a], (f & _NEW_USE) != 0,
                                       (f & _UNCERTAIN) != 0, since, (f & _RESTING) != 0))
                for i, reasons, a, f, since in rows]

    def _item_indices(self, item_ids: Sequence[int]) -> list[int]:
        ids = np.array(item_ids, np.int64)
        found = np.searchsorted(self.snapshot.item_ids, ids, sorter=self._id_order)
        idx = self._id_order[np.minimum(found, max(len(self._id_order) - 1, 0))] if len(self._id_order) else found
        if len(ids) and (len(self._id_order) == 0 or (self.snapshot.item_ids[idx] != ids).any()):
            raise KeyError(f"items not in the register: {sorted(set(item_ids) - set(self.snapshot.item_ids.tolist()))}")
        return idx.tolist()

    def commit_allow(self, item_ids: Sequence[int], approval_ids: Sequence[int | None], portal_index: int,
                     allow_us: int) -> None:
        """The items leave through the portal; an approval with a destination takes them into custody."""
        st, target = self.state, self.snapshot.appr_row_target
        allow_portal, allow_at = st.allow_portal, st.allow_us
        for i, approval_id in zip(self._item_indices(item_ids), approval_ids, strict=True):
            allow_portal[i] = portal_index
            allow_at[i] = allow_us
            if approval_id is not None:
                a = self._approval_pos[approval_id]
                if target[a] >= 0:
                    st.custody[i] = a

    def commit_decided(self, portal_index: int, allow_us: int) -> None:
        """commit_allow of every item of the last judge, with the approval it chose: the allow of that decision."""
        self._commit_decided(self.ctx, self._n_decided, portal_index, allow_us)

    def portal_new(self, portal_index: int) -> int:
        """When a tag last newly appeared at the portal (opened a pass there)."""
        return self.state.portal_new.item(portal_index)  # a Python int, without a numpy scalar between

    def portal_changed(self, portal_index: int) -> int:
        """When a read at the portal last opened a pass or made an item's presence clear."""
        return self.state.portal_change.item(portal_index)

    def _approval_index(self, approval_id: int) -> int:
        return self._approval_pos[approval_id]

    def consume(self, approval_id: int, uses: int = 1) -> None:
        a = self._approval_index(approval_id)
        self.state.appr_uses[a] = max(0, int(self.state.appr_uses[a]) - uses)

    def uses_left(self, approval_id: int) -> int:
        return int(self.state.appr_uses[self._approval_index(approval_id)])

    def venue_of(self, item_id: int) -> int | None:
        v = int(self.state.venue[self._item_indices([item_id])[0]])
        return None if v < 0 else int(self.snapshot.venue_ids[v])

    def sweep(self, venue_id: int, epcs: list[str]) -> tuple[list[int], list[int], list[str], list[int]]:
        """(missing, registered elsewhere, unregistered EPCs, destroyed seen) for a venue sweep."""
        from tracking.epc import encode_epcs

        s = self.snapshot
        words, bits = encode_epcs([e.upper() for e in epcs])
        found = k.sweep_seen(self.ctx, words, bits)
        v = int(np.nonzero(s.venue_ids == venue_id)[0][0])
        seen = np.zeros(s.n_items, np.bool_)
        seen[found[found >= 0]] = True
        destroyed = s.item_status == STATUS_CODE["destroyed"]
        here = self.state.venue == v
        unregistered = sorted({epcs[r].upper() for r in np.nonzero(found < 0)[0]})
        return (
            sorted(s.item_ids[here & ~seen & ~destroyed].tolist()),
            sorted(s.item_ids[seen & ~here & ~destroyed].tolist()),
            unregistered,
            sorted(s.item_ids[seen & destroyed].tolist()),
        )

"""Numba core: per-item state in arrays, the same interface and semantics as ReferenceCore.

Public methods validate nothing (the engine does) but own the conversion between register ids and
array indices and the draining of the kernels' bounded output buffers.
"""

from __future__ import annotations

import numpy as np

from tracking import kernels as k
from tracking.codes import STATUS_CODE
from tracking.model import EngineConfig
from tracking.results import Movement
from tracking.snapshot import Snapshot
from tracking.types import CoreEvents, ItemVerdict, ValidReads

_BUFFER = 65_536
_DIRECTION = ("entry", "exit")  # by KOut.mov_exit


def _ksnap(s: Snapshot) -> k.KSnap:
    return k.KSnap(
        s.item_level, s.item_status, s.item_tid, s.scope_ptr, s.scope_ref, s.epc_ptr, s.epc_words,
        s.epc_bits, s.table, s.venue_ceiling, s.venue_ts, s.portal_inside, s.portal_outside,
        s.portal_border, s.portal_xy, s.person_clearance, s.pgroup_ptr, s.pgroup_idx, len(s.person_ids),
        s.appr_kind, s.appr_from, s.appr_until, s.appr_portal, s.appr_dest, s.appr_ref_ptr, s.appr_ref,
        s.item_appr_ptr, s.item_appr,
    )


def _fresh_state(s: Snapshot) -> k.KState:
    n = s.n_items
    return k.KState(
        pass_portal=np.full(n, -1, dtype=np.int32),
        pass_first=np.zeros(n, dtype=np.int64),
        pass_last=np.zeros(n, dtype=np.int64),
        pass_reads=np.zeros(n, dtype=np.int16),
        pass_flags=np.zeros(n, dtype=np.uint8),
        venue=s.item_venue.copy(),
        allow_portal=np.full(n, -1, dtype=np.int32),
        allow_us=np.full(n, -1, dtype=np.int64),
        open_items=np.zeros(n, dtype=np.int32),
        n_open=np.zeros(1, dtype=np.int64),
        appr_uses=s.appr_uses.copy(),
    )


def _out_buffers(size: int) -> k.KOut:
    return k.KOut(
        np.zeros(size, np.int32), np.zeros(size, np.int32), np.zeros(size, np.bool_), np.zeros(size, np.int64),
        np.zeros(size, np.int32), np.zeros(size, np.int32),
        np.zeros(size, np.int8), np.zeros(size, np.int64), np.zeros(size, np.int32), np.zeros(size, np.int32),
        np.zeros(size, np.int8), np.zeros(size, np.int64), np.zeros(3, np.int64),
    )


class NumbaCore:
    """Array state + Numba kernels; see tracking.reference for the rules."""

    def __init__(self, snapshot: Snapshot, config: EngineConfig) -> None:
        self.config = config
        self.kcfg = k.KConfig(config.settle_us, config.association_us, config.min_reads,
                              float(config.max_speed_m_per_s))
        self.out = _out_buffers(_BUFFER)
        self._install(snapshot, _fresh_state(snapshot))

    def _install(self, snapshot: Snapshot, state: k.KState) -> None:
        self.snapshot = snapshot
        self.ksnap = _ksnap(snapshot)
        self.state = state
        self.ctx = k.make_ctx(self.ksnap, state, self.kcfg, self.out)
        # venue index -> register id; index -1 (the outside of the unit) -> None
        self._venue_id_or_none = (*snapshot.venue_ids.tolist(), None)
        self.decision_items = np.zeros(max(snapshot.n_items, 1), np.int32)
        self.decision_reasons = np.zeros(max(snapshot.n_items, 1), np.int64)
        self.decision_approvals = np.zeros(max(snapshot.n_items, 1), np.int32)
        self._id_order = np.argsort(snapshot.item_ids)
        # a lower bound on the last read of every open pass: no sweep is needed before it expires
        self._oldest_last = -(2**62)
        self._approval_pos = {int(a): i for i, a in enumerate(snapshot.appr_ids)}

    def state_bytes(self) -> int:
        return sum(a.nbytes for a in self.state if isinstance(a, np.ndarray))

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
        pass_ok = portal_map[old.pass_portal[src]] >= 0
        s2, d2 = src[pass_ok], dst[pass_ok]
        new.pass_portal[d2] = portal_map[old.pass_portal[s2]]
        new.pass_first[d2] = old.pass_first[s2]
        new.pass_last[d2] = old.pass_last[s2]
        new.pass_reads[d2] = old.pass_reads[s2]
        new.pass_flags[d2] = old.pass_flags[s2] & ~np.uint8(k.F_LISTED)
        allow_ok = portal_map[old.allow_portal[src]] >= 0
        s3, d3 = src[allow_ok], dst[allow_ok]
        new.allow_portal[d3] = portal_map[old.allow_portal[s3]]
        new.allow_us[d3] = old.allow_us[s3]
        listed = np.nonzero(new.pass_flags & k.F_OPEN)[0]
        new.open_items[: len(listed)] = listed
        new.n_open[0] = len(listed)
        new.pass_flags[listed] |= np.uint8(k.F_LISTED)
        self._install(snapshot, new)

    def _drain(self, events: CoreEvents) -> None:
        out, s = self.out, self.snapshot
        n_mov, n_al, n_unk = out.counts.tolist()
        if not (n_mov or n_al or n_unk):
            return
        if n_mov:
            venue = self._venue_id_or_none.__getitem__
            events.movements.extend(map(
                Movement, s.item_ids[out.mov_item[:n_mov]].tolist(), s.portal_ids[out.mov_portal[:n_mov]].tolist(),
                map(_DIRECTION.__getitem__, out.mov_exit[:n_mov].tolist()), out.mov_time[:n_mov].tolist(),
                map(venue, out.mov_from[:n_mov].tolist()), map(venue, out.mov_to[:n_mov].tolist()),
            ))
        if n_al:
            events.alarms.extend(zip(out.al_kind[:n_al].tolist(), out.al_time[:n_al].tolist(),
                                     s.portal_ids[out.al_portal[:n_al]].tolist(),
                                     s.item_ids[out.al_item[:n_al]].tolist(), out.al_detail[:n_al].tolist(),
                                     strict=True))
        events.unknown_rows.extend(out.unknown_rows[:n_unk].tolist())
        out.counts[:] = 0

    def apply_reads(self, reads: ValidReads) -> CoreEvents:
        events = CoreEvents()
        n = len(reads.time_us)
        if n:
            self._oldest_last = min(self._oldest_last, int(reads.time_us[0]))
        row = 0
        while row < n:
            row = k.apply_reads(self.ctx, row, reads.time_us, reads.portal, reads.side, reads.epc_words,
                                reads.epc_bits, reads.tid_hash)
            self._drain(events)
        return events

    def settle_due(self, horizon_us: int) -> CoreEvents:
        events = CoreEvents()
        if horizon_us - self.config.settle_us <= self._oldest_last:
            return events
        done = False
        while not done:
            done, self._oldest_last = k.settle_due(self.ctx, horizon_us)
            self._drain(events)
        return events

    def decide(self, portal_index: int, person_index: int, badge_us: int, decide_us: int,
               ts_badges: int) -> list[ItemVerdict]:
        n = k.decide_items(self.ctx, portal_index, person_index, badge_us, decide_us, ts_badges,
                           self.decision_items, self.decision_reasons, self.decision_approvals)
        s = self.snapshot
        return [
            ItemVerdict(int(s.item_ids[i]), int(r), None if a < 0 else int(s.appr_ids[a]))
            for i, r, a in zip(self.decision_items[:n], self.decision_reasons[:n], self.decision_approvals[:n],
                               strict=True)
        ]

    def _item_indices(self, item_ids: list[int]) -> np.ndarray:
        found = np.searchsorted(self.snapshot.item_ids, np.array(item_ids, np.int64), sorter=self._id_order)
        return self._id_order[found]

    def commit_allow(self, item_ids: list[int], portal_index: int, decide_us: int) -> None:
        idx = self._item_indices(item_ids)
        self.state.allow_portal[idx] = portal_index
        self.state.allow_us[idx] = decide_us

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

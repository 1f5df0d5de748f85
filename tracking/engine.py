"""The streaming tracking engine: events in, movements / exit decisions / alarms out.

How a portal controller uses it::

    engine = Engine(build_snapshot(site), EngineConfig())
    engine.on_badge(BadgePresentation(portal_id, badge, t_us))    # as events arrive
    engine.on_read(TagRead(...)); engine.on_camera(CameraCount(...))
    out = engine.advance(now_us)                                    # every ~20 ms
    for d in out.decisions: pulse the door only if d.allow

Time model. Events are buffered; ``advance(now_us)`` processes, in timestamp order, everything up to
the horizon ``now_us - reorder_us`` (the reorder buffer absorbs slightly out-of-order devices).
At equal timestamps reads come first, then badge/camera/door/fire inputs, then decisions. A badge
presented at ``t`` is decided at ``t + settle_us`` (rule 8: wait for the reads to settle) from the
state at that moment, so the earliest decision for a badge comes from the first ``advance`` with
``now_us >= t + settle_us + reorder_us``. Results depend only on event timestamps and arrival order,
never on how the stream was chopped into calls, as long as devices are late by at most reorder_us.
Events older than the processed horizon are late: a late read is reported as a ``late_read`` alarm
(never silently dropped, never tracked out of order); a late badge gets a refusal ('stale_badge').

Two-person rule: each badge gets its own decision. The first of two top-secret carriers is refused
with 'two_person_rule' alone (the door stays shut); the second badge, inside two_person_us, gets the
allow. A controller may show a 'two_person_rule'-only refusal as "waiting for the second badge".

Approvals: an allow consumes one use of each approval in ``Decision.approval_ids`` (the register
should record it from the decision); ``consume`` uses one up for actions decided elsewhere.
``swap_snapshot`` takes effect for every event not yet processed: open passes, clone history and
allows carry over by register id; item venues and approval uses come from the new register.

Latency path: feed the badge with ``on_badge`` and call ``advance(now)`` as soon as
``now >= t + settle_us + reorder_us``; that call returns the decision.

``process(batch)`` is the bulk path: ingest a columnar ReadBatch and advance to its last timestamp.
Both backends ('numba', 'reference') share this module; they differ only in the core.
"""

from __future__ import annotations

import gc
import heapq
import itertools
from collections import defaultdict, deque
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

import numpy as np

from tracking import kernels as k
from tracking.epc import words_to_epc
from tracking.events import BadgePresentation, CameraCount, DoorInput, FireAlarmInput, ReadBatch, TagRead
from tracking.inventory import reconcile
from tracking.model import TOP_SECRET, EngineConfig
from tracking.numba_core import NumbaCore
from tracking.reference import ReferenceCore
from tracking.results import (
    A_CLONE,
    ALARM_KINDS,
    CLONE_DETAIL,
    R_PERSON_INACTIVE,
    R_STALE_BADGE,
    R_TAILGATING,
    R_UNKNOWN_BADGE,
    R_UNKNOWN_PORTAL,
    Alarm,
    Decision,
    InventoryResult,
    Movement,
    Output,
)
from tracking.snapshot import Snapshot
from tracking.types import CoreEvents, ItemVerdict, ValidReads

Backend = Literal["numba", "reference"]
_DQ_NAMES = {k.READ_BAD_RSSI: "bad_rssi", k.READ_UNKNOWN_ANTENNA: "unknown_reader_or_antenna",
             k.READ_BAD_EPC: "bad_epc_length"}
# a flood of distinct foreign EPCs must not grow memory without bound
_MAX_REMEMBERED = 100_000
# control-point classes at equal timestamps: inputs, then decisions, then return deadlines
_INPUT, _DECIDE, _OVERDUE = 0, 1, 2


@dataclass(frozen=True)
class _PendingDecision:
    badge: BadgePresentation
    portal_index: int
    person_index: int


class Engine:
    """Holds the tracking state between calls; see the module docstring for the time model."""

    def __init__(self, snapshot: Snapshot, config: EngineConfig | None = None,
                 backend: Backend = "numba") -> None:
        self.config = config or EngineConfig()
        if backend not in ("numba", "reference"):
            raise ValueError(f"unknown backend {backend!r}")
        self.backend = backend
        self.core: NumbaCore | ReferenceCore = (
            NumbaCore(snapshot, self.config) if backend == "numba" else ReferenceCore(snapshot, self.config)
        )
        self._use(snapshot)
        self.horizon_us = -(2**62)
        self.stats: dict[str, int] = defaultdict(int)
        self._seq = itertools.count()
        self._batches: list[ReadBatch] = []
        self._single_reads: list[TagRead] = []
        self._inputs: list[tuple[int, int, int, object]] = []  # heap of (time, class, seq, payload)
        self._badges: dict[int, deque[tuple[int, int, bool]]] = defaultdict(deque)  # portal -> (t, person, stale)
        self._camera: dict[int, deque[tuple[int, int]]] = defaultdict(deque)  # portal -> (t, count)
        self._last_allow: dict[int, int] = {}  # portal id -> time of the last allow
        self._fire_since: int | None = None
        self._fire_periods: list[tuple[int, int]] = []
        self._due: dict[int, tuple[int, int]] = {}  # item id -> (return_by_us, approval id)
        self._unregistered_last: dict[str, int] = {}
        self._dq_last: dict[tuple[str, str], int] = {}
        self._out = Output([], [], [])

    # --- ingest -------------------------------------------------------------------------------
    def on_read(self, read: TagRead) -> None:
        self._single_reads.append(read)

    def ingest(self, batch: ReadBatch) -> None:
        """Queue a columnar batch of reads (reader codes of the current snapshot)."""
        if len(batch):
            self._flush_single_reads()
            self._batches.append(batch)

    def on_badge(self, badge: BadgePresentation) -> None:
        heapq.heappush(self._inputs, (badge.time_us, _INPUT, next(self._seq), badge))

    def on_camera(self, count: CameraCount) -> None:
        heapq.heappush(self._inputs, (count.time_us, _INPUT, next(self._seq), count))

    def on_door(self, door: DoorInput) -> None:
        heapq.heappush(self._inputs, (door.time_us, _INPUT, next(self._seq), door))

    def on_fire_alarm(self, fire: FireAlarmInput) -> None:
        heapq.heappush(self._inputs, (fire.time_us, _INPUT, next(self._seq), fire))

    def _flush_single_reads(self) -> None:
        if self._single_reads:
            self._batches.append(ReadBatch.from_reads(self._single_reads, self.snapshot.reader_code))
            self._single_reads = []

    # --- register -----------------------------------------------------------------------------
    def swap_snapshot(self, snapshot: Snapshot) -> None:
        """Use a new register from the next processed event on (queued reads are re-coded to it)."""
        self._flush_single_reads()
        old_names = {code: name for name, code in self.snapshot.reader_code.items()}
        table = np.array([snapshot.reader_code.get(old_names[c], -1) for c in range(len(old_names))] + [-1],
                         np.int32)
        self._batches = [_with_readers(b, table) for b in self._batches]
        self.core.swap(snapshot)
        self._use(snapshot)

    def _use(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._portal_index = {int(p): i for i, p in enumerate(snapshot.portal_ids)}
        self._approvals = {a.approval_id: a for a in snapshot.site.approvals}

    def consume(self, approval_id: int, uses: int = 1) -> None:
        """Use up `uses` of an approval decided outside the engine (e.g. a guard override)."""
        self.core.consume(approval_id, uses)

    def uses_left(self, approval_id: int) -> int:
        return self.core.uses_left(approval_id)

    def venue_of(self, item_id: int) -> int | None:
        """The venue the engine believes the item is in (None = outside the unit)."""
        return self.core.venue_of(item_id)

    def reconcile(self, venue_id: int, epcs: list[str]) -> InventoryResult:
        """Inventory of a venue sweep against the register and the tracked venues."""
        return reconcile(self.core, venue_id, epcs)

    # --- processing ---------------------------------------------------------------------------
    def process(self, batch: ReadBatch, now_us: int | None = None) -> Output:
        """Bulk path: queue the batch and advance to now_us (default: its last timestamp)."""
        self.ingest(batch)
        if now_us is None:
            now_us = int(batch.time_us.max()) if len(batch) else self.horizon_us + self.config.reorder_us
        return self.advance(now_us)

    def advance(self, now_us: int) -> Output:
        """Settle everything due by now_us - reorder_us and return it (see module docstring)."""
        # The cyclic GC is paused meanwhile: an advance allocates only acyclic objects (results,
        # tuples), and on a bulk batch the collections its allocations trigger, each scanning the
        # whole heap, cost as much as building the results. Collection resumes at the next allocation.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._advance(now_us)
        finally:
            if enabled:
                gc.enable()

    def _advance(self, now_us: int) -> Output:
        self._out = Output([], [], [])
        horizon = max(now_us - self.config.reorder_us, self.horizon_us)
        self._flush_single_reads()
        reads = self._take_reads(horizon)
        row = 0
        while self._inputs and self._inputs[0][0] <= horizon:
            t, cls, _, payload = heapq.heappop(self._inputs)
            if cls != _INPUT or isinstance(payload, FireAlarmInput):
                # badge, camera and door inputs neither read nor change the item state, so reads
                # need applying only up to decisions, deadlines and fire inputs (movements check it)
                end = max(row, int(reads.time_us.searchsorted(t, side="right")))
                self._apply(reads, row, end)
                row = end
            if cls == _DECIDE:
                assert isinstance(payload, _PendingDecision)
                self._decide(payload, t)
            elif cls == _OVERDUE:
                assert isinstance(payload, tuple)
                self._overdue(payload, t, reads)
            else:
                self._input(payload, late=t <= self.horizon_us)
        self._apply(reads, row, len(reads.time_us))
        self._core_events(self.core.settle_due(horizon), reads)
        self.horizon_us = horizon
        out = self._out
        out.movements.sort(key=attrgetter("time_us", "item_id", "portal_id"))
        out.decisions.sort(key=lambda d: (d.time_us, d.portal_id, d.badge))
        out.alarms.sort(key=lambda a: (a.time_us, a.kind, a.portal_id or -1, a.item_id or -1, a.detail,
                                       a.reader or "", a.epc or ""))
        return out

    def _take_reads(self, horizon: int) -> ValidReads:
        """Split queued reads into due (time-ordered, valid) and still pending; report bad/late ones."""
        if not self._batches:
            return _empty_reads()
        batch = _concat(self._batches) if len(self._batches) > 1 else self._batches[0]
        self._batches = []
        if not k.is_sorted(batch.time_us):
            batch = batch.take(np.argsort(batch.time_us, kind="stable"))
        cut = int(batch.time_us.searchsorted(horizon, side="right"))
        if cut < len(batch):
            self._batches = [batch.rows(cut, len(batch))]
            batch = batch.rows(0, cut)
        n = len(batch)
        portal = np.empty(n, np.int32)
        side = np.empty(n, np.int8)
        code = np.empty(n, np.int8)
        s = self.snapshot
        bad = k.validate_reads(s.ant_portal, s.ant_side, batch.reader.astype(np.int32, copy=False),
                               batch.antenna.astype(np.int32, copy=False), batch.epc_bits,
                               batch.rssi.astype(np.float64, copy=False), self.config.rssi_min_dbm,
                               self.config.rssi_max_dbm, portal, side, code)
        self.stats["reads"] += n
        if bad or (n and batch.time_us[0] <= self.horizon_us):  # sorted: only the first can tell
            late = batch.time_us <= self.horizon_us
            self._report_bad(batch, code, late)
            keep = np.nonzero(((code == k.READ_OK) | (code == k.READ_BAD_RSSI)) & ~late)[0]
            batch, portal, side = batch.take(keep), portal[keep], side[keep]
        return ValidReads(batch.time_us, portal, side, batch.epc_words, batch.epc_bits, batch.tid_hash)

    def _report_bad(self, batch: ReadBatch, code: np.ndarray, late: np.ndarray) -> None:
        names = {c: n for n, c in self.snapshot.reader_code.items()}
        for r in np.nonzero((code != k.READ_OK) | late)[0]:
            t, reader = int(batch.time_us[r]), names.get(int(batch.reader[r]), "unknown")
            epc = words_to_epc(batch.epc_words[r], int(batch.epc_bits[r])) if batch.epc_bits[r] else None
            if late[r]:
                self.stats["late_read"] += 1
                self._alarm("late_read", t, None, None, f"read older than the horizon by "
                            f"{self.horizon_us - t} us", reader, epc)
                continue
            if code[r] == k.READ_IGNORED:
                self.stats["ignored_antenna"] += 1
                continue
            kind = _DQ_NAMES[int(code[r])]
            self.stats[kind] += 1
            last = self._dq_last.get((kind, reader))
            if last is None or t - last >= self.config.data_quality_repeat_us:
                self._dq_last[(kind, reader)] = t
                self._alarm("data_quality", t, None, None, kind, reader, epc)

    def _apply(self, reads: ValidReads, start: int, end: int) -> None:
        if end > start:
            part = reads if start == 0 and end == len(reads.time_us) else reads.rows(start, end)
            self._core_events(self.core.apply_reads(part), part)

    def _core_events(self, events: CoreEvents, reads: ValidReads) -> None:
        self._out.movements.extend(events.movements)
        if self._fire_periods or self._fire_since is not None or self._due:
            for m in events.movements:
                self._after_movement(m)
        self._out.alarms.extend(
            Alarm(ALARM_KINDS[kind], t, portal_id, item_id, CLONE_DETAIL.get(detail, "") if kind == A_CLONE else "")
            for kind, t, portal_id, item_id, detail in events.alarms
        )
        if events.unknown_rows:
            self._unregistered(events.unknown_rows, reads)

    def _unregistered(self, rows: list[int], reads: ValidReads) -> None:
        """One unregistered_tag alarm per EPC per unregistered_repeat_us."""
        times, bits = reads.time_us[rows].tolist(), reads.epc_bits[rows].tolist()
        words, portals = reads.epc_words[rows].tolist(), self.snapshot.portal_ids[reads.portal[rows]].tolist()
        self.stats["unregistered_read"] += len(rows)
        for t, row_bits, row_words, portal_id in zip(times, bits, words, portals, strict=True):
            epc = words_to_epc(row_words, row_bits)
            last = self._unregistered_last.get(epc)
            if last is None or t - last >= self.config.unregistered_repeat_us:
                if len(self._unregistered_last) >= _MAX_REMEMBERED:
                    self._unregistered_last = _recent(self._unregistered_last, t - self.config.unregistered_repeat_us)
                self._unregistered_last[epc] = t
                self._alarm("unregistered_tag", t, portal_id, None, "EPC not in the register", epc=epc)

    def _after_movement(self, m: Movement) -> None:
        fire = self._fire_since is not None and m.time_us >= self._fire_since
        if fire or any(a <= m.time_us <= b for a, b in self._fire_periods):
            self._alarm("emergency_release_movement", m.time_us, m.portal_id, m.item_id, m.direction)
        due = self._due.get(m.item_id)
        if m.direction == "entry" and due is not None and m.time_us <= due[0]:
            del self._due[m.item_id]

    def _alarm(self, kind: str, t: int, portal_id: int | None, item_id: int | None, detail: str = "",
               reader: str | None = None, epc: str | None = None) -> None:
        self._out.alarms.append(Alarm(kind, t, portal_id, item_id, detail, reader, epc))

    # --- portal inputs and decisions ----------------------------------------------------------
    def _input(self, event: object, late: bool) -> None:
        if isinstance(event, BadgePresentation):
            self._badge(event, late)
        elif isinstance(event, CameraCount):
            counts = self._camera[event.portal_id]
            counts.append((event.time_us, event.count))
            while counts[0][0] < event.time_us - self.config.two_person_us - self.config.settle_us:
                counts.popleft()
        elif isinstance(event, DoorInput):
            last = self._last_allow.get(event.portal_id)
            granted = last is not None and event.time_us - last <= self.config.door_grant_us
            if event.is_open and not granted and self._fire_since is None:
                self._alarm("door_forced", event.time_us, event.portal_id, None, "door opened without an allow")
        elif isinstance(event, FireAlarmInput):
            if event.active and self._fire_since is None:
                self._fire_since = event.time_us
            elif not event.active and self._fire_since is not None:
                self._fire_periods.append((self._fire_since, event.time_us))
                self._fire_since = None

    def _badge(self, badge: BadgePresentation, late: bool) -> None:
        portal_index = self._portal_index.get(badge.portal_id, -1)
        person = self.snapshot.badge_person.get(badge.badge, -1)
        stale = badge.stale or late
        if portal_index < 0 or late:
            # no place in the timeline (late) or unknown portal: refuse at once, never open
            reason = (R_STALE_BADGE if stale else 0) | (R_UNKNOWN_PORTAL if portal_index < 0 else 0)
            self.stats["refused_unplaceable_badge"] += 1
            self._out.decisions.append(self._decision(badge, person, (), False, reason, ()))
            return
        self._badges[badge.portal_id].append((badge.time_us, person, stale))
        pending = _PendingDecision(badge, portal_index, person)
        heapq.heappush(self._inputs, (badge.time_us + self.config.settle_us, _DECIDE, next(self._seq), pending))

    def _decision(self, badge: BadgePresentation, person: int, items: tuple[int, ...], allow: bool,
                  reasons: int, approvals: tuple[int, ...],
                  item_reasons: tuple[tuple[int, int], ...] = ()) -> Decision:
        person_id = int(self.snapshot.person_ids[person]) if person >= 0 else None
        return Decision(badge.portal_id, badge.time_us, badge.badge, person_id, items, allow, reasons,
                        approvals, item_reasons)

    def _decide(self, pending: _PendingDecision, decide_us: int) -> None:
        badge, person, s = pending.badge, pending.person_index, self.snapshot
        window_start = decide_us - self.config.two_person_us
        history = self._badges[badge.portal_id]
        while history and history[0][0] < window_start - self.config.settle_us:
            history.popleft()
        present = {p for t, p, stale in history if t >= window_start and p >= 0 and not stale
                   and s.person_active[p]}
        ts_badges = sum(1 for p in present if s.person_clearance[p] >= TOP_SECRET)
        reasons = 0
        if badge.stale:
            reasons |= R_STALE_BADGE
        if person < 0:
            reasons |= R_UNKNOWN_BADGE
        elif not s.person_active[person]:
            reasons |= R_PERSON_INACTIVE
        counts = [c for t, c in self._camera[badge.portal_id] if window_start <= t <= decide_us]
        if counts and counts[-1] > len(present):
            reasons |= R_TAILGATING
        verdicts = sorted(self.core.decide(pending.portal_index, person, badge.time_us, decide_us, ts_badges),
                          key=lambda v: v.item_id)
        for v in verdicts:
            reasons |= v.reasons
        approvals = tuple(sorted({v.approval_id for v in verdicts if v.approval_id is not None}))
        items = tuple(v.item_id for v in verdicts)
        allow = reasons == 0
        if allow:
            for approval_id in approvals:
                self.core.consume(approval_id)
            self.core.commit_allow(list(items), pending.portal_index, decide_us)
            self._last_allow[badge.portal_id] = decide_us
            self._track_returns(verdicts)
        item_reasons = tuple((v.item_id, v.reasons) for v in verdicts if v.reasons)
        self._out.decisions.append(self._decision(badge, person, items, allow, reasons, approvals, item_reasons))

    def _track_returns(self, verdicts: list[ItemVerdict]) -> None:
        for v in verdicts:
            approval = self._approvals.get(v.approval_id) if v.approval_id is not None else None
            if approval is not None and approval.return_by_us is not None:
                entry = (v.item_id, approval.return_by_us, approval.approval_id)
                self._due[v.item_id] = entry[1:]
                # checked one settle period after the deadline, so a return just before it has settled
                deadline = approval.return_by_us + self.config.settle_us + 1
                heapq.heappush(self._inputs, (deadline, _OVERDUE, next(self._seq), entry))

    def _overdue(self, entry: tuple[int, int, int], deadline: int, reads: ValidReads) -> None:
        item_id, due, approval_id = entry
        self._core_events(self.core.settle_due(deadline), reads)  # a return before `due` is now known
        if self._due.get(item_id) == (due, approval_id):
            del self._due[item_id]
            self._alarm("overdue", due, None, item_id, f"not back by the return time of approval {approval_id}")


def _recent(last_seen: dict[str, int], since_us: int) -> dict[str, int]:
    """The entries seen at or after since_us (older ones could alarm again anyway)."""
    return {key: t for key, t in last_seen.items() if t >= since_us}


def _empty_reads() -> ValidReads:
    return ValidReads(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int8),
                      np.zeros((0, 1), np.uint64), np.zeros(0, np.int16), np.zeros(0, np.uint64))


def _concat(batches: list[ReadBatch]) -> ReadBatch:
    width = max(b.epc_words.shape[1] for b in batches)
    words = np.concatenate([np.pad(b.epc_words, ((0, 0), (0, width - b.epc_words.shape[1]))) for b in batches])
    return ReadBatch(
        np.concatenate([b.time_us for b in batches]), np.concatenate([b.reader for b in batches]),
        np.concatenate([b.antenna for b in batches]), words, np.concatenate([b.epc_bits for b in batches]),
        np.concatenate([b.rssi for b in batches]), np.concatenate([b.tid_hash for b in batches]),
    )


def _with_readers(batch: ReadBatch, table: np.ndarray) -> ReadBatch:
    """The batch with reader codes translated through `table` (last entry: unknown)."""
    codes = batch.reader.astype(np.int64)
    codes = np.where((codes >= 0) & (codes < len(table) - 1), codes, len(table) - 1)
    return ReadBatch(batch.time_us, table[codes], batch.antenna, batch.epc_words, batch.epc_bits, batch.rssi,
                     batch.tid_hash)

"""The streaming tracking engine: events in, movements / exit decisions / alarms out.

How a portal controller uses it::

    engine = Engine(build_snapshot(site), EngineConfig())
    engine.on_badge(BadgePresentation(portal_id, badge, t_us))    # as events arrive
    engine.on_read(TagRead(...)); engine.on_round(InventoryRound(reader, antenna, t_us))
    engine.on_camera(...); engine.on_door(...); engine.on_reader_health(ReaderHealth(...))
    engine.on_override(OverrideRequest(portal_id, guard_person_id, t_us, reason))
    out = engine.advance(now_us)                                    # every tick, and after a round end
    for d in out.decisions: pulse the door only if d.allow

Time model. Events are buffered; ``advance(now_us)`` processes, in timestamp order, everything up to
the horizon ``now_us - reorder_us`` (the reorder buffer absorbs slightly out-of-order devices).
At equal timestamps reads come first, then inputs (badge, round end, camera, door, fire, reader
health, override), then decision checks. Results depend only on event timestamps and arrival order,
never on how the stream was chopped into calls, as long as devices are late by at most reorder_us.
Events older than the processed horizon are late: a late read is reported as a ``late_read`` alarm
(once per reader and EPC per data_quality_repeat_us of read time: a tag answering every round must
not flood the guards while a reader lags) and, like a read its reader flagged stale, is evidence
for nothing (no allow, no movement) but raises, as of its own time and marked ``late``, every alarm
that does not need the door (destroyed item seen, unregistered tag, possible clone). A badge held up
in the host by at most late_badge_grace_us is decided from the moment it arrives (its reach still
counts from its own time); a later one, or one its panel flagged stale, is refused ('stale_badge').
Late events are handled in arrival order, so only they depend on how the stream was chopped.

reorder_us (default 20 ms) is part of every decision's latency: a decision at t comes out of the
first advance with now >= t + reorder_us. It must cover how late a read can reach the engine
(readers reporting each tag at once, e.g. LLRP ROReportSpec N=1, on a LAN take a few ms); reads
later than that are only alarms, so a site that sees ``late_read`` notes should raise it.

Deciding an exit (domain-rules.md 4.2, 4.8; sites.md "Deciding fast at a portal"). A badge arms a
decision for its portal. It is examined at the badge, at every camera count, reader health change
and badge at that portal and at the cap, over every item within reach of the door (see
tracking.reference); between those, a read at the portal that brings a new tag or makes a tag
clearly present is a reason to look again (anything else a read changes can only make an allow
possible), and so are a round end of its antennas and the floor, once whole rounds are complete:
- refuse at once on a person-level reason (stale, unknown or inactive badge, tailgating, readers
  offline) or on an item that would be refused and whose presence is clear;
- hold while an item that would be refused is uncertain (weak or one-sided reads), or its only
  reason is the two-person rule (a second cleared person may still badge);
- allow early only after decision_floor_us and once every non-ignored antenna of the portal has
  completed rounds_for_allow whole inventory rounds (a round is whole when the previous round end on
  that antenna is at or after the later of the badge and the last tag newly seen at the portal);
- at the cap (badge + settle_us) decide from what is known: uncertain items that would be refused
  refuse with 'uncertain_reads', two-person waits refuse with 'two_person_rule', and a portal whose
  readers report round ends but have not completed one whole round on every antenna since the badge
  (reads lagging) refuses with 'readers_behind'; once one of a portal's readers has reported a round
  end (on time or late), an online antenna of the portal that never reported one counts as behind.
  A portal whose readers report no round ends is therefore always decided at the cap.
What the early allow assumes of the reader: every tag present in an antenna's field answers in every
round of that antenna (Impinj dual-target search or a Gen2 Select at badge time, not single-target
sessions 2/3, where a tag read once stays silent), so k clean rounds miss a present tag with
probability p^k for a per-round miss probability p (measure p on site). The door keeps being watched
after the allow: an item that crosses without being covered by it raises ``unauthorized_exit``.

Two-person rule: each badge gets its own decision; people are counted, not badges. A first top-
secret carrier's decision holds until a second cleared person badges (then both allow; the approval
is used once, the companion's exit covered by the first allow) or refuses at the cap.

Approvals: an allow consumes one use of each approval in ``Decision.approval_ids`` (the register
should record it from the decision); an approval covering an item on its route without a new use is
in ``route_approval_ids``. ``consume`` uses one up for actions decided elsewhere. Overrides
(``on_override``) apply only to the latest block at the portal, at most override_max_age_us old,
never to a top-secret item at a border portal, never by the blocked person or one who badged at that
door with them (a member of the exiting party); a valid one is a
Decision with override_by set, allow True and the overridden reasons, it consumes nothing and covers
the blocked items' crossing; an invalid one is a Decision with allow False and an override_* reason.

Restarts: return deadlines come from the register (SiteModel.pending_returns) as well as from this
engine's allows. ``swap_snapshot`` takes effect for every event not yet processed: open passes,
custody, clone history, allows and armed decisions carry over by register id; item venues and
approval uses come from the new register, and the register's return deadlines are added for items
this engine also believes are out of the unit (it may have seen one come back before the register).

People (tracking.presence): a badge is an exit (from the portal's inside venue) or an entry (into it,
BadgePresentation.direction). An entry opens the same door, so the items inside within reach are judged
for it as for an exit (they could leave through it); it spends and commits nothing. Allowed badges, overrides and
badges while the doors are released move their person; ``Output.presence`` reports each move and
``Output.brought`` the items that crossed in right after a granted entry. The people rules (anti-passback,
escorts, meeting participants) add their reasons to the badge's decision; ``on_forgive`` clears one
person's anti-passback state. Places start from the register (SiteModel.presence) and carry over swaps.

Latency path: feed events with ``on_*`` and call ``advance(now)``; a decision comes out of the first
call whose horizon reaches the moment it was decided. ``process(batch)`` is the bulk path: ingest a
columnar ReadBatch and advance to its last timestamp. Both backends ('numba', 'reference') share this
module; they differ only in the core.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import itertools
from collections import defaultdict, deque
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal, NamedTuple

import numpy as np

from tracking import kernels as k
from tracking.collect import Collector, build_movements
from tracking.epc import words_to_epc, words_to_epcs
from tracking.events import (
    BadgePresentation,
    CameraCount,
    DoorInput,
    FireAlarmInput,
    ForgiveRequest,
    InventoryRound,
    OverrideRequest,
    ReadBatch,
    ReaderHealth,
    TagRead,
)
from tracking.inventory import reconcile
from tracking.model import TOP_SECRET, EngineConfig
from tracking.numba_core import NumbaCore
from tracking.presence import People
from tracking.reference import ReferenceCore
from tracking.results import (
    A_CLONE,
    ALARM_KINDS,
    CLONE_DETAIL,
    R_OVERRIDE_BORDER_TS,
    R_OVERRIDE_BY_BLOCKED,
    R_OVERRIDE_LATE,
    R_OVERRIDE_NO_BLOCK,
    R_OVERRIDE_TOO_OLD,
    R_OVERRIDE_UNKNOWN_GUARD,
    R_PERSON_INACTIVE,
    R_READERS_BEHIND,
    R_READERS_OFFLINE,
    R_SNAPSHOT_TOO_OLD,
    R_STALE_BADGE,
    R_TAILGATING,
    R_UNCERTAIN,
    R_UNKNOWN_BADGE,
    R_UNKNOWN_PORTAL,
    Decision,
    InventoryResult,
    ItemBrought,
    Movement,
    Output,
)
from tracking.snapshot import Snapshot
from tracking.types import J_APPROVAL, J_REASONS, J_REFUSE, NO_EVENTS, CoreEvents, ItemVerdict, ValidReads

Backend = Literal["numba", "reference"]
_DQ_NAMES = {k.READ_BAD_RSSI: "bad_rssi", k.READ_UNKNOWN_ANTENNA: "unknown_reader_or_antenna",
             k.READ_BAD_EPC: "bad_epc_length"}
# a flood of distinct foreign EPCs must not grow memory without bound
_MAX_REMEMBERED = 100_000
# control-point classes at equal timestamps: inputs, then decision checks, then return deadlines
_INPUT, _CHECK, _OVERDUE = 0, 1, 2
_KIND = {name: k for k, name in enumerate(ALARM_KINDS)}
_FEW = 32  # at most this many due reads in an advance: their times searched as a list
_new = tuple.__new__  # a named tuple from the tuple of all its fields, without its Python __new__ (latency path)
_DETAIL = {0: "", **CLONE_DETAIL}  # the reference core's detail codes (non-zero only for possible_clone)


@dataclass(slots=True)
class _Pending:
    """An armed exit decision: one badge presentation not yet decided."""

    badge: BadgePresentation
    seq: int
    done: bool = False


class _Held(NamedTuple):
    """Validated reads not due yet at the last advance, with their validation (Engine._validate); valid: the
    reads as a core applies them when none is bad (built as they come: an advance that only takes them, as the
    one with a badge often does, need not)."""

    batch: ReadBatch
    bad: int
    portal: np.ndarray
    side: np.ndarray
    code: np.ndarray
    valid: ValidReads | None


@dataclass(frozen=True)
class _LateBadge:
    """A badge that arrived after its moment was processed, re-queued at the first free moment."""

    badge: BadgePresentation


@dataclass(frozen=True)
class _EscortCheck:
    """Look again whether visitors in a venue have an escort (tracking.presence), one window after a move."""

    venue_id: int
    portal_id: int


class _Block(NamedTuple):
    """The latest refusal at a portal, as a guard may override it (a named tuple: one per refusal)."""

    decision: Decision
    top_secret_at_border: bool


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
        self.people = People(snapshot.site, self.config)
        self._use(snapshot)
        self.horizon_us = -(2**62)
        self.stats: dict[str, int] = defaultdict(int)
        # An edge whose register snapshot is older than its site's limit: no item may leave (people may).
        self.exits_restricted = False
        self._seq = itertools.count()
        self._batches: list[ReadBatch] = []
        self._held: _Held | None = None  # validated reads not due yet at the last advance (time-ordered)
        self._single_reads: list[TagRead] = []
        self._inputs: list[tuple[int, int, int, object]] = []  # heap of (time, class, seq, payload)
        # portal -> (t, badge, fresh, direction)
        self._badges: dict[int, deque[tuple[int, str, bool, str]]] = defaultdict(deque)
        self._entries: dict[int, tuple[int, int]] = {}  # portal id -> (time, person id) of its last granted entry
        self._passed: dict[int, deque[tuple[int, int]]] = defaultdict(deque)  # portal -> (t, person) badged through
        self._passed_keep_us = self.config.door_grant_us + self.config.two_person_us  # how long _passed keeps one
        self._camera: dict[int, deque[tuple[int, int]]] = defaultdict(deque)  # portal -> (t, count)
        self._armed: dict[int, list[_Pending]] = {}  # portal id -> undecided badges, in badge order
        # the armed portals once their badge was first looked at: the core stops applying reads at their changes
        self._watched: set[int] = set()
        self._rounds: dict[tuple[str, int], deque[int]] = {}  # (reader, antenna) -> last round ends
        self._round_readers: set[str] = set()  # readers that reported a round end, on time or late, since start
        self._offline: set[str] = set()  # readers reported offline
        self._blocks: dict[int, _Block] = {}  # portal id -> latest refusal there
        self._last_allow: dict[int, int] = {}  # portal id -> time of the last allow
        self._fire_since: int | None = None
        self._fire_periods: list[tuple[int, int]] = []
        self._due: dict[int, tuple[int, int]] = {}  # item id -> (return_by_us, approval id)
        self._unregistered_last: dict[str, int] = {}
        self._late_last: dict[tuple[int, int, int], int] = {}
        self._dq_last: dict[tuple[str, str], int] = {}
        self._out = Collector()
        self._reads = _EMPTY_READS
        self._row = 0
        self._times: list[int] | None = None  # the due reads' times during an advance, when they are few
        self._no_stale = np.zeros(1024, np.bool_)
        for due in snapshot.site.pending_returns:
            self._add_due(due.item_id, due.return_by_us, due.approval_id)

    # --- ingest -------------------------------------------------------------------------------
    def on_read(self, read: TagRead) -> None:
        self._single_reads.append(read)

    def ingest(self, batch: ReadBatch) -> None:
        """Queue a columnar batch of reads (reader codes of the current snapshot)."""
        if len(batch):
            self._flush_single_reads()
            self._batches.append(batch.in_kernel_types())  # what the cores are given (types.ValidReads)

    def on_badge(self, badge: BadgePresentation) -> None:
        heapq.heappush(self._inputs, (badge.time_us, _INPUT, next(self._seq), badge))  # _push_input, inline

    def on_camera(self, count: CameraCount) -> None:
        self._push_input(count.time_us, count)

    def on_door(self, door: DoorInput) -> None:
        self._push_input(door.time_us, door)

    def on_fire_alarm(self, fire: FireAlarmInput) -> None:
        self._push_input(fire.time_us, fire)

    def on_round(self, round_end: InventoryRound) -> None:
        """A reader finished an inventory round (what an early allow waits for)."""
        self._push_input(round_end.time_us, round_end)

    def on_reader_health(self, health: ReaderHealth) -> None:
        self._push_input(health.time_us, health)

    def on_forgive(self, request: ForgiveRequest) -> None:
        """A guard, authenticated outside the engine, forgives a person's anti-passback state."""
        self._push_input(request.time_us, request)

    def on_override(self, request: OverrideRequest) -> None:
        """A guard, authenticated outside the engine, overrides the current block at a portal."""
        self._push_input(request.time_us, request)

    def _push_input(self, time_us: int, event: object) -> None:
        heapq.heappush(self._inputs, (time_us, _INPUT, next(self._seq), event))

    def _flush_single_reads(self) -> None:
        if self._single_reads:
            self._batches.append(ReadBatch.from_reads(self._single_reads, self.snapshot.reader_code))
            self._single_reads = []

    # --- register -----------------------------------------------------------------------------
    def swap_snapshot(self, snapshot: Snapshot) -> None:
        """Use a new register from the next processed event on (queued reads are re-coded to it)."""
        self._flush_single_reads()
        # the register's return deadlines for items that, as far as this engine saw, are still out
        known = {it.item_id for it in self.snapshot.site.items}
        still_out = [due for due in snapshot.site.pending_returns if due.item_id not in self._due
                     and (due.item_id not in known or self.core.venue_of(due.item_id) is None)]
        if self._held is not None:  # validated against the old register: validated again
            self._batches.insert(0, self._held.batch)
            self._held = None
        old_names = {code: name for name, code in self.snapshot.reader_code.items()}
        table = np.array([snapshot.reader_code.get(old_names[c], -1) for c in range(len(old_names))] + [-1],
                         np.int32)
        self._batches = [_with_readers(b, table) for b in self._batches]
        self.core.swap(snapshot)
        self._use(snapshot)
        self._watched = {portal_id for portal_id in self._watched if portal_id in self._portal_index}
        for portal_id in self._watched:  # by the new register's portal index
            self.core.watch(self._portal_index[portal_id], True)
        for due in still_out:
            self._add_due(due.item_id, due.return_by_us, due.approval_id)

    def _use(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        site = snapshot.site
        self.people.use(site)
        self._portal_index = {int(p): i for i, p in enumerate(snapshot.portal_ids)}
        self._person_index = {int(p): i for i, p in enumerate(snapshot.person_ids)}
        # per person index, as Python values: a decision reads a few of them, and numpy scalars are slow
        self._person_ids: list[int] = snapshot.person_ids.tolist()
        self._active: list[bool] = snapshot.person_active.tolist()
        self._clearance: list[int] = snapshot.person_clearance.tolist()
        self._portal_border: list[bool] = snapshot.portal_border.astype(bool).tolist()
        self._portal_antenna_sets = [frozenset(antennas) for antennas in snapshot.portal_antennas]
        self._approvals = {a.approval_id: a for a in site.approvals}
        self._item_ids = {it.item_id for it in site.items}
        self._top_secret = {it.item_id for it in site.items if it.level == TOP_SECRET and it.status != "declassified"}
        self._reader_portals: dict[str, set[int]] = defaultdict(set)
        for p in site.portals:
            for antenna in p.antennas:
                self._reader_portals[antenna.reader].add(p.portal_id)

    def consume(self, approval_id: int, uses: int = 1) -> None:
        """Use up `uses` of an approval decided outside the engine."""
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
        self._out = Collector()
        horizon = max(now_us - self.config.reorder_us, self.horizon_us)
        if self._single_reads:
            self._flush_single_reads()
        reads, late = self._take_reads(horizon)
        if late is not None:
            self._core_events(self.core.apply_reads(late), late)
        self._reads, self._row = reads, 0
        n_reads = len(reads.time_us)
        # the on-line path: a few reads per advance, whose times are cheaper to search as a list than in numpy
        times = self._times = reads.time_us.tolist() if n_reads <= _FEW else None
        inputs, pop = self._inputs, heapq.heappop
        while True:
            next_input = inputs[0][0] if inputs and inputs[0][0] <= horizon else None
            if self._armed and self._row < n_reads:
                # the reads due by the next input, applied until one changes a portal with an armed decision (a
                # new tag, or one now clearly there: only that can make a decision refuse at once); look again then
                t = self._apply_watching(n_reads if next_input is None else self._rows_until(next_input))
                if t is not None:
                    for portal_id in sorted(self._armed):
                        p = self._portal_index.get(portal_id, -1)
                        if p >= 0 and self.core.portal_changed(p) == t:
                            self._evaluate_portal(portal_id, t)
                    continue
            if next_input is None:
                break
            t, cls, _, payload = pop(inputs)
            row = self._row
            if row < n_reads and (reads.time_us[row] if times is None else times[row]) <= t:
                self._apply_until(self._rows_until(t))
            if cls == _INPUT:
                if type(payload) is BadgePresentation:  # what _input does first, without its call
                    self._badge(payload, t <= self.horizon_us)
                else:
                    self._input(payload, t, t <= self.horizon_us)
            elif cls == _CHECK:
                assert isinstance(payload, tuple)
                pending, final = payload
                if not pending.done:
                    self._evaluate(pending, t, final, not final)
            else:
                assert isinstance(payload, tuple)
                self._overdue(payload, t)
        if self._row < n_reads:
            self._apply_until(n_reads)
        settled = self.core.settle_due(horizon)
        if settled is not NO_EVENTS:
            self._core_events(settled, reads)
        self.horizon_us = horizon
        self._reads, self._times = _EMPTY_READS, None
        return self._out.output()

    def _rows_until(self, t: int) -> int:
        """The first due row after time t."""
        times = self._times
        if times is not None:
            return bisect.bisect_right(times, t)
        return int(self._reads.time_us.searchsorted(t, side="right"))

    def _take_reads(self, horizon: int) -> tuple[ValidReads, ValidReads | None]:
        """Split queued reads into due (time-ordered, valid), late (valid, for alarms only) and still
        pending; report bad and late ones."""
        held, self._held = self._held, None
        if held is not None and held.valid is not None and not self._batches:
            times = held.valid.time_us
            if times.item(-1) <= horizon and times.item(0) > self.horizon_us:  # all due, none bad or late
                self.stats["reads"] += len(times)
                if held.batch.stale is not None:
                    self.stats["stale_read"] += int(held.batch.stale.sum())
                return held.valid, None
        if self._batches:
            batches = self._batches if held is None else [held.batch, *self._batches]
            batch = _concat(batches) if len(batches) > 1 else batches[0]
            self._batches = []
            bad, portal, side, code, ordered = self._validate(batch)
            if not ordered:
                batch = batch.take(np.argsort(batch.time_us, kind="stable"))
                bad, portal, side, code, _ = self._validate(batch)
        elif held is not None:
            batch, bad, portal, side, code, _ = held
        else:
            return _EMPTY_READS, None
        n = len(batch.time_us)
        due_all = not n or batch.time_us.item(-1) <= horizon
        cut = n if due_all else int(batch.time_us.searchsorted(horizon, side="right"))
        if cut < n:  # not due yet: kept as validated for the next advance
            rest = batch.rows(cut, len(batch))
            rest_bad = int(np.count_nonzero(code[cut:])) if bad else 0
            # prepared only for the on-line path's few reads: a bulk stream's rest is joined to the next batches
            valid = None if rest_bad or len(rest.time_us) > _FEW else _new(ValidReads, (
                rest.time_us, portal[cut:], side[cut:], rest.epc_words, rest.epc_bits, rest.tid_hash,
                rest.rssi.astype(np.float64, copy=False),
                np.zeros(len(rest), np.bool_) if rest.stale is None else rest.stale))
            self._held = _Held(rest, rest_bad, portal[cut:], side[cut:], code[cut:], valid)
            batch, portal, side, code = batch.rows(0, cut), portal[:cut], side[:cut], code[:cut]
            bad = int(np.count_nonzero(code)) if bad else 0
        n = len(batch.time_us)
        rssi = batch.rssi.astype(np.float64, copy=False)
        self.stats["reads"] += n
        if batch.stale is None:
            if len(self._no_stale) < n:
                self._no_stale = np.zeros(max(n, 2 * len(self._no_stale)), np.bool_)
            stale = self._no_stale[:n]  # read only
        else:
            stale = batch.stale
            self.stats["stale_read"] += int(stale.sum())
        late_reads = None
        if bad or (n and batch.time_us.item(0) <= self.horizon_us):  # sorted: only the first can tell
            late = batch.time_us <= self.horizon_us
            self._report_bad(batch, code, late)
            valid = (code == k.READ_OK) | (code == k.READ_BAD_RSSI)
            gone = np.nonzero(valid & late)[0]
            if len(gone):
                late_reads = ValidReads(batch.time_us[gone], portal[gone], side[gone], batch.epc_words[gone],
                                        batch.epc_bits[gone], batch.tid_hash[gone], rssi[gone],
                                        np.ones(len(gone), np.bool_))
            keep = np.nonzero(valid & ~late)[0]
            batch, portal, side, rssi, stale = batch.take(keep), portal[keep], side[keep], rssi[keep], stale[keep]
        return _new(ValidReads, (batch.time_us, portal, side, batch.epc_words, batch.epc_bits, batch.tid_hash, rssi,
                                 stale)), late_reads

    def _validate(self, batch: ReadBatch) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, bool]:
        """(reads not READ_OK, portal, side, code, in time order) of a batch (kernels.validate_reads)."""
        n, s = len(batch), self.snapshot
        portal, side, code = np.empty(n, np.int32), np.empty(n, np.int8), np.empty(n, np.int8)
        bad, ordered = k.validate_reads(
            s.ant_portal, s.ant_side, batch.time_us, batch.reader.astype(np.int32, copy=False),
            batch.antenna.astype(np.int32, copy=False), batch.epc_bits, batch.rssi.astype(np.float64, copy=False),
            self.config.rssi_min_dbm, self.config.rssi_max_dbm, portal, side, code)
        return bad, portal, side, code, ordered

    def _report_bad(self, batch: ReadBatch, code: np.ndarray, late: np.ndarray) -> None:
        names = {c: n for n, c in self.snapshot.reader_code.items()}
        for r in np.nonzero((code != k.READ_OK) | late)[0]:
            t, reader = int(batch.time_us[r]), names.get(int(batch.reader[r]), "unknown")
            epc = words_to_epc(batch.epc_words[r], int(batch.epc_bits[r])) if batch.epc_bits[r] else None
            if late[r]:
                self.stats["late_read"] += 1
                key = ("late_read", f"{reader} {epc}")
                last = self._dq_last.get(key)
                if last is None or abs(t - last) >= self.config.data_quality_repeat_us:
                    if len(self._dq_last) >= _MAX_REMEMBERED:
                        self._dq_last.clear()
                    self._dq_last[key] = t
                    self._alarm("late_read", t, None, None, f"read older than the horizon by "
                                f"{self.horizon_us - t} us", reader, epc, late=True)
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

    def _apply_until(self, end: int) -> None:
        """Apply the due reads from the current row up to (not including) row `end`."""
        reads, start = self._reads, self._row
        if end > start:
            part = reads if start == 0 and end == len(reads.time_us) else reads.rows(start, end)
            self._core_events(self.core.apply_reads(part), part)
            self._row = end

    def _apply_watching(self, end: int) -> int | None:
        """Apply the due reads from the current row up to row `end`, stopping after the first moment at which
        one changed a watched portal (one with an armed decision, Core.watch); returns that moment (None: none)."""
        reads, start = self._reads, self._row
        if end <= start:
            return None
        part = reads if start == 0 and end == len(reads.time_us) else reads.rows(start, end)
        events, applied, moment = self.core.apply_reads_watching(part)
        self._core_events(events, part)
        self._row = start + applied
        return moment

    def _core_events(self, events: CoreEvents, reads: ValidReads) -> None:
        if events is NO_EVENTS:
            return
        out = self._out
        out.movements(events.movements)
        for block in events.movement_columns:
            out.movement_block(block)  # type: ignore[arg-type]
        if self._entries:  # a grant is only looked at for crossings up to door_grant_us after it
            since = self.horizon_us - self.config.door_grant_us - self.config.settle_us
            self._entries = {p: e for p, e in self._entries.items() if e[0] >= since}
        if self._fire_periods or self._fire_since is not None or self._due or self._entries:
            for m in events.movements + [m for b in events.movement_columns for m in build_movements(*b)]:
                self._after_movement(m)
        for kind, t, portal_id, item_id, detail, late in events.alarms:
            if not late or self._late_once((kind, item_id, detail), t):
                out.alarm(kind, t, portal_id, item_id, _DETAIL[detail] if kind == A_CLONE else "", late=late)
        for kinds, times, portals, items, details, late in events.alarm_columns:
            if late.any():  # alarms raised by late reads repeat at most once per period
                keep = np.array([not stale or self._late_once((kind, item_id, detail), t) for kind, t, item_id, detail,
                                 stale in zip(kinds.tolist(), times.tolist(), items.tolist(), details.tolist(),
                                              late.tolist(), strict=True)], np.bool_)
                kinds, times, portals, items, details, late = (c[keep] for c in (kinds, times, portals, items,
                                                                                 details, late))
            out.alarm_block(kinds, times, portals, items, details, late)
        if events.unknown_rows:
            self._unregistered(events.unknown_rows, reads)

    def _late_once(self, key: tuple[int, int, int], t: int) -> bool:
        """Alarms raised by late reads repeat at most once per unregistered_repeat_us of read time."""
        last = self._late_last.get(key)
        if last is not None and abs(t - last) < self.config.unregistered_repeat_us:
            return False
        if len(self._late_last) >= _MAX_REMEMBERED:
            self._late_last.clear()
        self._late_last[key] = t
        return True

    def _unregistered(self, rows: list[int], reads: ValidReads) -> None:
        """One unregistered_tag alarm per EPC per unregistered_repeat_us (of read time)."""
        times, epcs = reads.time_us[rows].tolist(), words_to_epcs(reads.epc_words[rows], reads.epc_bits[rows])
        portals, stale = self.snapshot.portal_ids[reads.portal[rows]].tolist(), reads.stale[rows].tolist()
        self.stats["unregistered_read"] += len(rows)
        repeat = self.config.unregistered_repeat_us
        for t, epc, portal_id, late in zip(times, epcs, portals, stale, strict=True):
            last = self._unregistered_last.get(epc)
            if last is None or abs(t - last) >= repeat:
                if len(self._unregistered_last) >= _MAX_REMEMBERED:
                    self._unregistered_last = _recent(self._unregistered_last, t - repeat)
                self._unregistered_last[epc] = t if last is None else max(t, last)
                self._alarm("unregistered_tag", t, portal_id, None, "EPC not in the register", epc=epc, late=late)

    def _after_movement(self, m: Movement) -> None:
        fire = self._fire_since is not None and m.time_us >= self._fire_since
        if fire or any(a <= m.time_us <= b for a, b in self._fire_periods):
            self._alarm("emergency_release_movement", m.time_us, m.portal_id, m.item_id, m.direction)
        due = self._due.get(m.item_id)
        if m.direction == "entry" and due is not None and m.time_us <= due[0]:
            del self._due[m.item_id]
        grant = self._entries.get(m.portal_id) if m.direction == "entry" else None
        if grant is not None and 0 <= m.time_us - grant[0] <= self.config.door_grant_us:
            self._out.brought.append(ItemBrought(grant[1], m.item_id, m.portal_id, m.to_venue_id, m.time_us))

    def _alarm(self, kind: str, t: int, portal_id: int | None, item_id: int | None, detail: str = "",
               reader: str | None = None, epc: str | None = None, late: bool = False) -> None:
        self._out.alarm(_KIND[kind], t, portal_id, item_id, detail, reader, epc, late)

    # --- portal inputs ------------------------------------------------------------------------
    def _input(self, event: object, t: int, late: bool) -> None:
        if isinstance(event, BadgePresentation):
            self._badge(event, late)
        elif isinstance(event, _LateBadge):
            self._badge(event.badge, False, t)
        elif isinstance(event, InventoryRound):
            self._round(event, late)
        elif isinstance(event, CameraCount):
            counts = self._camera[event.portal_id]
            counts.append((event.time_us, event.count))
            while counts[0][0] < event.time_us - self.config.two_person_us - self.config.settle_us:
                counts.popleft()
            self._evaluate_portal(event.portal_id, t)
            self._tailgated(event, t)
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
        elif isinstance(event, ReaderHealth):
            (self._offline.discard if event.online else self._offline.add)(event.reader)
            for portal_id in sorted(self._reader_portals.get(event.reader, ())):
                self._evaluate_portal(portal_id, t)
        elif isinstance(event, OverrideRequest):
            self._override(event, late)
        elif isinstance(event, ForgiveRequest):
            self.people.forgive(event.person_id)
        elif isinstance(event, _EscortCheck):
            visitors = self.people.unescorted_alarm(event.venue_id)
            if visitors:
                self._alarm("visitor_unescorted", t, event.portal_id, None,
                            f"venue {event.venue_id}: visitors {', '.join(map(str, visitors))} without an escort")

    def _round(self, event: InventoryRound, late: bool) -> None:
        code = self.snapshot.reader_code.get(event.reader)
        if code is not None:
            self._round_readers.add(event.reader)  # a late round end still says the reader reports them
        if code is None or late:
            self.stats["late_round" if late else "unknown_round"] += 1
            return
        ant_portal = self.snapshot.ant_portal[code]
        antennas = [event.antenna] if event.antenna else [a for a in range(len(ant_portal)) if ant_portal[a] >= 0]
        portals = set()
        for antenna in antennas:
            if not 0 <= antenna < len(ant_portal) or ant_portal[antenna] < 0:
                self.stats["unknown_round"] += 1
                continue
            ends = self._rounds.get((event.reader, antenna))
            if ends is None:
                ends = self._rounds[(event.reader, antenna)] = deque(maxlen=self.config.rounds_for_allow + 1)
            ends.append(event.time_us)
            portals.add(int(self.snapshot.portal_ids[ant_portal[antenna]]))
        for portal_id in sorted(portals):
            self._evaluate_portal(portal_id, event.time_us, allow_only=True)

    def _may_allow_early(self, badge: BadgePresentation, portal_index: int, t: int) -> bool:
        """Past the floor, with whole rounds on every antenna since the badge and the last new tag?"""
        if t < badge.time_us + self.config.decision_floor_us:
            return False
        return self._rounds_done(portal_index, max(badge.time_us, self.core.portal_new(portal_index)))

    def _rounds_done(self, portal_index: int, since_us: int) -> bool:
        """Has every non-ignored antenna of the portal completed the required whole rounds since?"""
        antennas = self.snapshot.portal_antennas[portal_index]
        need = self.config.rounds_for_allow
        for key in antennas:
            ends = self._rounds.get(key)
            if ends is None or len(ends) <= need or ends[-need - 1] < since_us:
                return False
        return bool(antennas)

    def _readers_behind(self, portal_index: int, badge_us: int) -> bool:
        """At the cap: the portal's readers report round ends, yet an antenna of an online reader has not
        completed one whole round since the badge. Its reads of that time have not arrived (the reader or its
        link lagging), so the items at the door are not known: fail closed.

        A portal's readers report round ends once any of them has reported one since the engine started, on
        time or late (a reader lagging from the start delivers only late ones); from then on every antenna
        of the portal is expected to, and one that never reported a round counts as behind. A reader reported
        offline is the fail-secure rule's; a portal whose readers never reported a round end is decided at
        the cap, as documented."""
        if not self._round_readers & self.snapshot.portal_readers[portal_index]:
            return False
        rounds, offline = self._rounds, self._offline
        for key in self.snapshot.portal_antennas[portal_index]:
            if key[0] not in offline:
                ends = rounds.get(key)
                if ends is None or len(ends) < 2 or ends[-2] < badge_us:
                    return True
        return False

    def _fail_secure(self, portal_index: int) -> bool:
        s = self.snapshot
        if not self._offline & s.portal_readers[portal_index]:
            return False
        venue = s.portal_inside[portal_index]
        return bool(s.venue_ceiling[venue] >= s.venue_fail_secure[venue])

    # --- decisions ----------------------------------------------------------------------------
    def _badge(self, badge: BadgePresentation, late: bool, arrived_us: int | None = None) -> None:
        """Arm a decision for the badge (at arrived_us when it came late, else at its own time)."""
        known_portal = badge.portal_id in self._portal_index
        if late or not known_portal:
            if late and not badge.stale and known_portal and \
                    self.horizon_us - badge.time_us <= self.config.late_badge_grace_us:
                # held up in the host, not queued on its panel: decided from the first moment it has a place
                self.stats["late_badge_retimed"] += 1
                heapq.heappush(self._inputs, (self.horizon_us + 1, _INPUT, next(self._seq), _LateBadge(badge)))
                return
            # no place in the timeline (late) or unknown portal: refuse at once, never open
            person = self.snapshot.badge_person.get(badge.badge, -1)
            reason = (R_STALE_BADGE if badge.stale or late else 0) | \
                (0 if known_portal else R_UNKNOWN_PORTAL)
            self.stats["refused_unplaceable_badge"] += 1
            self._out.decisions.append(Decision(badge.portal_id, badge.time_us, badge.badge, self._person_id(person),
                                                (), False, reason, (), decided_us=max(badge.time_us, self.horizon_us),
                                                direction=badge.direction))
            return
        c = self.config
        now, portal_id = badge.time_us if arrived_us is None else arrived_us, badge.portal_id
        self._badges[portal_id].append((badge.time_us, badge.badge, not badge.stale, badge.direction))
        pending = _Pending(badge, next(self._seq))
        armed = self._armed.get(portal_id)
        if armed is None:  # the common case: nothing else waits at this door
            self._armed[portal_id] = [pending]
            self._evaluate(pending, now, False)
        else:
            armed.append(pending)
            self._evaluate_portal(portal_id, now)  # also a second carrier for an earlier badge
        if not pending.done:
            if portal_id not in self._watched:  # a read there may make it refuse at once (_apply_watching)
                self._watched.add(portal_id)
                self.core.watch(self._portal_index[portal_id], True)
            if self._rounds.keys() >= self._portal_antenna_sets[self._portal_index[portal_id]]:
                # rounds may be complete before the floor: look again then (else the round ends will)
                heapq.heappush(self._inputs, (now + c.decision_floor_us, _CHECK, pending.seq, (pending, False)))
            heapq.heappush(self._inputs, (now + c.settle_us, _CHECK, next(self._seq), (pending, True)))

    def _person_id(self, person: int) -> int | None:
        return self._person_ids[person] if person >= 0 else None

    def _evaluate_portal(self, portal_id: int, t: int, allow_only: bool = False) -> None:
        for pending in list(self._armed.get(portal_id, ())):
            if not pending.done:
                self._evaluate(pending, t, final=False, allow_only=allow_only)

    def _evaluate(self, pending: _Pending, t: int, final: bool, allow_only: bool = False) -> None:
        """Refuse, allow, or keep holding the door shut (module docstring).

        allow_only: the trigger (a round end, the floor) can only make an early allow possible; the
        reasons to refuse cannot have changed since the last look, which was at an event.
        """
        badge = pending.badge
        portal_id = badge.portal_id
        portal_index = self._portal_index.get(portal_id, -1)
        if portal_index < 0:  # the portal left the register while the badge waited
            self._finish(pending, t, -1, -1, 0, 0, R_UNKNOWN_PORTAL)
            return
        if allow_only and not self._may_allow_early(badge, portal_index, t):
            return
        settled = self.core.settle_due(t)  # the item state as of t
        if settled is not NO_EVENTS:
            self._core_events(settled, self._reads)
        s, c = self.snapshot, self.config
        badge_person, active, person_ids, inactive = s.badge_person, self._active, self._person_ids, s.inactive_badges
        direction = badge.direction
        person = badge_person.get(badge.badge, -1)
        window_start = t - c.two_person_us
        history = self._badges[portal_id]
        oldest = window_start - c.settle_us
        while history and history[0][0] < oldest:
            history.popleft()
        present, same_way, ts_people, clearance = set(), set(), 0, self._clearance
        for bt, other_badge, fresh, way in history:
            if fresh and window_start <= bt <= t:
                q = badge_person.get(other_badge, -1)
                if q >= 0 and active[q] and other_badge not in inactive:
                    if q not in present:  # people are counted, not badges
                        present.add(q)
                        ts_people += clearance[q] >= TOP_SECRET
                    if way == direction:
                        same_way.add(person_ids[q])
        reasons = R_STALE_BADGE if badge.stale else 0
        if person < 0:
            reasons |= R_UNKNOWN_BADGE
        elif not active[person] or badge.badge in inactive:
            reasons |= R_PERSON_INACTIVE
        camera = self._camera.get(portal_id)
        if camera:
            counts = [n for ct, n in camera if window_start <= ct <= t]
            if counts and counts[-1] > len(present):
                reasons |= R_TAILGATING
        if self._offline and self._fail_secure(portal_index):
            reasons |= R_READERS_OFFLINE
        if final and self._round_readers and self._readers_behind(portal_index, badge.time_us):
            reasons |= R_READERS_BEHIND
        rules = None
        if person >= 0:
            rules = self.people.verdict(person_ids[person], portal_id, direction, badge.time_us, same_way)
            reasons |= rules.refuse
        # an entry opens the same door: an item inside within reach keeps it shut as for an exit (rule 1)
        n, summary, item_mask = self.core.judge(portal_index, person, badge.time_us, ts_people, direction == "entry")
        if self.exits_restricted and n:
            reasons |= R_SNAPSHOT_TOO_OLD
        if not (reasons or summary & J_REFUSE or final):
            if summary & J_REASONS or (rules is not None and rules.wait):
                return  # uncertain reads, or waiting for a second carrier or an escort: hold until the cap
            if not self._may_allow_early(badge, portal_index, t):
                return
        reasons |= item_mask
        if rules is not None:
            reasons |= rules.wait
        self._finish(pending, t, portal_index, person, n, summary, reasons)

    def _finish(self, pending: _Pending, t: int, portal_index: int, person: int, n: int, summary: int,
                reasons: int) -> None:
        """Decide the badge: n items judged by the last Core.judge, with its J_* summary (n 0: none)."""
        badge = pending.badge
        portal_id = badge.portal_id
        pending.done = True
        armed = self._armed[portal_id]
        armed.remove(pending)
        if not armed:
            del self._armed[portal_id]
            if portal_id in self._watched:
                self._watched.discard(portal_id)
                if portal_index >= 0:
                    self.core.watch(portal_index, False)
        allow, exit_ = reasons == 0, badge.direction == "exit"
        verdicts: list[ItemVerdict] = []
        items: tuple[int, ...] = ()
        new_uses = route = uncertain = ()
        resting: tuple[tuple[int, int], ...] = ()
        item_reasons: tuple[tuple[int, int], ...] = ()
        if n and (exit_ or not allow):  # allowed in: nothing carried out under this badge
            verdicts = self.core.verdicts()
            if n == 1:  # most decisions: the item columns of one verdict, without a loop
                v = verdicts[0]
                item_id = v.item_id
                items = (item_id,)
                if v.resting:
                    resting = ((item_id, v.since_us),)
                if v.uncertain:
                    uncertain = (item_id,)
                if exit_ and v.approval_id is not None:
                    new_uses, route = ((v.approval_id,), ()) if v.new_use else ((), (v.approval_id,))
                if not allow and v.reasons:
                    item_reasons = ((item_id, _item_mask(v)),)
            else:
                verdicts = sorted(verdicts, key=attrgetter("item_id"))
                items = tuple([v.item_id for v in verdicts])
                resting = tuple([(v.item_id, v.since_us) for v in verdicts if v.resting])
                uncertain = tuple([v.item_id for v in verdicts if v.uncertain])
                # an entry spends nothing, allowed or refused; without an approval there is nothing to book
                if exit_ and summary & J_APPROVAL:
                    used, carried = set(), set()
                    for v in verdicts:
                        if v.approval_id is not None:
                            (used if v.new_use else carried).add(v.approval_id)
                    new_uses, route = tuple(sorted(used)), tuple(sorted(carried - used))
                if not allow:
                    item_reasons = tuple([(v.item_id, _item_mask(v)) for v in verdicts if v.reasons])
        if allow:
            self._last_allow[portal_id] = t
            if exit_ and verdicts:
                for approval_id in new_uses:
                    self.core.consume(approval_id)
                self.core.commit_decided(portal_index, t)  # the verdicts are those of the last judge
                if new_uses:  # a return deadline comes only with a new use of an approval
                    self._track_returns(verdicts)
        decision = Decision(portal_id, badge.time_us, badge.badge, self._person_ids[person] if person >= 0 else None,
                            items, allow, reasons, new_uses, item_reasons, resting, uncertain, route, t, None, "",
                            badge.direction)
        self._out.decisions.append(decision)
        if person >= 0 and portal_index >= 0 and not badge.stale and (allow or self._fire_since is not None):
            # a refused badge while the doors are released may still have gone through: uncertain
            self._move(decision, t, "badge" if allow else "fire_release", not allow)
        if allow:
            self._blocks.pop(portal_id, None)
        else:
            border = portal_index >= 0 and self._portal_border[portal_index] and not self._top_secret.isdisjoint(items)
            self._blocks[portal_id] = _new(_Block, (decision, border))

    def _override(self, request: OverrideRequest, late: bool) -> None:
        t, c = request.time_us, self.config
        portal_index = self._portal_index.get(request.portal_id, -1)
        guard = self._person_index.get(request.guard_person_id, -1)
        block = self._blocks.get(request.portal_id)
        blocked = block.decision if block is not None else None
        reason = 0
        if late:
            reason = R_OVERRIDE_LATE
        elif portal_index < 0:
            reason = R_UNKNOWN_PORTAL
        elif guard < 0 or not self.snapshot.person_active[guard]:
            reason = R_OVERRIDE_UNKNOWN_GUARD
        elif blocked is None or request.block_time_us not in (None, blocked.time_us):
            reason = R_OVERRIDE_NO_BLOCK
        elif t - blocked.decided_us > c.override_max_age_us:
            reason = R_OVERRIDE_TOO_OLD
        elif block is not None and block.top_secret_at_border:
            reason = R_OVERRIDE_BORDER_TS
        elif blocked.person_id == request.guard_person_id or self._badged_with(request, blocked, guard):
            reason = R_OVERRIDE_BY_BLOCKED
        self.stats["override_refused" if reason else "override"] += 1
        if reason or blocked is None:
            self._out.decisions.append(Decision(
                request.portal_id, t, blocked.badge if blocked else "", blocked.person_id if blocked else None,
                blocked.item_ids if blocked else (), False, reason, (), decided_us=t,
                override_by=request.guard_person_id, override_reason=request.reason,
                direction=blocked.direction if blocked else "exit",
            ))
            return
        # the guard's decision covers the blocked items' crossing: no second unauthorized_exit (a
        # crossing that ended more than settle_us before is settled, and alarmed, first)
        self._core_events(self.core.settle_due(t), self._reads)
        if blocked.direction == "exit":  # a refused entry let through lets no item out with it
            still = [i for i in blocked.item_ids if i in self._item_ids]  # the register may have changed since
            self.core.commit_allow(still, [None] * len(still), portal_index, t)
        self._last_allow[request.portal_id] = t
        del self._blocks[request.portal_id]
        decision = Decision(
            request.portal_id, t, blocked.badge, blocked.person_id, blocked.item_ids, True, blocked.reasons, (),
            blocked.item_reasons, blocked.resting, blocked.uncertain, decided_us=t,
            override_by=request.guard_person_id, override_reason=request.reason, direction=blocked.direction,
        )
        self._out.decisions.append(decision)
        if blocked.person_id is not None:  # whoever tailgated went through unnamed: the move is uncertain
            self._move(decision, t, "override", bool(blocked.reasons & R_TAILGATING))

    def _move(self, decision: Decision, t: int, cause: str, uncertain: bool) -> None:
        """Move the decision's person through its portal (tracking.presence) and act on what that means."""
        person_id, portal_id, direction = decision.person_id, decision.portal_id, decision.direction
        assert person_id is not None
        moved = self.people.move(person_id, portal_id, direction, t, cause, uncertain,
                                 decision.item_ids if direction == "exit" and cause != "fire_release" else ())
        if moved is None:
            return
        change, passback_alarm, escort_checks = moved
        self._out.presence.append(change)
        if passback_alarm:
            self._alarm("anti_passback", t, portal_id, None,
                        f"person {person_id} left venue {change.from_venue_id}, not known inside")
        for venue_id in escort_checks:
            self._push_input(t + self.config.two_person_us, _EscortCheck(venue_id, portal_id))
        if direction == "entry" and cause != "fire_release":
            self._entries[portal_id] = (t, person_id)
        if cause == "badge":
            passed = self._passed[portal_id]
            passed.append((t, person_id))
            oldest = t - self._passed_keep_us
            while passed[0][0] < oldest:
                passed.popleft()

    def _tailgated(self, count: CameraCount, t: int) -> None:
        """More people counted through a door just opened for badges than badged: their places are uncertain."""
        c = self.config
        last = self._last_allow.get(count.portal_id)
        if last is None or not 0 <= count.time_us - last <= c.door_grant_us:
            return
        passed = {p for moved, p in self._passed.get(count.portal_id, ()) if last - c.two_person_us <= moved <= t}
        if passed and count.count > len(passed):
            for person_id in sorted(passed):
                change = self.people.mark_uncertain(person_id, count.portal_id, t)
                if change is not None:
                    self._out.presence.append(change)

    def _badged_with(self, request: OverrideRequest, blocked: Decision, guard: int) -> bool:
        """Did the guard badge at that door with the blocked person (one of the exiting party)?"""
        since = blocked.time_us - self.config.two_person_us
        return any(since <= t <= request.time_us and self.snapshot.badge_person.get(badge, -1) == guard
                   for t, badge, _, _ in self._badges.get(request.portal_id, ()))

    # --- return deadlines ---------------------------------------------------------------------
    def _track_returns(self, verdicts: list[ItemVerdict]) -> None:
        for v in verdicts:
            approval = self._approvals.get(v.approval_id) if v.approval_id is not None and v.new_use else None
            if approval is not None and approval.return_by_us is not None:
                self._add_due(v.item_id, approval.return_by_us, approval.approval_id)

    def _add_due(self, item_id: int, return_by_us: int, approval_id: int) -> None:
        self._due[item_id] = (return_by_us, approval_id)
        # checked one settle period after the deadline, so a return just before it has settled
        deadline = return_by_us + self.config.settle_us + 1
        heapq.heappush(self._inputs, (deadline, _OVERDUE, next(self._seq), (item_id, return_by_us, approval_id)))

    def _overdue(self, entry: tuple[int, int, int], deadline: int) -> None:
        item_id, due, approval_id = entry
        self._core_events(self.core.settle_due(deadline), self._reads)  # a return before `due` is now known
        if self._due.get(item_id) == (due, approval_id):
            del self._due[item_id]
            self._alarm("overdue", due, None, item_id, f"not back by the return time of approval {approval_id}")


def _item_mask(verdict: ItemVerdict) -> int:
    """An item's reasons, marked uncertain when its reads did not settle that it is there."""
    return verdict.reasons | (R_UNCERTAIN if verdict.uncertain and verdict.reasons else 0)


def _recent(last_seen: dict[str, int], since_us: int) -> dict[str, int]:
    """The entries seen at or after since_us (older ones could alarm again anyway)."""
    return {key: t for key, t in last_seen.items() if t >= since_us}


_EMPTY_READS = ValidReads(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int8),
                          np.zeros((0, 1), np.uint64), np.zeros(0, np.int16), np.zeros(0, np.uint64),
                          np.zeros(0, np.float64), np.zeros(0, np.bool_))


def _concat(batches: list[ReadBatch]) -> ReadBatch:
    width = max(b.epc_words.shape[1] for b in batches)
    words = np.concatenate([np.pad(b.epc_words, ((0, 0), (0, width - b.epc_words.shape[1]))) for b in batches])
    stale = None if all(b.stale is None for b in batches) else np.concatenate([b.stale_flags() for b in batches])
    return ReadBatch(
        np.concatenate([b.time_us for b in batches]), np.concatenate([b.reader for b in batches]),
        np.concatenate([b.antenna for b in batches]), words, np.concatenate([b.epc_bits for b in batches]),
        np.concatenate([b.rssi for b in batches]), np.concatenate([b.tid_hash for b in batches]), stale,
    )


def _with_readers(batch: ReadBatch, table: np.ndarray) -> ReadBatch:
    """The batch with reader codes translated through `table` (last entry: unknown)."""
    codes = batch.reader.astype(np.int64)
    codes = np.where((codes >= 0) & (codes < len(table) - 1), codes, len(table) - 1)
    return ReadBatch(batch.time_us, table[codes], batch.antenna, batch.epc_words, batch.epc_bits, batch.rssi,
                     batch.tid_hash, batch.stale)


def warm_up(snapshot: Snapshot, config: EngineConfig) -> None:
    """Compile (or load from Numba's cache) the kernels a site's decisions call, on a throwaway engine over
    the same register. On a fresh install the first read, badge and decision would otherwise wait for the
    compiler, seconds to tens of seconds on a small machine, and the person at the door with them."""
    portal = next((i for i, antennas in enumerate(snapshot.portal_antennas) if antennas), None)
    if portal is None or not snapshot.site.items or not snapshot.badge_person:
        return
    engine = Engine(snapshot, config)
    (reader, antenna), epc = snapshot.portal_antennas[portal][0], snapshot.site.items[0].epc
    start = 1 << 50  # any time: nothing of this engine is kept
    reads = [TagRead(reader, antenna, epc, start + n * 10_000, -50.0) for n in range(5)]
    engine.ingest(ReadBatch.from_reads(reads, snapshot.reader_code))
    engine.on_badge(BadgePresentation(int(snapshot.portal_ids[portal]), next(iter(snapshot.badge_person)),
                                      start + 20_000))
    for n in range(1, 4):
        engine.on_round(InventoryRound(reader, antenna, start + n * 30_000))
    engine.advance(start + 10 * (config.settle_us + config.reorder_us))
    engine.swap_snapshot(snapshot)

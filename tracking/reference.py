"""Pure-Python reference core: the readable statement of the tracking rules (domain-rules.md s. 4).

It works on the SiteModel directly (dicts keyed by register ids) and is the oracle the Numba core
is tested against; it is also the fallback backend. Both cores are driven by tracking.engine in the
same order (time-ordered reads, decision checks at their times, settling at the horizon); the engine
owns the timing of decisions (when to hold, refuse or allow), the cores own the state of items.

Passes. A *pass* is the run of reads of item I at one portal with gaps of at most settle_us. A read
at another portal, or after a longer gap, settles the open pass and opens a new one. Within a pass
the reads of each side are grouped into *bursts* (reads on that side at most burst_gap_us apart; a
later burst replaces the earlier one): the evidence of a side is its last burst's read count and
strongest RSSI (whole dBm). Strength of a side = min(1, reads / side_reads_full) x RSSI factor
(linear from rssi_weak_dbm -> 0 to rssi_strong_dbm -> 1; 1 when the reader gave no RSSI).

Alarms per read. Opening a pass at P right after a read at another portal Q too far away for
max_speed: possible clone (impossible travel). A destroyed item opening a pass: destroyed item
seen. A TID that differs from the register: possible clone, once per pass. A stale read (late, or
flagged by its device) changes no state and is evidence for nothing, but raises the same alarms as
of its own time, marked late: destroyed item seen, TID clone, and impossible travel against the
item's last pass (its distance in time to that pass's interval of reads).

Movements (rule 4.10). Settling a pass gives a movement only if both sides saw it, its first and
last reads are on different sides (inside first = exit), its two bursts hold >= min_reads reads and
the weaker side's strength (the movement's confidence) is >= movement_confidence_min. Anything less
is a stray, bleed or uncertain read: no movement, no alarm. A movement updates the item's venue;
arriving in a venue above its ceiling (or a top-secret item in a non-designated venue) raises
venue_ceiling, unless the item is carried through that venue in custody on its approval's route; an
exit that needs an approval and is not covered by an allow at that portal (given during the pass, at
most reach_us before its first read, with the item last read inside at most door_grant_us after the
allow) raises unauthorized_exit.

Exit decisions (rule 4.2). Within reach of portal P for a badge at time B: every item whose last
pass is at P with a read at or after B - reach_us, read on the inside (or read only outside while not
known to be outside), except an item that has already left through P. Per item: status, clearance,
two-person rule, border, approval (kind, person or group, route, time window, uses), destination
ceiling (where the item will rest: the approval's destination when it has one, else the venue behind
the door), knowledge scope. An item is *uncertain* when its inside burst is below presence_min_reads
reads and no read reached presence_rssi_dbm, or when it was read only outside.

Routes (rule 4.2). An approval leads to its destination venue; else, with a portal, through that
portal; else a carry-out or abroad leads out of the unit; a transfer with neither covers any one
door. A door is on the route when crossing it brings the item strictly closer (in doors, inside the
unit) to the destination, or, for an approval naming a portal, to that portal's inside venue, or
past it. An item allowed on an approval with a destination is in custody under it: the next doors
on the route need the approval (person, time) but no new use, until the item arrives or leaves the
route.

Approvals: unclassified items never need one; internal ones follow EngineConfig.
internal_needs_approval; others need one when leaving towards a lower ceiling or out of the unit,
and (abroad) at a border portal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tracking.codes import SIDE_OUTSIDE
from tracking.epc import tid_hash, words_to_epc
from tracking.model import INTERNAL, TOP_SECRET, ApprovalSpec, EngineConfig, ItemSpec, PersonSpec, SiteModel
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
    Movement,
)
from tracking.snapshot import Snapshot
from tracking.types import CoreEvents, ItemVerdict, ValidReads, summarize

NO_RSSI = -128  # a burst with no plausible RSSI
MAX_BURST = 255  # burst read counts saturate here
OUTSIDE = -1  # the outside of the unit, as a route node
FAR = 2**30


@dataclass
class _Burst:
    reads: int = 0
    peak_dbm: int = NO_RSSI


@dataclass
class _Pass:
    portal_id: int
    first_us: int
    last_us: int
    seen_inside: bool
    seen_outside: bool
    first_outside: bool
    last_outside: bool
    inside: _Burst
    outside: _Burst
    other_side_last_us: int  # last read on the side opposite to the last read's
    is_open: bool = True
    tid_alarmed: bool = False
    moved: bool = False  # settled into a movement


@dataclass
class _ItemState:
    venue_id: int | None
    last_pass: _Pass | None = None
    allow_portal_id: int | None = None
    allow_us: int = -1
    custody_approval_id: int | None = None


@dataclass
class ReferenceCore:
    """Plain-Python core over a SiteModel; see the module docstring for the rules."""

    snapshot: Snapshot
    config: EngineConfig
    items: dict[int, _ItemState] = field(default_factory=dict)
    uses: dict[int, int] = field(default_factory=dict)
    portal_new_us: dict[int, int] = field(default_factory=dict)
    portal_change_us: dict[int, int] = field(default_factory=dict)
    _decided: list[ItemVerdict] = field(default_factory=list)  # the verdicts of the last decide
    _watched: set[int] = field(default_factory=set)  # portal ids with an armed decision (watch)
    _watch_hit: int | None = None  # the first moment a watched portal changed, in apply_reads_watching

    def __post_init__(self) -> None:
        self.swap(self.snapshot, keep_state=False)

    # --- register -----------------------------------------------------------------------------
    def swap(self, snapshot: Snapshot, keep_state: bool = True) -> None:
        """Use a new register: venues and approval uses come from it; passes, allows and custody
        carry over by register id."""
        site = snapshot.site
        old = self.items if keep_state else {}
        self.snapshot = snapshot
        self.site: SiteModel = site
        self.by_epc: dict[str, ItemSpec] = {it.epc.upper(): it for it in site.items}
        self.by_id: dict[int, ItemSpec] = {it.item_id: it for it in site.items}
        self.venues = {v.venue_id: v for v in site.venues}
        self.portals = {p.portal_id: p for p in site.portals}
        self.people: list[PersonSpec] = list(site.people)
        self.approvals: dict[int, ApprovalSpec] = {a.approval_id: a for a in site.approvals}
        self._distances: dict[int, dict[int, int]] = {}
        portal_ids = set(self.portals)
        self.items = {}
        for it in site.items:
            state = _ItemState(venue_id=it.venue_id)
            previous = old.get(it.item_id)
            if previous is not None:
                if previous.last_pass is not None and previous.last_pass.portal_id in portal_ids:
                    state.last_pass = previous.last_pass
                if previous.allow_portal_id in portal_ids:
                    state.allow_portal_id, state.allow_us = previous.allow_portal_id, previous.allow_us
                if previous.custody_approval_id in self.approvals:
                    state.custody_approval_id = previous.custody_approval_id
            self.items[it.item_id] = state
        self.uses = {a.approval_id: a.uses_left for a in site.approvals}
        self.portal_new_us = {p: t for p, t in self.portal_new_us.items() if p in portal_ids} if keep_state else {}
        self.portal_change_us = {p: t for p, t in self.portal_change_us.items() if p in portal_ids} \
            if keep_state else {}
        self._watched = set()  # the engine marks its armed portals again

    def _level(self, item: ItemSpec) -> int:
        return 0 if item.status == "declassified" else item.level

    def _venue_rejects(self, venue_id: int | None, level: int) -> bool:
        if venue_id is None:
            return False
        venue = self.venues[venue_id]
        return level > venue.ceiling or (level == TOP_SECRET and not venue.top_secret_designated)

    def _needs_approval(self, portal_id: int, level: int) -> bool:
        if level == 0 or (level == INTERNAL and not self.config.internal_needs_approval):
            return False
        portal = self.portals[portal_id]
        outside = portal.outside_venue_id
        lower = outside is None or self.venues[outside].ceiling < self.venues[portal.inside_venue_id].ceiling
        return lower or portal.border

    # --- routes -------------------------------------------------------------------------------
    def _node(self, venue_id: int | None) -> int:
        return OUTSIDE if venue_id is None else venue_id

    def _distances_to(self, target: int) -> dict[int, int]:
        """Doors from every node to `target`, by paths that stay inside the unit."""
        if target not in self._distances:
            neighbours: dict[int, list[int]] = {}
            for p in self.portals.values():
                a, b = p.inside_venue_id, self._node(p.outside_venue_id)
                neighbours.setdefault(a, []).append(b)
                neighbours.setdefault(b, []).append(a)
            dist = {target: 0}
            queue = [target]
            for node in queue:  # breadth first; the list grows while it is walked
                if node == OUTSIDE and node != target:
                    continue
                for other in neighbours.get(node, []):
                    if other not in dist:
                        dist[other] = dist[node] + 1
                        queue.append(other)
            self._distances[target] = dist
        return self._distances[target]

    def _closer(self, target: int, src: int, dst: int) -> bool:
        dist = self._distances_to(target)
        return dist.get(dst, FAR) < dist.get(src, FAR)

    def _target(self, a: ApprovalSpec) -> int | None:
        """The route node an approval leads to; None: any one door (a transfer with no destination)."""
        if a.destination_venue_id is not None:
            return a.destination_venue_id
        if a.portal_id is not None:
            return self._node(self.portals[a.portal_id].outside_venue_id)
        return OUTSIDE if a.kind in ("carry_out", "abroad") else None

    def _on_route(self, a: ApprovalSpec, portal_id: int) -> bool:
        portal = self.portals[portal_id]
        src, dst = portal.inside_venue_id, self._node(portal.outside_venue_id)
        target = self._target(a)
        toward_target = target is None or self._closer(target, src, dst)
        if a.portal_id is None:
            return toward_target
        via = self.portals[a.portal_id]
        if portal_id == a.portal_id:
            return toward_target
        if self._closer(via.inside_venue_id, src, dst):
            return True  # on the way to the approval's portal
        if target is None:
            return False
        dist = self._distances_to(target)
        past = dist.get(src, FAR) < dist.get(via.inside_venue_id, FAR)
        return past and toward_target

    # --- reads --------------------------------------------------------------------------------
    def apply_reads(self, reads: ValidReads) -> CoreEvents:
        events = CoreEvents()
        for row in range(len(reads.time_us)):
            self._apply_row(reads, row, events)
        self._watch_hit = None
        return events

    def apply_reads_watching(self, reads: ValidReads) -> tuple[CoreEvents, int, int | None]:
        """apply_reads up to and including the first moment at which a read changed a watched portal
        (portal_changed): (events, rows applied, that moment or None)."""
        events = CoreEvents()
        for row in range(len(reads.time_us)):
            moment = self._watch_hit
            if moment is not None and int(reads.time_us[row]) != moment:
                self._watch_hit = None
                return events, row, moment
            self._apply_row(reads, row, events)
        moment, self._watch_hit = self._watch_hit, None
        return events, len(reads.time_us), moment

    def watch(self, portal_index: int, on: bool) -> None:
        """Whether apply_reads_watching stops at a change of the portal (it has an armed decision)."""
        portal_id = int(self.snapshot.portal_ids[portal_index])
        (self._watched.add if on else self._watched.discard)(portal_id)

    def _apply_row(self, reads: ValidReads, row: int, events: CoreEvents) -> None:
        bits = int(reads.epc_bits[row])
        item = self.by_epc.get(words_to_epc(reads.epc_words[row], bits))
        if item is None:
            events.unknown_rows.append(row)
            return
        portal_id = int(self.snapshot.portal_ids[reads.portal[row]])
        t, tid = int(reads.time_us[row]), int(reads.tid_hash[row])
        if reads.stale[row]:
            self._stale_read(item, portal_id, t, tid, events)
        else:
            self._read(item, portal_id, t, int(reads.side[row]) == SIDE_OUTSIDE, tid,
                       self._dbm(float(reads.rssi[row])), events)

    def _changed(self, portal_id: int, t: int) -> None:
        """A read at the portal opened a pass or made an item clearly present."""
        self.portal_change_us[portal_id] = t
        if self._watch_hit is None and portal_id in self._watched:
            self._watch_hit = t

    def _dbm(self, rssi: float) -> int:
        if not (self.config.rssi_min_dbm <= rssi <= self.config.rssi_max_dbm):  # NaN fails too
            return NO_RSSI
        return max(-127, min(127, math.floor(rssi + 0.5)))

    def _read(self, item: ItemSpec, portal_id: int, t: int, outside: bool, tid: int, dbm: int,
              events: CoreEvents) -> None:
        state = self.items[item.item_id]
        current = state.last_pass
        if current and current.is_open and current.portal_id == portal_id and \
                t - current.last_us <= self.config.settle_us:
            was_clear = self._clear(current)
            burst = current.outside if outside else current.inside
            if outside == current.last_outside:
                side_last = current.last_us
            else:
                side_last = current.other_side_last_us
                current.other_side_last_us = current.last_us
            if burst.reads == 0 or t - side_last > self.config.burst_gap_us:
                burst.reads, burst.peak_dbm = 1, dbm
            else:
                burst.reads = min(burst.reads + 1, MAX_BURST)
                burst.peak_dbm = max(burst.peak_dbm, dbm)
            current.last_us = t
            current.seen_outside |= outside
            current.seen_inside |= not outside
            current.last_outside = outside
            if not was_clear and self._clear(current):
                self._changed(portal_id, t)
        else:
            if current and current.is_open:
                self._settle(item, state, events)
            if current and current.portal_id != portal_id and self._too_fast(current, portal_id, t):
                events.alarms.append((A_CLONE, t, portal_id, item.item_id, CLONE_TRAVEL, False))
            if item.status == "destroyed":
                events.alarms.append((A_DESTROYED_SEEN, t, portal_id, item.item_id, 0, False))
            here, there = _Burst(1, dbm), _Burst()
            current = _Pass(portal_id, t, t, not outside, outside, outside, outside,
                            there if outside else here, here if outside else there, t)
            state.last_pass = current
            self.portal_new_us[portal_id] = t
            self._changed(portal_id, t)
        registered_tid = tid_hash(item.tid)
        if tid and registered_tid and tid != registered_tid and not current.tid_alarmed:
            events.alarms.append((A_CLONE, t, portal_id, item.item_id, CLONE_TID, False))
            current.tid_alarmed = True

    def _stale_read(self, item: ItemSpec, portal_id: int, t: int, tid: int, events: CoreEvents) -> None:
        last = self.items[item.item_id].last_pass
        if last is not None and last.portal_id != portal_id:
            gap = last.first_us - t if t < last.first_us else max(0, t - last.last_us)
            if self._too_far(last.portal_id, portal_id, gap):
                events.alarms.append((A_CLONE, t, portal_id, item.item_id, CLONE_TRAVEL, True))
        if item.status == "destroyed":
            events.alarms.append((A_DESTROYED_SEEN, t, portal_id, item.item_id, 0, True))
        registered_tid = tid_hash(item.tid)
        if tid and registered_tid and tid != registered_tid:
            events.alarms.append((A_CLONE, t, portal_id, item.item_id, CLONE_TID, True))

    def _too_far(self, from_portal: int, to_portal: int, gap_us: int) -> bool:
        a, b = self.portals[from_portal], self.portals[to_portal]
        dx, dy = b.x_m - a.x_m, b.y_m - a.y_m
        return gap_us * self.config.max_speed_m_per_s < math.sqrt(dx * dx + dy * dy) * 1e6

    def _too_fast(self, last: _Pass, portal_id: int, t: int) -> bool:
        return self._too_far(last.portal_id, portal_id, t - last.last_us)

    def _strength(self, burst: _Burst) -> float:
        c = self.config
        count = min(1.0, burst.reads / c.side_reads_full)
        if burst.peak_dbm == NO_RSSI:
            return count
        return count * min(1.0, max(0.0, (burst.peak_dbm - c.rssi_weak_dbm) / (c.rssi_strong_dbm - c.rssi_weak_dbm)))

    def _settle(self, item: ItemSpec, state: _ItemState, events: CoreEvents) -> None:
        done = state.last_pass
        assert done is not None
        done.is_open = False
        if not (done.seen_inside and done.seen_outside and done.first_outside != done.last_outside):
            return
        if done.inside.reads + done.outside.reads < self.config.min_reads:
            return
        confidence = min(self._strength(done.inside), self._strength(done.outside))
        if confidence < self.config.movement_confidence_min:
            return  # bleed or a weak glimpse of the far side: not a crossing
        done.moved = True
        portal = self.portals[done.portal_id]
        is_exit = not done.first_outside
        src, dst = portal.inside_venue_id, portal.outside_venue_id
        if not is_exit:
            src, dst = dst, src
        events.movements.append(Movement(item.item_id, done.portal_id, "exit" if is_exit else "entry",
                                         done.last_us, src, dst, confidence))
        state.venue_id = dst
        level = self._level(item)
        if not self._in_transit(state, src, dst) and self._venue_rejects(dst, level):
            events.alarms.append((A_VENUE_CEILING, done.last_us, done.portal_id, item.item_id, 0, False))
        if is_exit and self._needs_approval(done.portal_id, level):
            # allowed during this pass, and still inside at most door_grant_us after the allow
            covered = state.allow_portal_id == done.portal_id and \
                done.first_us - self.config.reach_us <= state.allow_us and \
                done.other_side_last_us <= state.allow_us + self.config.door_grant_us
            if not covered:
                events.alarms.append((A_UNAUTHORIZED_EXIT, done.last_us, done.portal_id, item.item_id, 0, False))

    def _in_transit(self, state: _ItemState, src: int | None, dst: int | None) -> bool:
        """Is the item carried on through dst in custody on its route? Ends the custody otherwise."""
        approval = self.approvals.get(state.custody_approval_id) if state.custody_approval_id is not None else None
        target = self._target(approval) if approval is not None else None
        if target is not None and self._node(dst) != target and self._closer(target, self._node(src), self._node(dst)):
            return True
        state.custody_approval_id = None  # arrived, or off the route: ceilings apply from here on
        return False

    def settle_due(self, horizon_us: int) -> CoreEvents:
        events = CoreEvents()
        for item_id, state in self.items.items():
            done = state.last_pass
            if done and done.is_open and horizon_us - done.last_us > self.config.settle_us:
                self._settle(self.by_id[item_id], state, events)
        return events

    # --- decisions ----------------------------------------------------------------------------
    def _covers(self, person: PersonSpec, person_ids: tuple[int, ...], group_ids: tuple[int, ...]) -> bool:
        return person.person_id in person_ids or bool(set(person.group_ids) & set(group_ids))

    def decide(self, portal_index: int, person_index: int, badge_us: int, ts_people: int,
               entry: bool = False) -> list[ItemVerdict]:
        """Every item within reach of the portal for a badge at badge_us, with its verdict as if it left.

        entry: the door opens for someone coming in; an item inside within reach could leave through
        it, so it is judged the same way, but items outside (being brought in) are not."""
        c = self.config
        portal_id = int(self.snapshot.portal_ids[portal_index])
        outside = self.portals[portal_id].outside_venue_id
        verdicts = []
        for item_id, state in self.items.items():
            live = state.last_pass
            if live is None or live.portal_id != portal_id or live.last_us < badge_us - c.reach_us:
                continue
            if state.venue_id == outside and (entry or not live.seen_inside):
                continue  # outside it is: read only outside, or being brought in
            if live.moved and not live.first_outside:
                continue  # already left through this door
            clear = self._clear(live)  # read only outside, yet not known to be outside: not clear
            reasons, approval_id, new_use = 0, None, False
            if person_index >= 0:
                reasons, approval_id, new_use = self._item_verdict(self.by_id[item_id], self.people[person_index],
                                                                   portal_id, badge_us, ts_people)
            verdicts.append(ItemVerdict(item_id, reasons, approval_id, new_use, not clear, live.first_us,
                                        live.first_us < badge_us - c.association_us))
        self._decided = verdicts
        return verdicts

    def judge(self, portal_index: int, person_index: int, badge_us: int, ts_people: int,
              entry: bool = False) -> tuple[int, int, int]:
        """decide, summarized (tracking.types.summarize); verdicts gives its verdicts."""
        return summarize(self.decide(portal_index, person_index, badge_us, ts_people, entry))

    def verdicts(self) -> list[ItemVerdict]:
        """The verdicts of the last decide."""
        return self._decided

    def _clear(self, live: _Pass) -> bool:
        """Is the item clearly present inside: enough reads in its inside burst, or one strong read?"""
        burst, c = live.inside, self.config
        return live.seen_inside and (burst.reads >= c.presence_min_reads
                                     or (burst.peak_dbm != NO_RSSI and burst.peak_dbm >= c.presence_rssi_dbm))

    def _item_verdict(self, item: ItemSpec, person: PersonSpec, portal_id: int, badge_us: int,
                      ts_people: int) -> tuple[int, int | None, bool]:
        """(reasons, covering approval, whether it spends a use) for the item leaving through portal."""
        portal = self.portals[portal_id]
        level = self._level(item)
        reasons = 0
        if item.status in ("destroyed", "seized"):
            reasons |= R_ITEM_STATUS
        if level > person.clearance:
            reasons |= R_CLEARANCE
        if level == TOP_SECRET and ts_people < 2:
            reasons |= R_TWO_PERSON
        if portal.border and level == TOP_SECRET:
            reasons |= R_BORDER
        state = self.items[item.item_id]
        custody = self.approvals.get(state.custody_approval_id) if state.custody_approval_id is not None else None
        needs = self._needs_approval(portal_id, level)
        abroad = portal.border and level >= 1
        kinds = ("abroad",) if abroad else ("carry_out", "transfer", "abroad")
        chosen: ApprovalSpec | None = None
        new_use = False
        live = state.last_pass
        assert live is not None
        if state.allow_portal_id == portal_id and state.allow_us >= badge_us - self.config.two_person_us \
                and state.allow_us >= live.first_us - self.config.reach_us:
            # already allowed out in this crossing (during this pass, within the two-person window):
            # a companion needs no second approval or scope
            if custody is not None and self._on_route(custody, portal_id):
                chosen = custody
            return reasons | self._ceiling(chosen, portal.outside_venue_id, level), \
                None if chosen is None else chosen.approval_id, False
        matching = [
            a for a in self.site.approvals
            if item.item_id in a.item_ids and a.kind in kinds and self._covers(person, a.person_ids, a.group_ids)
            and self._on_route(a, portal_id)
        ]
        timely = [a for a in matching if a.valid_from_us <= badge_us < a.valid_until_us]
        if custody is not None and custody in timely:
            chosen = custody  # carried on along its route: no second use
        elif needs:
            usable = [a for a in matching if self.uses[a.approval_id] > 0]
            valid = [a for a in usable if a in timely]
            if valid:
                chosen, new_use = valid[0], True
            elif usable:
                reasons |= R_APPROVAL_EXPIRED
            elif matching:
                reasons |= R_APPROVAL_USED_UP
            else:
                reasons |= R_ABROAD_MISSING if abroad else R_APPROVAL_MISSING
        reasons |= self._ceiling(chosen, portal.outside_venue_id, level)
        in_scope = self._covers(person, item.scope_person_ids, item.scope_group_ids)
        if level >= 1 and chosen is None and not in_scope:
            reasons |= R_SCOPE
        return reasons, None if chosen is None else chosen.approval_id, new_use

    def _ceiling(self, approval: ApprovalSpec | None, next_venue: int | None, level: int) -> int:
        """destination_ceiling where the item comes to rest: the approval's destination, else next_venue."""
        target = self._target(approval) if approval is not None else None
        rest = next_venue if target is None else None if target == OUTSIDE else target
        return R_DESTINATION_CEILING if self._venue_rejects(rest, level) else 0

    def commit_allow(self, item_ids: Sequence[int], approval_ids: Sequence[int | None], portal_index: int,
                     allow_us: int) -> None:
        """The items leave through the portal; an approval with a destination takes them into custody."""
        portal_id = int(self.snapshot.portal_ids[portal_index])
        for item_id, approval_id in zip(item_ids, approval_ids, strict=True):
            state = self.items[item_id]
            state.allow_portal_id, state.allow_us = portal_id, allow_us
            approval = self.approvals.get(approval_id) if approval_id is not None else None
            if approval is not None and self._target(approval) is not None:
                state.custody_approval_id = approval_id

    def commit_decided(self, portal_index: int, allow_us: int) -> None:
        """commit_allow of every item of the last decide, with the approval it chose: the allow of that decision."""
        self.commit_allow([v.item_id for v in self._decided], [v.approval_id for v in self._decided], portal_index,
                          allow_us)

    def portal_new(self, portal_index: int) -> int:
        """When a tag last newly appeared at the portal (opened a pass there)."""
        return self.portal_new_us.get(int(self.snapshot.portal_ids[portal_index]), -(2**62))

    def portal_changed(self, portal_index: int) -> int:
        """When a read at the portal last opened a pass or made an item's presence clear."""
        return self.portal_change_us.get(int(self.snapshot.portal_ids[portal_index]), -(2**62))

    def consume(self, approval_id: int, uses: int = 1) -> None:
        self.uses[approval_id] = max(0, self.uses[approval_id] - uses)

    def uses_left(self, approval_id: int) -> int:
        return self.uses[approval_id]

    # --- inventory ----------------------------------------------------------------------------
    def venue_of(self, item_id: int) -> int | None:
        return self.items[item_id].venue_id

    def sweep(self, venue_id: int, epcs: list[str]) -> tuple[list[int], list[int], list[str], list[int]]:
        """(missing, registered elsewhere, unregistered EPCs, destroyed seen) for a venue sweep."""
        seen: set[int] = set()
        unregistered: list[str] = []
        for epc in epcs:
            item = self.by_epc.get(epc.upper())
            if item is None:
                unregistered.append(epc.upper())
            else:
                seen.add(item.item_id)
        missing = [i for i, s in self.items.items()
                   if s.venue_id == venue_id and i not in seen and self.by_id[i].status != "destroyed"]
        destroyed = [i for i in seen if self.by_id[i].status == "destroyed"]
        elsewhere = [i for i in seen if self.items[i].venue_id != venue_id and self.by_id[i].status != "destroyed"]
        return sorted(missing), sorted(elsewhere), sorted(set(unregistered)), sorted(destroyed)

"""Pure-Python reference core: the readable statement of the tracking rules (domain-rules.md s. 4).

It works on the SiteModel directly (dicts keyed by register ids) and is the oracle the Numba core
is tested against; it is also the fallback backend. Both cores are driven by tracking.engine in the
same order (time-ordered reads, badge decisions at their deadline, settling at the horizon).

Rules, per read of item I at portal P on side S at time T:
- A *pass* is the run of reads of I at one portal with gaps of at most settle_us. A read at another
  portal, or after a longer gap, settles the open pass and opens a new one.
- Opening a pass at P right after a read at another portal Q too far away for max_speed: possible
  clone (impossible travel). A destroyed item opening a pass: destroyed item seen. A TID that
  differs from the register: possible clone, once per pass.
- Settling a pass gives a movement only if it has >= min_reads reads, both sides saw it, and the
  first and last sides differ (inside first = exit). Otherwise it was a stray or uncertain read:
  no movement, no alarm (rule 8). A movement updates the item's venue; arriving in a venue above its
  ceiling (or a top-secret item in a non-designated venue) raises venue_ceiling; an exit that needs
  an approval without an allow decision covering it raises unauthorized_exit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tracking.codes import SIDE_OUTSIDE
from tracking.epc import tid_hash, words_to_epc
from tracking.model import TOP_SECRET, ApprovalSpec, EngineConfig, ItemSpec, PersonSpec, SiteModel
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
from tracking.types import CoreEvents, ItemVerdict, ValidReads


@dataclass
class _Pass:
    portal_id: int
    first_us: int
    last_us: int
    reads: int
    seen_inside: bool
    seen_outside: bool
    first_outside: bool
    last_outside: bool
    is_open: bool = True
    tid_alarmed: bool = False


@dataclass
class _ItemState:
    venue_id: int | None
    last_pass: _Pass | None = None
    allow_portal_id: int | None = None
    allow_us: int = -1


@dataclass
class ReferenceCore:
    """Plain-Python core over a SiteModel; see the module docstring for the rules."""

    snapshot: Snapshot
    config: EngineConfig
    items: dict[int, _ItemState] = field(default_factory=dict)
    uses: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.swap(self.snapshot, keep_state=False)

    # --- register -----------------------------------------------------------------------------
    def swap(self, snapshot: Snapshot, keep_state: bool = True) -> None:
        """Use a new register: venues and approval uses come from it; passes carry over by id."""
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
        portal_ids = set(self.portals)
        self.items = {}
        for it in site.items:
            state = _ItemState(venue_id=it.venue_id)
            previous = old.get(it.item_id)
            if previous is not None and previous.last_pass is not None \
                    and previous.last_pass.portal_id in portal_ids:
                state.last_pass = previous.last_pass
            if previous is not None and previous.allow_portal_id in portal_ids:
                state.allow_portal_id, state.allow_us = previous.allow_portal_id, previous.allow_us
            self.items[it.item_id] = state
        self.uses = {a.approval_id: a.uses_left for a in site.approvals}

    def _level(self, item: ItemSpec) -> int:
        return 0 if item.status == "declassified" else item.level

    def _venue_rejects(self, venue_id: int | None, level: int) -> bool:
        if venue_id is None:
            return False
        venue = self.venues[venue_id]
        return level > venue.ceiling or (level == TOP_SECRET and not venue.top_secret_designated)

    def _needs_approval(self, portal_id: int, level: int) -> bool:
        portal = self.portals[portal_id]
        outside = portal.outside_venue_id
        lower = outside is None or self.venues[outside].ceiling < self.venues[portal.inside_venue_id].ceiling
        return lower or (portal.border and level >= 1)

    # --- reads --------------------------------------------------------------------------------
    def apply_reads(self, reads: ValidReads) -> CoreEvents:
        events = CoreEvents()
        for row in range(len(reads.time_us)):
            bits = int(reads.epc_bits[row])
            item = self.by_epc.get(words_to_epc(reads.epc_words[row], bits))
            if item is None:
                events.unknown_rows.append(row)
                continue
            portal_id = int(self.snapshot.portal_ids[reads.portal[row]])
            self._read(item, portal_id, int(reads.time_us[row]), int(reads.side[row]) == SIDE_OUTSIDE,
                       int(reads.tid_hash[row]), events)
        return events

    def _read(self, item: ItemSpec, portal_id: int, t: int, outside: bool, tid: int,
              events: CoreEvents) -> None:
        state = self.items[item.item_id]
        current = state.last_pass
        if current and current.is_open and current.portal_id == portal_id and \
                t - current.last_us <= self.config.settle_us:
            current.last_us = t
            current.reads = min(current.reads + 1, 32767)
            current.seen_outside |= outside
            current.seen_inside |= not outside
            current.last_outside = outside
        else:
            if current and current.is_open:
                self._settle(item, state, events)
            if current and current.portal_id != portal_id and self._too_fast(current, portal_id, t):
                events.alarms.append((A_CLONE, t, portal_id, item.item_id, CLONE_TRAVEL))
            if item.status == "destroyed":
                events.alarms.append((A_DESTROYED_SEEN, t, portal_id, item.item_id, 0))
            current = _Pass(portal_id, t, t, 1, not outside, outside, outside, outside)
            state.last_pass = current
        registered_tid = tid_hash(item.tid)
        if tid and registered_tid and tid != registered_tid and not current.tid_alarmed:
            events.alarms.append((A_CLONE, t, portal_id, item.item_id, CLONE_TID))
            current.tid_alarmed = True

    def _too_fast(self, last: _Pass, portal_id: int, t: int) -> bool:
        a, b = self.portals[last.portal_id], self.portals[portal_id]
        dx, dy = b.x_m - a.x_m, b.y_m - a.y_m
        distance_m = math.sqrt(dx * dx + dy * dy)
        return (t - last.last_us) * self.config.max_speed_m_per_s < distance_m * 1e6

    def _settle(self, item: ItemSpec, state: _ItemState, events: CoreEvents) -> None:
        done = state.last_pass
        assert done is not None
        done.is_open = False
        crossed = done.first_outside != done.last_outside
        if not (done.seen_inside and done.seen_outside and crossed and done.reads >= self.config.min_reads):
            return
        portal = self.portals[done.portal_id]
        is_exit = not done.first_outside
        src, dst = portal.inside_venue_id, portal.outside_venue_id
        if not is_exit:
            src, dst = dst, src
        direction = "exit" if is_exit else "entry"
        events.movements.append(Movement(item.item_id, done.portal_id, direction, done.last_us, src, dst))
        state.venue_id = dst
        level = self._level(item)
        if self._venue_rejects(dst, level):
            events.alarms.append((A_VENUE_CEILING, done.last_us, done.portal_id, item.item_id, 0))
        if is_exit and self._needs_approval(done.portal_id, level):
            covered = state.allow_portal_id == done.portal_id and \
                state.allow_us >= done.first_us - self.config.association_us
            if not covered:
                events.alarms.append((A_UNAUTHORIZED_EXIT, done.last_us, done.portal_id, item.item_id, 0))

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

    def decide(self, portal_index: int, person_index: int, badge_us: int, decide_us: int,
               ts_badges: int) -> list[ItemVerdict]:
        portal_id = int(self.snapshot.portal_ids[portal_index])
        verdicts = []
        for item_id, state in self.items.items():
            live = state.last_pass
            if live is None or not live.is_open or live.portal_id != portal_id or not live.seen_inside:
                continue
            if decide_us - live.last_us > self.config.settle_us:
                continue
            if live.first_us < badge_us - self.config.association_us:
                continue  # resting near the portal since before the badge: a stray, not carried
            if person_index < 0:
                verdicts.append(ItemVerdict(item_id, 0, None))
            else:
                person = self.people[person_index]
                verdicts.append(self._item_verdict(self.by_id[item_id], person, portal_id, badge_us, ts_badges))
        return verdicts

    def _item_verdict(self, item: ItemSpec, person: PersonSpec, portal_id: int, badge_us: int,
                      ts_badges: int) -> ItemVerdict:
        portal = self.portals[portal_id]
        level = self._level(item)
        reasons = 0
        if item.status in ("destroyed", "seized"):
            reasons |= R_ITEM_STATUS
        if level > person.clearance:
            reasons |= R_CLEARANCE
        if level == TOP_SECRET and ts_badges < 2:
            reasons |= R_TWO_PERSON
        if portal.outside_venue_id is not None and self._venue_rejects(portal.outside_venue_id, level):
            reasons |= R_DESTINATION_CEILING
        if portal.border and level == TOP_SECRET:
            reasons |= R_BORDER
        chosen: ApprovalSpec | None = None
        state = self.items[item.item_id]
        live = state.last_pass
        assert live is not None
        if state.allow_portal_id == portal_id and state.allow_us >= live.first_us - self.config.association_us:
            # already allowed out in this crossing: a companion needs no second approval or scope
            return ItemVerdict(item.item_id, reasons, None)
        if self._needs_approval(portal_id, level):
            abroad = portal.border and level >= 1
            kinds = ("abroad",) if abroad else ("carry_out", "transfer")
            matching = [
                a for a in self.site.approvals
                if item.item_id in a.item_ids and a.kind in kinds
                and self._covers(person, a.person_ids, a.group_ids)
                and a.portal_id in (None, portal_id)
                and a.destination_venue_id in (None, portal.outside_venue_id)
            ]
            usable = [a for a in matching if self.uses[a.approval_id] > 0]
            valid = [a for a in usable if a.valid_from_us <= badge_us < a.valid_until_us]
            if valid:
                chosen = valid[0]
            elif usable:
                reasons |= R_APPROVAL_EXPIRED
            elif matching:
                reasons |= R_APPROVAL_USED_UP
            else:
                reasons |= R_ABROAD_MISSING if abroad else R_APPROVAL_MISSING
        in_scope = self._covers(person, item.scope_person_ids, item.scope_group_ids)
        if level >= 1 and chosen is None and not in_scope:
            reasons |= R_SCOPE
        return ItemVerdict(item.item_id, reasons, None if chosen is None else chosen.approval_id)

    def commit_allow(self, item_ids: list[int], portal_index: int, decide_us: int) -> None:
        portal_id = int(self.snapshot.portal_ids[portal_index])
        for item_id in item_ids:
            self.items[item_id].allow_portal_id = portal_id
            self.items[item_id].allow_us = decide_us

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

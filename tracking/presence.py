"""People in venues: who is where, from the engine's badge decisions, and the rules that depend on it.

A granted badge moves its person through the portal: an exit badge from the portal's inside venue to its
outside (None = the outside of the unit), an entry badge the other way. A guard's override moves the
blocked person; while a fire alarm releases the doors a badge moves its person whatever the decision
(they may have gone through), marked uncertain, and so is a move by an override of a tailgating block.
When the portal's camera counts more people through an opened door than badged, the places of those who
badged become uncertain (cause 'tailgating': someone unnamed came with them).
People who never badged (or whom the register does not place) have an unknown location. The engine
starts from the register's last known places (SiteModel.presence); at a snapshot swap it keeps its own
places and takes the register's where they are newer.

Rules (domain-rules.md section 3; reason and alarm ids in tracking.results):
- anti-passback, per portal (PortalSpec.anti_passback): a badge leaving a venue its person is not known
  to be in is refused ('anti_passback') or allowed with an 'anti_passback' alarm. A place that is
  uncertain, or a person a guard has forgiven, is not checked (the next badge settles the place again);
- escorts (Art. 27(7)): a visitor goes through a portal only with an escort (not a visitor, clearance at
  least the ceiling of the venues on both sides) badging the same way at that portal within the
  two-person window ('escort_missing'; like the two-person rule it holds until the cap, so an escort
  badging just after still counts), and stays in a venue only while an escort is in it: when the last
  escort leaves, or a visitor comes in without one staying, the engine looks again one window later
  (the visitor may be leaving with the escort) and raises 'visitor_unescorted' if nothing changed;
- meetings (Art. 45): inside a meeting's window, only its participants badge into its venue
  ('meeting_not_participant').
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from tracking.model import EngineConfig, PortalSpec, SiteModel
from tracking.results import R_ANTI_PASSBACK, R_ESCORT_MISSING, R_MEETING_NOT_PARTICIPANT, PresenceChange


class Place(NamedTuple):
    """Where a person is: a venue id (None = the outside of the unit), since when, and how sure.

    Place, Verdict and Moved are named tuples: every badge builds some, and a frozen dataclass costs a
    microsecond to build."""

    venue_id: int | None
    since_us: int
    uncertain: bool = False


class Verdict(NamedTuple):
    """What the people rules say about one badge: reasons to refuse now, reasons to hold (an escort may
    still badge), and whether anti-passback wants an alarm if the badge is allowed."""

    refuse: int = 0
    wait: int = 0
    passback_alarm: bool = False


class Moved(NamedTuple):
    """A move and what the engine must do about it: raise an anti-passback alarm, look at the escort of
    these venues again one window later."""

    change: PresenceChange
    passback_alarm: bool
    escort_checks: tuple[int, ...]


NO_VERDICT = Verdict()
_new = tuple.__new__  # a named tuple from the tuple of all its fields, without its Python __new__


class People:
    """The presence state of a site and its people rules; pure Python, shared by both engine backends."""

    def __init__(self, site: SiteModel, config: EngineConfig) -> None:
        self.config = config
        self.where: dict[int, Place] = {}
        self._by_venue: dict[int | None, set[int]] = {}  # venue -> people in it (what every move looks at)
        self._visitors_in: dict[int | None, set[int]] = {}  # venue -> the visitors among them
        self._visitor: set[int] = set()
        self.forgiven: set[int] = set()
        self._alarmed: dict[int, frozenset[int]] = {}  # venue -> visitors last alarmed as unescorted there
        self.use(site)

    def use(self, site: SiteModel) -> None:
        """Take a new register's people, venues, portals and meetings. A place the register knows is taken when
        it is newer than the engine's own (moves this engine recorded after a restart, another node's moves);
        otherwise places carry over."""
        self._visitor = {p.person_id for p in site.people if p.visitor}
        self._visitors_in = {}
        for venue_id, people in self._by_venue.items():
            self._visitors_in[venue_id] = people & self._visitor
        for p in site.presence:
            known = self.where.get(p.person_id)
            if known is None or p.since_us > known.since_us:
                self._place(p.person_id, Place(p.venue_id, p.since_us, p.uncertain))
        self._portals = {p.portal_id: p for p in site.portals}
        self._ceiling = {v.venue_id: v.ceiling for v in site.venues}
        self._clearance = {p.person_id: p.clearance for p in site.people}
        self._meetings = {}
        for m in site.meetings:
            self._meetings.setdefault(m.venue_id, []).append(m)
        # portals where no people rule can apply to anyone but a visitor: verdict answers at once there
        self._ruleless = {p.portal_id for p in site.portals if p.anti_passback == "off"
                          and p.inside_venue_id not in self._meetings and p.outside_venue_id not in self._meetings}

    # --- places -------------------------------------------------------------------------------
    @staticmethod
    def sides(portal: PortalSpec, direction: str) -> tuple[int | None, int | None]:
        """(from venue, to venue) of a badge at the portal in that direction."""
        if direction == "entry":
            return portal.outside_venue_id, portal.inside_venue_id
        return portal.inside_venue_id, portal.outside_venue_id

    def inside(self, venue_id: int | None) -> list[int]:
        """The people last known in the venue, by id."""
        return sorted(self._by_venue.get(venue_id, ()))

    def counts(self) -> Counter[int | None]:
        """People per venue (None: known to be outside the unit)."""
        return Counter({venue: len(people) for venue, people in self._by_venue.items() if people})

    def _place(self, person_id: int, place: Place) -> Place | None:
        """Put the person at place; returns where they were before (None: unknown)."""
        before = self.where.get(person_id)
        if self._visitor and person_id in self._visitor:
            if before is not None:
                self._visitors_in[before.venue_id].discard(person_id)
            self._visitors_in.setdefault(place.venue_id, set()).add(person_id)
        if before is not None:
            self._by_venue[before.venue_id].discard(person_id)
        self.where[person_id] = place
        people = self._by_venue.get(place.venue_id)
        if people is None:
            people = self._by_venue[place.venue_id] = set()
        people.add(person_id)
        return before

    def forgive(self, person_id: int) -> None:
        self.forgiven.add(person_id)

    def mark_uncertain(self, person_id: int, portal_id: int, time_us: int) -> PresenceChange | None:
        """More people went through a door than badged: the place of one who did is no longer certain (they
        stay where they are; None when it was uncertain already)."""
        place = self.where.get(person_id)
        if place is None or place.uncertain:
            return None
        self._place(person_id, _new(Place, (place.venue_id, time_us, True)))
        return PresenceChange(person_id, portal_id, place.venue_id, place.venue_id, time_us, "tailgating", True)

    # --- rules --------------------------------------------------------------------------------
    def verdict(self, person_id: int, portal_id: int, direction: str, badge_us: int,
                companions: Iterable[int]) -> Verdict:
        """The people rules for a badge; companions: other people who badged the same way at the portal
        within the two-person window (fresh, active badges)."""
        if portal_id in self._ruleless and person_id not in self._visitor:  # every badge comes here: keep it short
            return NO_VERDICT
        portal = self._portals.get(portal_id)
        if portal is None:
            return NO_VERDICT
        if direction == "entry":  # self.sides, inline: every evaluation of a badge comes here
            src, dst = portal.outside_venue_id, portal.inside_venue_id
        else:
            src, dst = portal.inside_venue_id, portal.outside_venue_id
        refuse, wait, alarm = 0, 0, False
        if portal.anti_passback != "off" and self._passback(person_id, src):
            if portal.anti_passback == "refuse":
                refuse |= R_ANTI_PASSBACK
            else:
                alarm = True
        if person_id in self._visitor:
            need = max((self._ceiling.get(v, 0) for v in (src, dst) if v is not None), default=0)
            if not any(q != person_id and q not in self._visitor and self._clearance.get(q, -1) >= need
                       for q in companions):
                wait |= R_ESCORT_MISSING
        for meeting in self._meetings.get(dst, ()) if dst is not None else ():
            if meeting.start_us <= badge_us < meeting.end_us and person_id not in meeting.participant_ids:
                refuse |= R_MEETING_NOT_PARTICIPANT
        return Verdict(refuse, wait, alarm) if refuse or wait or alarm else NO_VERDICT

    def _passback(self, person_id: int, src: int | None) -> bool:
        """Is the person known to be somewhere other than the venue the badge leaves?"""
        place = self.where.get(person_id)
        if place is None or place.uncertain or person_id in self.forgiven:
            return False
        return place.venue_id != src

    def move(self, person_id: int, portal_id: int, direction: str, time_us: int, cause: str = "badge",
             uncertain: bool = False, item_ids: tuple[int, ...] = ()) -> Moved | None:
        """Move a person through a portal (None for a portal the register no longer has)."""
        portal = self._portals.get(portal_id)
        if portal is None:
            return None
        if direction == "entry":  # self.sides, inline: every allowed badge comes here
            src, dst = portal.outside_venue_id, portal.inside_venue_id
        else:
            src, dst = portal.inside_venue_id, portal.outside_venue_id
        passback = portal.anti_passback == "alarm" and cause == "badge" and self._passback(person_id, src)
        if self.forgiven:
            self.forgiven.discard(person_id)
        before = self._place(person_id, _new(Place, (dst, time_us, uncertain)))
        checks: tuple[int, ...] = ()
        if self._visitor or self._alarmed:  # else no venue has a visitor, nor an alarm about one, to look at
            look: list[int] = []
            left = before.venue_id if before is not None else src
            if left is not None and left != dst and self.unescorted(left):
                look.append(left)  # the last escort may have left (or a visitor is still there)
            if dst is not None:
                if not self.unescorted(dst):
                    self._alarmed.pop(dst, None)
                elif person_id in self._visitor:
                    look.append(dst)  # came in with nobody to stay with them (their escort may follow)
            checks = tuple(look)
        change = PresenceChange(person_id, portal_id, src, dst, time_us, cause, uncertain, item_ids)
        return _new(Moved, (change, passback, checks))

    def unescorted(self, venue_id: int) -> tuple[int, ...]:
        """Visitors in the venue with no escort there (nobody not a visitor, cleared to its ceiling)."""
        visitors = self._visitors_in.get(venue_id)
        if not visitors:  # kept per venue: a move must not scan everyone in the venues it joins
            return ()
        need = self._ceiling.get(venue_id, 0)
        if any(p not in self._visitor and self._clearance.get(p, -1) >= need for p in self._by_venue[venue_id]):
            return ()
        return tuple(sorted(visitors))

    def unescorted_alarm(self, venue_id: int) -> tuple[int, ...]:
        """The visitors to raise 'visitor_unescorted' for now: unescorted, and not alarmed already as such."""
        visitors = self.unescorted(venue_id)
        if not visitors:
            self._alarmed.pop(venue_id, None)
            return ()
        if self._alarmed.get(venue_id) == frozenset(visitors):
            return ()
        self._alarmed[venue_id] = frozenset(visitors)
        return visitors

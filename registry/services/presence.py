"""People in venues as the register keeps them: last known places (from the engine's badge decisions),
the items people carried out or brought in (access records, Art. 20; items of a meeting, Art. 45), the
fire muster list and a meeting's report.

The engine decides; the site's recorder hands each move here once (controllers.records.PersonMoved and
ItemBroughtIn). A place is a fact the engine acted on, so it is kept even when an effect that depends on
it (a reading the register would not allow) is refused; the refusal is journaled with the move.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import journal, validate
from registry.errors import InvalidInput, NotFound
from registry.models import (
    PRESENCE_CAUSES,
    Item,
    Meeting,
    MeetingItem,
    Person,
    Portal,
    PresenceEntry,
    Venue,
)
from registry.services import items as item_service

MUSTER_STATUSES = ("active", "in_transit", "destruction_failed")  # items that can be physically somewhere


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def from_us(time_us: int) -> dt.datetime:
    """Exact to the microsecond (the engine compares the places it compiles back by time)."""
    return EPOCH + dt.timedelta(microseconds=time_us)


@dataclass(frozen=True, slots=True)
class Move:
    """A person through a portal, as the engine decided it (tracking.results.PresenceChange, by register id)."""

    person_id: int
    portal_id: int
    from_venue_id: int | None
    to_venue_id: int | None
    time_us: int
    cause: str = "badge"
    uncertain: bool = False


def record_move(session: Session, move: Move) -> PresenceEntry:
    """Keep the person's new place (one row per person: where they were last known to be)."""
    validate.choice(move.cause, PRESENCE_CAUSES, "cause")
    if session.get(Person, move.person_id) is None:
        raise NotFound("person", str(move.person_id))
    if move.to_venue_id is not None and session.get(Venue, move.to_venue_id) is None:
        raise NotFound("venue", str(move.to_venue_id))
    portal_id = move.portal_id if session.get(Portal, move.portal_id) is not None else None
    entry = session.get(PresenceEntry, move.person_id)
    if entry is None:
        entry = PresenceEntry(person_id=move.person_id)
        session.add(entry)
    entry.venue_id, entry.since, entry.portal_id = move.to_venue_id, from_us(move.time_us), portal_id
    entry.cause, entry.uncertain = move.cause, move.uncertain
    session.flush()
    return entry


def carried_out(session: Session, actor: str, move: Move, item_id: int, reference: str) -> None:
    """An item the exit decision let out with the person: a carry-out (Art. 20) and, when it leaves or enters
    a meeting's venue in its window, an item of that meeting."""
    item, person, portal = _item(session, item_id), _person(session, move.person_id), _portal(session, move.portal_id)
    at = from_us(move.time_us)
    item_service.record_access(session, actor, item, person, "carry_out",
                               item_service.AccessContext(portal=portal.code, reference=reference, at=at))
    _meeting_item(session, move.from_venue_id, at, item, person, "out", portal.code, reference)
    _meeting_item(session, move.to_venue_id, at, item, person, "in", portal.code, reference)


@dataclass(frozen=True, slots=True)
class Brought:
    """An item that crossed into a venue right after a person's granted entry there (tracking.results.ItemBrought)."""

    person_id: int
    item_id: int
    portal_id: int
    venue_id: int | None
    time_us: int


def brought_to_meeting(session: Session, brought: Brought, reference: str) -> None:
    """In a meeting's window at that venue, the item is one brought into the meeting."""
    item, person = _item(session, brought.item_id), _person(session, brought.person_id)
    portal = _portal(session, brought.portal_id)
    _meeting_item(session, brought.venue_id, from_us(brought.time_us), item, person, "in", portal.code, reference)


def read_in_venue(session: Session, actor: str, brought: Brought, reference: str) -> None:
    """The person reads the item in that venue (Art. 20), refused when the register would not allow it."""
    item, person = _item(session, brought.item_id), _person(session, brought.person_id)
    portal, at = _portal(session, brought.portal_id), from_us(brought.time_us)
    venue = session.get(Venue, brought.venue_id) if brought.venue_id is not None else None
    if venue is None:
        raise InvalidInput("venue", "a reading is recorded with the venue it takes place in")
    item_service.record_access(session, actor, item, person, "read",
                               item_service.AccessContext(venue=venue.code, portal=portal.code, reference=reference,
                                                          at=at))


def _meeting_item(session: Session, venue_id: int | None, at: dt.datetime, item: Item, person: Person,
                  direction: str, portal: str, reference: str) -> None:
    if venue_id is None:
        return
    meetings = session.execute(
        select(Meeting).where(Meeting.venue_id == venue_id, Meeting.starts_at <= at, Meeting.ends_at > at)
    ).scalars().all()
    for meeting in meetings:
        session.add(MeetingItem(meeting_id=meeting.id, item_id=item.id, person_id=person.id, direction=direction,
                                at=at, portal=portal, context=reference))
        session.flush()
        journal.append(session, "system", "meeting.item", f"meeting:{meeting.id}",
                       {"item": _subject(item), "person": person.username, "direction": direction,
                        "at": at.isoformat(), "portal": portal, "context": reference})


def _item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound("item", str(item_id))
    return item


def _person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("person", str(person_id))
    return person


def _portal(session: Session, portal_id: int) -> Portal:
    portal = session.get(Portal, portal_id)
    if portal is None:
        raise NotFound("portal", str(portal_id))
    return portal


def _subject(item: Item) -> str:
    return f"{item.register_number}/{item.copy_number}"


# --- the fire muster list ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MusterPerson:
    username: str
    name: str
    visitor: bool
    since: dt.datetime
    uncertain: bool  # the last move was not a granted badge (emergency release, an override of tailgating)


@dataclass(frozen=True, slots=True)
class MusterItem:
    item: str  # register/copy
    title: str
    level: int


@dataclass(frozen=True, slots=True)
class MusterVenue:
    code: str
    name: str
    people: tuple[MusterPerson, ...]
    items: tuple[MusterItem, ...]


@dataclass(frozen=True, slots=True)
class Muster:
    at: dt.datetime
    venues: tuple[MusterVenue, ...]

    def payload(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "venues": [
                {"venue": v.code, "people": [p.username for p in v.people],
                 "uncertain": [p.username for p in v.people if p.uncertain], "items": [i.item for i in v.items]}
                for v in self.venues
            ],
        }


def muster(session: Session) -> Muster:
    """Per venue, the people and the items last known inside (venues with neither are left out)."""
    people: dict[int, list[MusterPerson]] = {}
    rows = session.execute(
        select(PresenceEntry, Person).join(Person, Person.id == PresenceEntry.person_id)
        .where(PresenceEntry.venue_id.is_not(None)).order_by(Person.username)
    ).all()
    for entry, person in rows:
        people.setdefault(entry.venue_id, []).append(  # type: ignore[arg-type]
            MusterPerson(person.username, person.name, person.visitor, entry.since, entry.uncertain))
    things: dict[int, list[MusterItem]] = {}
    for item in session.execute(
        select(Item).where(Item.venue_id.is_not(None), Item.status.in_(MUSTER_STATUSES))
        .order_by(Item.register_number, Item.copy_number)
    ).scalars():
        things.setdefault(item.venue_id, []).append(  # type: ignore[arg-type]
            MusterItem(_subject(item), item.title, item.effective_level))
    venues = tuple(
        MusterVenue(v.code, v.name, tuple(people.get(v.id, ())), tuple(things.get(v.id, ())))
        for v in session.execute(select(Venue).order_by(Venue.code)).scalars()
        if v.id in people or v.id in things
    )
    return Muster(journal.now_utc(), venues)


def export_muster(session: Session, actor: str, note: str = "") -> tuple[Muster, int]:
    """The muster list as a journaled record (at the end of a fire release): (the list, its journal seq)."""
    found = muster(session)
    payload = found.payload()
    if note.strip():
        payload["note"] = note.strip()
    entry = journal.append(session, actor, "muster.exported", "site:muster", payload)
    return found, entry.seq


# --- a meeting's report ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MeetingItemLine:
    item: str
    title: str
    level: int
    person: str | None
    direction: str
    at: dt.datetime
    portal: str


@dataclass(frozen=True, slots=True)
class MeetingReport:
    meeting_id: int
    title: str
    venue: str
    level: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    participants: tuple[str, ...]
    items: tuple[MeetingItemLine, ...]


def meeting_report(session: Session, meeting_id: int) -> MeetingReport:
    """Art. 45: the participants of a meeting and every item brought into or out of it, in time order."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound("meeting", str(meeting_id))
    venue = session.get(Venue, meeting.venue_id)
    lines = tuple(
        MeetingItemLine(_subject(m.item), m.item.title, m.item.effective_level,
                        m.person.username if m.person else None, m.direction, m.at, m.portal)
        for m in session.execute(
            select(MeetingItem).where(MeetingItem.meeting_id == meeting.id).order_by(MeetingItem.at, MeetingItem.id)
        ).scalars()
    )
    return MeetingReport(meeting.id, meeting.title, venue.code if venue else "", meeting.level, meeting.starts_at,
                         meeting.ends_at, tuple(sorted(p.username for p in meeting.participants)), lines)

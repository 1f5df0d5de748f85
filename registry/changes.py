"""The typed "register changed" signal.

What counts as a change is declared once, here, by model: any committed transaction that inserts, updates
or deletes a row of a model in `TOPICS` leaves one `register_changes` row naming its topics and origin, in
the same transaction. So every write path (services, the site loader, the API, the CLI, another process
on the same database) signals by construction, and a reader polls one small table instead of matching
journal actions. In-process subscribers are also called right after the commit.

    changes.track(factory)                    # registry.db.session_factory does this
    unsubscribe = changes.subscribe(callback) # callback(RegisterChanged) after each commit, any thread
    changes.latest(session) -> int            # position of the newest change
    changes.since(session, position) -> list[RegisterChanged]

A session whose `info["origin"]` is set (the recorder sets its node id) stamps its changes with it, so a
site can tell its own writes (what its engine already knows) from everyone else's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from registry import journal
from registry.models import (
    Antenna,
    Approval,
    ApprovalDecision,
    Badge,
    Device,
    Group,
    Item,
    Meeting,
    Person,
    PersonRole,
    Portal,
    RegisterChange,
    Transfer,
    Venue,
    approval_groups,
    approval_items,
    approval_people,
    group_members,
    item_scope_groups,
    item_scope_people,
)


class Topic(StrEnum):
    PEOPLE = "people"  # people, their roles, badges and groups
    ITEMS = "items"  # items: marking, status, place, custody, scope
    SITE = "site"  # venues, portals, devices, antennas, meetings
    APPROVALS = "approvals"  # requests, decisions, uses
    TRANSFERS = "transfers"


TOPICS: dict[type, Topic] = {
    Person: Topic.PEOPLE,
    PersonRole: Topic.PEOPLE,
    Badge: Topic.PEOPLE,
    Group: Topic.PEOPLE,
    Item: Topic.ITEMS,
    Venue: Topic.SITE,
    Portal: Topic.SITE,
    Device: Topic.SITE,
    Antenna: Topic.SITE,
    Meeting: Topic.SITE,
    Approval: Topic.APPROVALS,
    ApprovalDecision: Topic.APPROVALS,
    Transfer: Topic.TRANSFERS,
}
# Association tables change through their owners' collections, which marks the owner dirty; listed for
# completeness of the declaration (what each topic covers).
ASSOCIATIONS = {
    group_members.name: Topic.PEOPLE,
    item_scope_people.name: Topic.ITEMS,
    item_scope_groups.name: Topic.ITEMS,
    approval_items.name: Topic.APPROVALS,
    approval_people.name: Topic.APPROVALS,
    approval_groups.name: Topic.APPROVALS,
}
_PENDING = "register_changes.pending"
_COMMITTING = "register_changes.committing"


@dataclass(frozen=True, slots=True)
class RegisterChanged:
    position: int  # id of the `register_changes` row; positions only grow
    topics: frozenset[Topic]
    origin: str  # "" for people's writes (API, CLI, loader); a recorder's node id for a site's own records


Subscriber = Callable[[RegisterChanged], None]
_subscribers: list[Subscriber] = []
_lock = threading.Lock()


def subscribe(callback: Subscriber) -> Callable[[], None]:
    """Call `callback` after every commit in this process that changed the register; returns unsubscribe."""
    with _lock:
        _subscribers.append(callback)

    def unsubscribe() -> None:
        with _lock:
            if callback in _subscribers:
                _subscribers.remove(callback)

    return unsubscribe


def latest(session: Session) -> int:
    return session.execute(select(func.coalesce(func.max(RegisterChange.id), 0))).scalar_one()


def since(session: Session, position: int) -> list[RegisterChanged]:
    rows = session.execute(
        select(RegisterChange).where(RegisterChange.id > position).order_by(RegisterChange.id)
    ).scalars()
    return [_signal(row) for row in rows]


def _signal(row: RegisterChange) -> RegisterChanged:
    return RegisterChanged(row.id, frozenset(Topic(t) for t in row.topics.split(",") if t), row.origin)


def _after_flush(session: Session, _context: object) -> None:
    found = {TOPICS[type(obj)] for obj in (*session.new, *session.dirty, *session.deleted) if type(obj) in TOPICS}
    if found:
        session.info.setdefault(_PENDING, set()).update(found)


def _before_commit(session: Session) -> None:
    session.flush()  # the last changes reach _after_flush first
    topics = session.info.pop(_PENDING, None)
    if not topics:
        return
    origin = str(session.info.get("origin", ""))
    text = ",".join(sorted(topics))
    result = session.connection().execute(
        insert(RegisterChange).values(at=journal.now_utc(), topics=text, origin=origin)
    )
    position = result.inserted_primary_key[0] if result.inserted_primary_key else 0
    session.info[_COMMITTING] = RegisterChanged(position, frozenset(topics), origin)


def _after_commit(session: Session) -> None:
    signal = session.info.pop(_COMMITTING, None)
    if signal is None:
        return
    with _lock:
        callbacks = list(_subscribers)
    for callback in callbacks:
        callback(signal)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction: committed (signalled) or rolled back
        session.info.pop(_PENDING, None)
        session.info.pop(_COMMITTING, None)


def track(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Make every session of `factory` record its register changes (idempotent)."""
    if not event.contains(factory, "after_flush", _after_flush):
        event.listen(factory, "after_flush", _after_flush)
        event.listen(factory, "before_commit", _before_commit)
        event.listen(factory, "after_commit", _after_commit)
        event.listen(factory, "after_transaction_end", _after_transaction_end)
    return factory

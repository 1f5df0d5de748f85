"""The alarm book's rows: what the site's alarm book (controllers.alarms) raised, acknowledged, resolved and
escalated, and the site's own operating steps per alarm kind.

The raise/acknowledge/resolve/escalate writes run as the effects of the site's records (controllers.records),
whose own journal entry is the audit trail; a procedure change is journalled here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import journal
from registry.errors import InvalidInput, NotFound, RuleViolation
from registry.models import AlarmProcedure, AlarmRecord

STATES = ("open", "acknowledged", "resolved")


@dataclass(frozen=True, slots=True)
class RaisedAlarm:
    site: str
    alarm_id: int
    kind: str
    category: str
    severity: str
    source: str
    at: dt.datetime
    portal_id: int | None = None
    venue: str = ""
    person: str = ""
    items: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    detail: str = ""
    frame_ref: str = ""


def record_raised(session: Session, alarm: RaisedAlarm) -> AlarmRecord:
    """A new alarm, or one more repeat of an open one the book coalesced under the same id."""
    row = session.get(AlarmRecord, (alarm.site, alarm.alarm_id))
    if row is not None:
        if row.kind != alarm.kind:
            raise RuleViolation("alarm.id_taken", f"alarm {alarm.alarm_id} is a {row.kind}, not a {alarm.kind}")
        row.repeats += 1
        row.last_at = max(row.last_at, alarm.at)
        session.flush()
        return row
    row = AlarmRecord(
        site=alarm.site, id=alarm.alarm_id, kind=alarm.kind, category=alarm.category, severity=alarm.severity,
        source=alarm.source,
        portal_id=alarm.portal_id, venue=alarm.venue, raised_at=alarm.at, last_at=alarm.at, repeats=1,
        person=alarm.person, items_json=json.dumps(list(alarm.items)), reasons_json=json.dumps(list(alarm.reasons)),
        detail=alarm.detail, frame_ref=alarm.frame_ref, state="open", acknowledged_by="", acknowledge_note="",
        resolved_by="", resolve_note="",
    )
    session.add(row)
    session.flush()
    return row


def _row(session: Session, site: str, alarm_id: int) -> AlarmRecord:
    row = session.get(AlarmRecord, (site, alarm_id))
    if row is None:
        raise NotFound("alarm", f"{site}/{alarm_id}")
    return row


def record_acknowledged(
    session: Session, site: str, alarm_id: int, user: str, at: dt.datetime, note: str
) -> AlarmRecord:
    row = _row(session, site, alarm_id)
    if row.state == "open":
        row.state, row.acknowledged_by, row.acknowledged_at, row.acknowledge_note = "acknowledged", user, at, note
        session.flush()
    return row


def record_resolved(session: Session, site: str, alarm_id: int, user: str, at: dt.datetime, note: str) -> AlarmRecord:
    row = _row(session, site, alarm_id)
    if row.state != "resolved":
        if row.acknowledged_at is None:  # resolved by the site itself (a device came back): no guard saw it
            row.acknowledged_by, row.acknowledged_at = user, at
        row.state, row.resolved_by, row.resolved_at, row.resolve_note = "resolved", user, at, note
        session.flush()
    return row


def record_escalated(session: Session, site: str, alarm_id: int, at: dt.datetime) -> AlarmRecord:
    row = _row(session, site, alarm_id)
    if row.escalated_at is None:
        row.escalated_at = at
        session.flush()
    return row


def unresolved(session: Session) -> list[AlarmRecord]:
    """Every alarm still open or acknowledged, oldest first (what a restarted book starts from)."""
    query = select(AlarmRecord).where(AlarmRecord.state != "resolved").order_by(AlarmRecord.id)
    return list(session.execute(query).scalars())


def recent_resolved(session: Session, limit: int = 50) -> list[AlarmRecord]:
    query = select(AlarmRecord).where(AlarmRecord.state == "resolved").order_by(AlarmRecord.id.desc()).limit(limit)
    return list(session.execute(query).scalars())


def highest_id(session: Session) -> int:
    return int(session.execute(select(func.max(AlarmRecord.id))).scalar_one() or 0)


def procedures(session: Session) -> dict[str, tuple[str, ...]]:
    rows = session.execute(select(AlarmProcedure)).scalars()
    return {row.kind: tuple(json.loads(row.steps_json)) for row in rows}


def set_procedure(session: Session, actor: str, kind: str, steps: list[str]) -> AlarmProcedure:
    """The site's operating steps for an alarm kind (empty: back to the built-in default)."""
    cleaned = [step.strip() for step in steps if step.strip()]
    if any(len(step) > 500 for step in cleaned) or len(cleaned) > 20:
        raise InvalidInput("steps", "at most 20 steps of at most 500 characters each")
    row = session.get(AlarmProcedure, kind)
    if row is None:
        row = AlarmProcedure(kind=kind, steps_json="[]", updated_by=actor, updated_at=journal.now_utc())
        session.add(row)
    row.steps_json, row.updated_by, row.updated_at = json.dumps(cleaned), actor, journal.now_utc()
    session.flush()
    journal.append(session, actor, "alarm.procedure_set", f"alarm_kind:{kind}", {"steps": cleaned})
    return row

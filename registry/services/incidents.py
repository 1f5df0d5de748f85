"""Incidents with their 24-hour reporting clock (Art. 61) and logged remedial actions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from registry import journal
from registry.errors import InvalidInput
from registry.models import Incident, IncidentAction

REPORT_WITHIN = dt.timedelta(hours=24)


def open_incident(
    session: Session,
    actor: str,
    kind: str,
    description: str,
    *,
    item_id: int | None = None,
    portal_id: int | None = None,
    person_id: int | None = None,
    at: dt.datetime | None = None,
) -> Incident:
    opened = at or journal.now_utc()
    incident = Incident(
        kind=kind,
        state="open",
        opened_at=opened,
        report_deadline=opened + REPORT_WITHIN,
        description=description,
        item_id=item_id,
        portal_id=portal_id,
        person_id=person_id,
    )
    session.add(incident)
    session.flush()
    journal.append(
        session,
        actor,
        "incident.opened",
        f"incident:{incident.id}",
        {
            "kind": kind,
            "description": description,
            "deadline": incident.report_deadline.isoformat(),
            "item_id": item_id,
            "portal_id": portal_id,
            "person_id": person_id,
        },
    )
    return incident


def add_action(session: Session, actor: str, incident: Incident, text: str) -> IncidentAction:
    if not text.strip():
        raise InvalidInput("text", "an action needs a description")
    action = IncidentAction(incident=incident, at=journal.now_utc(), actor=actor, text=text)
    session.add(action)
    session.flush()
    journal.append(session, actor, "incident.action", f"incident:{incident.id}", {"text": text})
    return action


def mark_reported(session: Session, actor: str, incident: Incident) -> Incident:
    incident.state = "reported"
    incident.reported_at = journal.now_utc()
    session.flush()
    journal.append(
        session,
        actor,
        "incident.reported",
        f"incident:{incident.id}",
        {"late": incident.reported_at > incident.report_deadline},
    )
    return incident


def time_left(incident: Incident, now: dt.datetime | None = None) -> dt.timedelta:
    """Negative once the deadline has passed."""
    return incident.report_deadline - (now or journal.now_utc())

"""Inspections (CE Art. 25, 26; Art. 56 self-inspection): who inspected (at least two people), what, what
they found and the remedial actions they ordered, recorded truthfully and journaled."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry import journal, rules, validate
from registry.errors import InvalidInput
from registry.models import (
    INSPECTION_KINDS,
    Inspection,
    InspectionAction,
    InspectionFinding,
    InspectionInspector,
)
from registry.services import lookup, officials
from registry.services.officials import Official

MIN_INSPECTORS = 2  # CE Art. 25: "not fewer than two inspectors"


@dataclass(frozen=True, slots=True)
class InspectionData:
    kind: str  # on_site | remote | self_inspection
    subject: str  # what was inspected
    started_at: dt.datetime
    inspectors: tuple[Official, ...]
    findings: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()  # remedial measures ordered (CE Art. 26)
    ended_at: dt.datetime | None = None
    venues: tuple[str, ...] = ()


def _texts(values: tuple[str, ...], field: str) -> list[str]:
    for n, value in enumerate(values):
        if not value.strip():
            raise InvalidInput(f"{field}.{n}", "must not be blank")
    return list(values)


def record_inspection(session: Session, actor: str, data: InspectionData) -> Inspection:
    validate.choice(data.kind, INSPECTION_KINDS, "kind")
    if not data.subject.strip():
        raise rules.refuse("inspection.subject")
    if data.ended_at is not None and data.ended_at < data.started_at:
        raise InvalidInput("ended_at", "the inspection ends before it starts")
    inspectors = officials.resolve(session, data.inspectors, "inspectors")
    if officials.count_distinct(inspectors) < MIN_INSPECTORS:
        names = sorted({o.label for o in inspectors}) or ["nobody"]
        raise rules.refuse("inspection.two_inspectors", f"Recorded: {', '.join(names)}.")
    officials.distinct(inspectors, "inspectors")
    findings = _texts(data.findings, "findings")
    actions = _texts(data.actions, "actions")
    inspection = Inspection(
        kind=data.kind,
        subject=data.subject,
        started_at=data.started_at,
        ended_at=data.ended_at,
        recorded_by=actor,
        recorded_at=journal.now_utc(),
        inspectors=[
            InspectionInspector(
                person=o.person, name=o.name, organisation=o.organisation, identification=o.identification
            )
            for o in inspectors
        ],
        findings=[InspectionFinding(text=t) for t in findings],
        actions=[InspectionAction(text=t) for t in actions],
        venues=[lookup.venue(session, code) for code in dict.fromkeys(data.venues)],
    )
    session.add(inspection)
    session.flush()
    journal.append(session, actor, "inspection.recorded", f"inspection:{inspection.id}", describe(inspection))
    return inspection


def describe(inspection: Inspection) -> dict[str, object]:
    return {
        "kind": inspection.kind,
        "subject": inspection.subject,
        "started_at": inspection.started_at.isoformat(),
        "ended_at": inspection.ended_at.isoformat() if inspection.ended_at else None,
        "inspectors": [officials.label(o) for o in inspection.inspectors],
        "venues": [v.code for v in inspection.venues],
        "findings": [f.text for f in inspection.findings],
        "actions": [a.text for a in inspection.actions],
    }

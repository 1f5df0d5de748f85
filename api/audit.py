"""What auditors read: an item's custody trail, incidents with their clock, evidence packages, the annual
report. Reads only; nothing here writes the register."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections import Counter

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from api import schemas, views
from registry import journal
from registry.levels import Level
from registry.models import (
    Approval,
    DestructionRecord,
    Incident,
    InventoryCount,
    Item,
    ItemAccess,
    JournalEntry,
    Person,
    Venue,
    approval_items,
)
from registry.services import incidents


def movement_entries(session: Session, epc: str | None = None) -> list[JournalEntry]:
    query = select(JournalEntry).where(JournalEntry.action.like("movement.%"))
    if epc is not None:
        # Payloads are canonical JSON, so the EPC appears exactly as `"epc":"<hex>"`.
        query = query.where(JournalEntry.payload.contains(f'"epc":"{epc}"'))
    return list(session.execute(query.order_by(JournalEntry.seq)).scalars())


def trail(session: Session, item: Item) -> schemas.TrailPublic:
    """Everything the journal says about the item, every approval that named it, and who knew it."""
    approval_refs = session.execute(
        select(Approval.ref).join(approval_items).where(approval_items.c.item_id == item.id)
    ).scalars()
    subjects = [f"item:{views.item_key(item)}", *(f"approval:{ref}" for ref in approval_refs)]
    entries = {
        e.seq: e for e in session.execute(select(JournalEntry).where(JournalEntry.subject.in_(subjects))).scalars()
    }
    moves = movement_entries(session, item.epc)
    entries.update({e.seq: e for e in moves})
    access_rows = session.execute(
        select(ItemAccess, Person.username, Venue.code)
        .join(Person, Person.id == ItemAccess.person_id)
        .outerjoin(Venue, Venue.id == ItemAccess.venue_id)
        .where(ItemAccess.item_id == item.id)
        .order_by(ItemAccess.at)
    ).all()
    return schemas.TrailPublic(
        item=views.item(item),
        journal=[views.journal_entry(entries[seq]) for seq in sorted(entries)],
        access=[schemas.AccessPublic(person=u, at=a.at, how=a.how, venue=v) for a, u, v in access_rows],
        last_seen=views.journal_entry(moves[-1]) if moves else None,
    )


def incident(i: Incident, now: dt.datetime | None = None) -> schemas.IncidentPublic:
    left = incidents.time_left(i, now).total_seconds()
    return schemas.IncidentPublic(
        id=i.id,
        kind=i.kind,
        state=i.state,
        opened_at=i.opened_at,
        report_deadline=i.report_deadline,
        seconds_left=left,
        overdue=left < 0 and i.state == "open",
        description=i.description,
        actions=[f"{a.at.isoformat()} {a.actor}: {a.text}" for a in i.actions],
    )


def _json_bytes(model: BaseModel | list[BaseModel] | dict[str, object]) -> bytes:
    if isinstance(model, BaseModel):
        return model.model_dump_json(indent=2).encode()
    if isinstance(model, list):
        return json.dumps([m.model_dump(mode="json") for m in model], indent=2).encode()
    return json.dumps(model, indent=2, default=str).encode()


def evidence_package(session: Session, i: Incident, exported_by: str) -> bytes:
    """A zip of JSON files an appraisal needs (AP Art. 9), with a manifest of SHA-256 sums."""
    files: dict[str, bytes] = {"incident.json": _json_bytes(incident(i))}
    if i.item_id is not None:
        item = session.get(Item, i.item_id)
        if item is not None:
            item_trail = trail(session, item)
            files["item.json"] = _json_bytes(item_trail.item)
            files["trail.json"] = _json_bytes(list(item_trail.journal))
            files["who_knew.json"] = _json_bytes(list(item_trail.access))
            files["last_seen.json"] = _json_bytes(item_trail.last_seen or {"last_seen": None})
    related = session.execute(
        select(JournalEntry).where(JournalEntry.subject == f"incident:{i.id}").order_by(JournalEntry.seq)
    ).scalars()
    files["incident_journal.json"] = _json_bytes([views.journal_entry(e) for e in related])
    check = journal.verify(session)
    files["journal_verification.json"] = _json_bytes(
        schemas.JournalStatusPublic(
            ok=check.ok,
            entries=check.entries,
            first_bad_seq=check.first_bad_seq,
            problem=check.problem,
            head_hash=check.head_hash,
        )
    )
    manifest = {
        "incident": i.id,
        "exported_by": exported_by,
        "exported_at": journal.now_utc().isoformat(),
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
    return buffer.getvalue()


class AnnualReportPublic(BaseModel):
    """Art. 56/58: media, venues, incidents and destruction for a period."""

    start: dt.date
    end: dt.date
    items_by_level: dict[str, int]
    items_by_status: dict[str, int]
    items_registered_in_period: int
    venues: int
    venues_top_secret_designated: int
    approvals_by_kind_and_state: dict[str, int]
    movements_in_period: int
    inventory_counts_in_period: int
    incidents_by_kind: dict[str, int]
    incidents_reported_late_or_overdue: int
    destruction_by_outcome: dict[str, int]
    journal_ok: bool
    journal_entries: int


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, the day after end 00:00) in UTC; a period ending on the last representable day runs to its
    end instead of overflowing."""
    upper = (
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, dt.UTC)
        if end < dt.date.max
        else dt.datetime.max.replace(tzinfo=dt.UTC)
    )
    return dt.datetime.combine(start, dt.time.min, dt.UTC), upper


def annual_report(session: Session, start: dt.date, end: dt.date) -> AnnualReportPublic:
    lo, hi = _bounds(start, end)
    lo_text, hi_text = lo.isoformat(timespec="microseconds"), hi.isoformat(timespec="microseconds")

    def journal_count(*conditions: object) -> int:
        query = (
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.at >= lo_text, JournalEntry.at < hi_text, *conditions)
        )
        return int(session.execute(query).scalar_one())

    by_level = Counter(Level(v).label for v in session.execute(select(Item.level)).scalars())
    by_status = Counter(session.execute(select(Item.status)).scalars())
    approvals = Counter(
        f"{kind}:{state}"
        for kind, state in session.execute(
            select(Approval.kind, Approval.state).where(Approval.created_at >= lo, Approval.created_at < hi)
        )
    )
    period_incidents = list(
        session.execute(select(Incident).where(Incident.opened_at >= lo, Incident.opened_at < hi)).scalars()
    )
    now = journal.now_utc()
    late = sum(
        1
        for i in period_incidents
        if (i.reported_at is not None and i.reported_at > i.report_deadline)
        or (i.reported_at is None and now > i.report_deadline)
    )
    destruction = Counter(
        session.execute(
            select(DestructionRecord.outcome).where(
                DestructionRecord.completed_at >= lo, DestructionRecord.completed_at < hi
            )
        ).scalars()
    )
    inventories = session.execute(
        select(func.count()).select_from(InventoryCount).where(InventoryCount.at >= lo, InventoryCount.at < hi)
    ).scalar_one()
    check = journal.verify(session)
    return AnnualReportPublic(
        start=start,
        end=end,
        items_by_level=dict(sorted(by_level.items())),
        items_by_status=dict(sorted(by_status.items())),
        items_registered_in_period=journal_count(JournalEntry.action == "item.registered"),
        venues=int(session.execute(select(func.count()).select_from(Venue)).scalar_one()),
        venues_top_secret_designated=int(
            session.execute(
                select(func.count()).select_from(Venue).where(Venue.top_secret_designated.is_(True))
            ).scalar_one()
        ),
        approvals_by_kind_and_state=dict(sorted(approvals.items())),
        movements_in_period=journal_count(JournalEntry.action.like("movement.%")),
        inventory_counts_in_period=int(inventories),
        incidents_by_kind=dict(sorted(Counter(i.kind for i in period_incidents).items())),
        incidents_reported_late_or_overdue=late,
        destruction_by_outcome=dict(sorted(destruction.items())),
        journal_ok=check.ok,
        journal_entries=check.entries,
    )


def journal_in_window(session: Session, lo: dt.datetime | None, hi: dt.datetime | None) -> list[JournalEntry]:
    """Movements and verified destructions in the window (what the EPCIS export turns into events)."""
    query = select(JournalEntry).where(
        or_(JournalEntry.action.like("movement.%"), JournalEntry.action == "item.destroyed")
    )
    if lo is not None:
        query = query.where(JournalEntry.at >= lo.astimezone(dt.UTC).isoformat(timespec="microseconds"))
    if hi is not None:
        query = query.where(JournalEntry.at < hi.astimezone(dt.UTC).isoformat(timespec="microseconds"))
    return list(session.execute(query.order_by(JournalEntry.seq)).scalars())


REPORT_ROWS = (
    ("items_by_level", "Items by level"),
    ("items_by_status", "Items by status"),
    ("approvals_by_kind_and_state", "Approvals requested in the period (kind:state)"),
    ("incidents_by_kind", "Incidents opened in the period"),
    ("destruction_by_outcome", "Destruction in the period"),
)


def report_pdf(report: AnnualReportPublic, site: str, exported_by: str) -> bytes:
    """The annual report (Art. 56/58) as a PDF: the same figures as the page, with who took it out and the
    journal's state, so a printed copy says what it was made from."""
    from fpdf import FPDF  # only this export needs it

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 10, f"Annual report {report.start} to {report.end}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 6, f"{site} - exported by {exported_by} at {journal.now_utc():%Y-%m-%d %H:%M} UTC",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    def row(label: str, value: object) -> None:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(95, 7, label)
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 7, str(value), new_x="LMARGIN", new_y="NEXT")

    row("Items registered in the period", report.items_registered_in_period)
    row("Venues (top-secret designated)", f"{report.venues} ({report.venues_top_secret_designated})")
    row("Movements in the period", report.movements_in_period)
    row("Inventory counts in the period", report.inventory_counts_in_period)
    row("Incidents reported late or overdue", report.incidents_reported_late_or_overdue)
    for field, label in REPORT_ROWS:
        counts: dict[str, int] = getattr(report, field)
        row(label, ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none")
    row("Journal", f"{'intact' if report.journal_ok else 'BROKEN'}, {report.journal_entries} entries")
    return bytes(pdf.output())


def journal_page(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[JournalEntry], int | None, int]:
    """Newest first, filtered: actor exactly, action by prefix ("item." is every item action), subject by
    substring, time in [since, until). Returns (entries, the `before` of the next page or None, how many match).
    Paged by sequence number, so a page stays stable while the journal grows."""
    conditions = []
    if actor:
        conditions.append(JournalEntry.actor == actor)
    if action:
        conditions.append(JournalEntry.action.startswith(action, autoescape=True))
    if subject:
        conditions.append(JournalEntry.subject.contains(subject, autoescape=True))
    if since is not None:
        conditions.append(JournalEntry.at >= since.astimezone(dt.UTC).isoformat(timespec="microseconds"))
    if until is not None:
        conditions.append(JournalEntry.at < until.astimezone(dt.UTC).isoformat(timespec="microseconds"))
    matched = int(session.execute(select(func.count()).select_from(JournalEntry).where(*conditions)).scalar_one())
    query = select(JournalEntry).where(*conditions)
    if before is not None:
        query = query.where(JournalEntry.seq < before)
    rows = list(session.execute(query.order_by(JournalEntry.seq.desc()).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None), matched

"""Everything that leaves the register on paper or as a file is journalled: label prints (PNG, PDF), the annual
report (JSON, PDF, page), EPCIS exports, evidence packages, destruction certificates and evidence images, each
with who, what, when and the SHA-256 of the bytes served."""

from __future__ import annotations

import hashlib
import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings
from registry import db, journal
from registry.models import DestructionRecord, JournalEntry
from registry.services import lookup
from tests.api.conftest import Tokens


def last(factory: sessionmaker[Session], action: str) -> tuple[JournalEntry, dict[str, object]]:
    with factory() as session:
        entry = session.execute(
            select(JournalEntry).where(JournalEntry.action == action).order_by(JournalEntry.seq.desc()).limit(1)
        ).scalar_one()
    return entry, json.loads(entry.payload)


def test_each_label_print_is_journalled_with_the_file_hash(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    for user, fmt in (("admin", "png"), ("clara", "pdf")):
        response = client.get(f"/api/admin/items/4/label.{fmt}", headers=tokens[user])
        assert response.status_code == 200
        entry, payload = last(factory, "item.label_printed")
        assert (entry.actor, entry.subject, payload["format"]) == (user, "item:S-2026-001/1", fmt)
        assert payload["sha256"] == hashlib.sha256(response.content).hexdigest()
        assert payload["level"] == "secret" and payload["period"]
        assert entry.at.startswith(journal.now_utc().date().isoformat())
    with factory() as session:
        printed = session.execute(select(JournalEntry.actor).where(JournalEntry.action == "item.label_printed"))
        assert list(printed.scalars()) == ["admin", "clara"]
        assert journal.verify(session).ok


def test_report_and_epcis_exports_are_journalled_with_the_document_hash(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    report = client.get("/api/audit/report?start=2026-01-01&end=2026-12-31", headers=tokens["audrey"])
    assert report.status_code == 200 and report.json()["start"] == "2026-01-01"
    entry, payload = last(factory, "audit.report_exported")
    assert (entry.actor, entry.subject) == ("audrey", "report:2026-01-01..2026-12-31")
    assert payload == {
        "start": "2026-01-01",
        "end": "2026-12-31",
        "format": "json",
        "sha256": hashlib.sha256(report.content).hexdigest(),
    }
    pdf = client.get("/api/audit/report.pdf?start=2026-01-01&end=2026-12-31", headers=tokens["audrey"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    entry, payload = last(factory, "audit.report_exported")
    digest = hashlib.sha256(pdf.content).hexdigest()
    assert (entry.actor, payload["format"], payload["sha256"]) == ("audrey", "pdf", digest)
    page = client.get("/audit/report?start=2026-01-01&end=2026-12-31", headers=tokens["audrey"])
    assert page.status_code == 200 and "Items by level" in page.text
    entry, payload = last(factory, "audit.report_exported")
    # The page shows the report's data; its journal entry carries the SHA-256 of that data (the JSON form; the
    # journal grew since the first export, so the figures and the hash differ).
    assert payload["format"] == "html" and len(str(payload["sha256"])) == 64
    epcis = client.get("/api/epcis/movements?since=2026-01-01T00:00:00Z", headers=tokens["admin"])
    assert epcis.status_code == 200
    entry, payload = last(factory, "epcis.exported")
    assert (entry.actor, entry.subject) == ("admin", "epcis:movements")
    assert payload == {
        "since": "2026-01-01T00:00:00+00:00",
        "until": None,
        "events": len(epcis.json()["epcisBody"]["eventList"]),
        "sha256": hashlib.sha256(epcis.content).hexdigest(),
    }


def test_a_refused_export_is_not_journalled_as_an_export(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    assert client.get("/api/admin/items/4/label.png", headers=tokens["gus"]).status_code == 403
    assert client.get("/api/admin/items/4/label.gif", headers=tokens["admin"]).status_code == 404
    assert client.get("/api/audit/report?start=2026-02-01&end=2026-01-01", headers=tokens["audrey"]).status_code == 422
    backwards = "start=2026-02-01&end=2026-01-01"
    assert client.get(f"/api/audit/report.pdf?{backwards}", headers=tokens["audrey"]).status_code == 422
    assert "ends before it starts" in client.get("/audit/report?start=2026-02-01&end=2026-01-01",
                                                 headers=tokens["audrey"]).text
    with factory() as session:
        actions = set(session.execute(select(JournalEntry.action)).scalars())
    assert not actions & {"item.label_printed", "audit.report_exported", "epcis.exported"}


def test_certificate_and_evidence_downloads_are_journalled(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session], settings: ApiSettings
) -> None:
    assert settings.certificates_dir is not None
    pdf = b"%PDF-1.4 certificate"
    digest = hashlib.sha256(pdf).hexdigest()
    (settings.certificates_dir / "D-20260302-00000001.pdf").write_bytes(pdf)
    with db.transaction(factory) as session:
        now = journal.now_utc()
        record = DestructionRecord(
            item_id=lookup.item(session, "S-2026-002").id, operator_id=lookup.person(session, "otto").id,
            witness_id=lookup.person(session, "wendy").id, device_name="shredder-1", method="shred",
            outcome="destroyed", started_at=now, completed_at=now, certificate_sha256=digest,
        )
        session.add(record)
        session.flush()
        record_id = record.id
    assert client.get(f"/api/destruction/records/{record_id}/certificate", headers=tokens["wendy"]).content == pdf
    entry, payload = last(factory, "destruction.certificate_exported")
    assert (entry.actor, entry.subject, payload) == ("wendy", f"destruction:{record_id}", {"sha256": digest})

    image = b"\x89PNG evidence"
    image_hash = hashlib.sha256(image).hexdigest()
    (settings.certificates_dir / f"evidence-{image_hash[:16]}.png").write_bytes(image)
    assert client.get(f"/api/destruction/evidence/{image_hash}", headers=tokens["audrey"]).content == image
    entry, _payload = last(factory, "destruction.evidence_exported")
    assert (entry.actor, entry.subject) == ("audrey", f"evidence:{image_hash}")
    (settings.certificates_dir / f"evidence-{image_hash[:16]}.png").write_bytes(image + b" altered")
    assert client.get(f"/api/destruction/evidence/{image_hash}", headers=tokens["audrey"]).status_code == 404
    with factory() as session:
        served = session.execute(select(JournalEntry).where(JournalEntry.action == "destruction.evidence_exported"))
        assert len(list(served.scalars())) == 1

"""What each router does: approvals under the register's rules, bad input, outages, guard and destruction
commands reaching the site, the auditor's exports."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from controllers.site import SiteRuntime
from custodian.wiring import RunningSite
from firmware_bridge.rfid.mercury_simulator import FieldTag
from registry import db, journal
from registry.models import DestructionRecord, JournalEntry
from registry.services import incidents, lookup
from tests.api.conftest import PASSWORD, Tokens, token_for

WINDOW = {"valid_from": "2026-06-01T09:00:00Z", "valid_until": "2030-06-02T09:00:00Z"}


DISK = "E28011700000020000000005"  # S-2026-002, approved for destruction


def entries(factory: sessionmaker[Session], action: str) -> list[JournalEntry]:
    with factory() as session:
        query = select(JournalEntry).where(JournalEntry.action == action).order_by(JournalEntry.seq)
        return list(session.execute(query).scalars())


def test_request_then_approval_by_someone_else_journals_each_actor(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    body = {"ref": "A-T-1", "kind": "carry_out", "items": ["S-2026-001"], "people": ["bob"], **WINDOW}
    created = client.post("/api/approvals", json=body, headers=tokens["bob"])
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "requested" and created.json()["requester"] == "bob"
    approved = client.post("/api/approvals/A-T-1/approve", json={"note": "ok"}, headers=tokens["paul"])
    assert approved.status_code == 200
    assert approved.json()["state"] == "approved"
    actors = {e.action: e.actor for e in entries(factory, "approval.requested") + entries(factory, "approval.approved")}
    assert actors == {"approval.requested": "bob", "approval.approved": "paul"}


def test_self_approval_is_409_naming_the_rule(client: TestClient, tokens: Tokens) -> None:
    body = {"ref": "A-T-2", "kind": "carry_out", "items": ["C-2026-001"], **WINDOW}
    assert client.post("/api/approvals", json=body, headers=tokens["petra"]).status_code == 201
    response = client.post("/api/approvals/A-T-2/approve", json={}, headers=tokens["petra"])
    assert response.status_code == 409
    assert response.json()["rule"] == "approval.self_approval"
    assert client.get("/api/approvals/A-T-2", headers=tokens["petra"]).json()["state"] == "requested"


def test_an_approver_named_on_a_request_may_not_approve_it(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    body = {"ref": "A-T-3", "kind": "carry_out", "items": ["S-2026-001"], "people": ["bob", "paul"], **WINDOW}
    assert client.post("/api/approvals", json=body, headers=tokens["bob"]).status_code == 201
    refused = client.post("/api/approvals/A-T-3/approve", json={}, headers=tokens["paul"])
    assert refused.status_code == 409
    assert refused.json()["rule"] == "approval.approver_named" and "paul" in refused.json()["detail"]
    assert client.get("/api/approvals/A-T-3", headers=tokens["paul"]).json()["state"] == "requested"
    assert not [e for e in entries(factory, "approval.approved") if e.subject == "approval:A-T-3"]
    granted = client.post("/api/approvals/A-T-3/approve", json={}, headers=tokens["petra"])
    assert granted.status_code == 200 and granted.json()["state"] == "approved"


def test_a_group_member_may_not_approve_for_the_group_on_the_page(client: TestClient, tokens: Tokens) -> None:
    quinn = {"username": "quinn", "name": "Quinn", "clearance": "top_secret", "roles": ["approver"]}
    quinn["groups"] = ["strategy-team"]
    assert client.post("/api/admin/people", json=quinn, headers=tokens["admin"]).status_code == 201
    password = {"password": "quinn-password-1"}
    assert client.put("/api/admin/people/quinn/password", json=password, headers=tokens["admin"]).status_code == 204
    body = {"ref": "A-T-4", "kind": "carry_out", "items": ["T-2026-001"], "groups": ["strategy-team"], **WINDOW}
    assert client.post("/api/approvals", json=body, headers=tokens["alice"]).status_code == 201
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    form = {"username": "quinn", "password": "quinn-password-1", "csrf_token": csrf}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 303
    session_csrf = client.get("/approvals").text.split('name="csrf-token" content="')[1].split('"')[0]
    decided = client.post("/approvals/A-T-4/decide", data={"decision": "approve", "csrf_token": session_csrf})
    assert "Refused by rule approval.approver_named" in decided.text
    assert "strategy-team" in decided.text


def test_refusal_needs_a_reason_naming_the_field(client: TestClient, tokens: Tokens) -> None:
    response = client.post("/api/approvals/A-2026-0001/refuse", json={"note": " "}, headers=tokens["paul"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "note"


def test_register_rule_breaks_are_409_and_leave_nothing(client: TestClient, tokens: Tokens) -> None:
    # A secret item may not be placed in the reading room (ceiling confidential).
    item = {
        "register_number": "S-T-1",
        "title": "Misplaced",
        "kind": "usb",
        "level": "secret",
        "period_start": "2026-01-01",
        "period_months": 60,
        "originating_unit": "Test",
        "epc": "E28011700000020000000F01",
        "venue": "reading-room",
    }
    response = client.post("/api/admin/items", json=item, headers=tokens["admin"])
    assert response.status_code == 409
    assert response.json()["rule"] == "venue.ceiling"
    listed = client.get("/api/admin/items", headers=tokens["admin"]).json()
    assert "S-T-1" not in {i["register_number"] for i in listed}


def test_invalid_payloads_are_422_naming_the_field(client: TestClient, tokens: Tokens) -> None:
    missing = client.post("/api/admin/venues", json={"code": "x1", "name": "X"}, headers=tokens["admin"])
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "ceiling"]
    wrong_level = client.post(
        "/api/admin/venues", json={"code": "x1", "name": "X", "ceiling": "cosmic"}, headers=tokens["admin"]
    )
    assert wrong_level.json()["detail"][0]["loc"] == ["body", "ceiling"]
    item = {
        "register_number": "U-T-1",
        "title": "Odd tag",
        "kind": "paper",
        "level": "internal",
        "period_start": "2026-01-01",
        "period_months": 12,
        "originating_unit": "Test",
        "epc": "E2801170000002000000000Z",
    }
    bad_epc = client.post("/api/admin/items", json=item, headers=tokens["admin"])
    assert bad_epc.status_code == 422
    assert bad_epc.json()["detail"][0]["loc"] == ["body", "epc"]
    short = client.put("/api/admin/people/bob/password", json={"password": "short"}, headers=tokens["admin"])
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "password"]


def test_unknown_ids_are_404(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/api/admin/items/9999", headers=tokens["admin"]).status_code == 404
    assert client.get("/api/approvals/NOPE", headers=tokens["paul"]).status_code == 404
    assert client.get("/api/audit/items/NOPE/trail", headers=tokens["audrey"]).status_code == 404
    assert client.get("/api/audit/incidents/77/evidence.zip", headers=tokens["audrey"]).status_code == 404
    body = {"reason": "testing", "password": PASSWORD}
    portal = client.post("/api/guard/portals/nowhere/override", json=body, headers=tokens["gus"])
    assert portal.status_code == 404


def test_someone_elses_approval_and_a_missing_one_look_the_same(client: TestClient, tokens: Tokens) -> None:
    hidden = client.get("/api/approvals/A-2026-0001", headers=tokens["alice"])  # bob's
    missing = client.get("/api/approvals/A-NONE", headers=tokens["alice"])
    assert hidden.status_code == missing.status_code == 403
    assert hidden.json() == missing.json()
    own = client.get("/api/approvals/A-2026-0003", headers=tokens["alice"])
    assert own.status_code == 200
    listed = {a["ref"] for a in client.get("/api/approvals", headers=tokens["alice"]).json()}
    assert listed == {"A-2026-0003"}


def test_database_outage_is_503_while_guard_commands_keep_working(
    settings: ApiSettings, factory: sessionmaker[Session], control: SiteRuntime, tmp_path
) -> None:
    with TestClient(create_app(settings, session_factory=factory, control=control)) as working:
        headers = token_for(working, "gus")
        admin = token_for(working, "admin")
    alarm = control.alarms_book.raise_alarm("door_forced", time.time_ns() // 1000, "main-exit")
    # The same signing key in front of a register that cannot be opened (its folder does not exist).
    dead_engine = db.make_engine(f"sqlite:///{tmp_path / 'gone' / 'register.db'}")
    dead = db.session_factory(dead_engine)
    with TestClient(create_app(settings, session_factory=dead, control=control)) as outage:
        down = outage.get("/api/admin/venues", headers=admin)
        assert down.status_code == 503
        assert "unavailable" in down.json()["detail"]
        assert outage.get("/api/guard/doors", headers=headers).status_code == 200
        assert outage.post(f"/api/guard/alarms/{alarm.alarm_id}/ack", headers=headers).status_code == 200
        # An override needs the guard's password checked against the register: refused while it is away.
        body = {"reason": "courier on the phone", "password": PASSWORD}
        assert outage.post("/api/guard/portals/main-exit/override", json=body, headers=headers).status_code == 503
        assert outage.post("/api/token", data={"username": "gus", "password": "x" * 12}).status_code == 503
        assert outage.get("/api/admin/venues", headers=admin).status_code == 503
    dead_engine.dispose()
    assert control.alarms_book.get(alarm.alarm_id).acknowledged_by == "gus"


def test_without_a_site_control_the_commands_answer_503(settings: ApiSettings, factory) -> None:
    with TestClient(create_app(settings, session_factory=factory)) as client:
        headers = token_for(client, "gus")
        for method, url in (("GET", "/api/guard/doors"), ("GET", "/api/live"), ("POST", "/api/guard/alarms/1/ack")):
            response = client.request(method, url, headers=headers)
            assert response.status_code == 503
            assert "no " in response.json()["detail"]


def test_guard_acknowledges_an_alarm_of_the_book(client: TestClient, tokens: Tokens, control: SiteRuntime) -> None:
    alarm = control.alarms_book.raise_alarm("door_forced", time.time_ns() // 1000, "main-exit")
    url = f"/api/guard/alarms/{alarm.alarm_id}"
    listed = client.get("/api/guard/alarms", headers=tokens["gus"]).json()
    [shown] = [a for a in listed["security"] if a["id"] == alarm.alarm_id]
    assert shown["sentence"] == "The door opened without an allowed exit." and shown["procedure"]
    assert shown["state"] == "open" and shown["raised_at"].endswith(("Z", "+00:00"))
    acked = client.post(f"{url}/ack", json={"note": "going there"}, headers=tokens["gus"])
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "gus"
    again = client.post(f"{url}/ack", headers=tokens["gus"])
    assert again.status_code == 409
    assert again.json()["detail"] == f"alarm {alarm.alarm_id} was already acknowledged by gus"
    missing = client.post("/api/guard/alarms/9999/ack", headers=tokens["gus"])
    assert missing.status_code == 404 and "no alarm 9999" in missing.json()["detail"]
    resolved = client.post(f"{url}/resolve", json={"note": "a contractor, let in by facilities"}, headers=tokens["gus"])
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    assert not client.get("/api/guard/alarms", headers=tokens["gus"]).json()["security"]


def test_the_guard_sees_the_sites_doors_and_devices_unknown_before_any_report(
    client: TestClient, tokens: Tokens
) -> None:
    doors = client.get("/api/guard/doors", headers=tokens["gus"]).json()
    assert {d["portal"] for d in doors} == {"archive-door", "vault-dock", "main-exit"}
    assert all(d["locked"] and d["block"] is None and d["links"] == "unknown" for d in doors)
    health = client.get("/api/guard/devices", headers=tokens["gus"]).json()
    assert {d["health"] for d in health} == {"unknown"}  # no device has reported yet


def test_override_needs_a_written_reason(client: TestClient, tokens: Tokens, factory: sessionmaker[Session]) -> None:
    body = {"reason": "", "password": PASSWORD}
    response = client.post("/api/guard/portals/main-exit/override", json=body, headers=tokens["gus"])
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "reason"]
    with factory() as session:
        assert not session.execute(select(JournalEntry).where(JournalEntry.action.like("exit.override%"))).all()


def test_an_override_without_a_fresh_block_or_with_a_wrong_password_is_refused(
    client: TestClient, tokens: Tokens, control: SiteRuntime, factory: sessionmaker[Session]
) -> None:
    url = "/api/guard/portals/main-exit/override"
    wrong = client.post(url, json={"reason": "courier confirmed", "password": "not-my-password"}, headers=tokens["gus"])
    assert wrong.status_code == 403 and "password" in wrong.json()["detail"]
    none = client.post(url, json={"reason": "courier confirmed", "password": PASSWORD}, headers=tokens["gus"])
    assert none.status_code == 409 and none.json()["reason"] == "override_no_block"
    assert none.json()["detail"] == "There is no refused badge at this door to override."
    nowhere = client.post("/api/guard/portals/nowhere/override", json={"reason": "testing", "password": PASSWORD},
                          headers=tokens["gus"])
    assert nowhere.status_code == 404
    control.recorder.flush(10)
    with factory() as session:
        actions = [e.action for e in session.execute(select(JournalEntry)).scalars()]
    assert "exit.override_password_refused" in actions and "exit.override_refused" in actions


def test_destruction_queue_and_run_reach_the_station(
    site_client: TestClient, simulated: RunningSite, factory: sessionmaker[Session]
) -> None:
    otto = token_for(site_client, "otto")
    queue = site_client.get("/api/destruction/queue", headers=otto).json()
    assert [(q["item"], q["approval"]) for q in queue] == [("S-2026-002/1", "A-2026-0002")]
    assert simulated.sims is not None
    simulated.sims.mercury["destruction-intake"].place(FieldTag(DISK, 1, -45))
    run = {"station": "shredder-1", "items": ["S-2026-002"], "witness": "wendy", "witness_password": PASSWORD}
    response = site_client.post("/api/destruction/run", json=run, headers=otto)
    assert response.status_code == 200
    [outcome] = response.json()
    assert outcome["destroyed"] is True, outcome["reason"]
    with factory() as session:
        record = session.get(DestructionRecord, outcome["record_id"])
        assert record is not None and "shredder-1" in record.device_name


def test_destruction_refusals(client: TestClient, tokens: Tokens) -> None:
    def run(**changes: object) -> dict[str, object]:
        body = {"station": "shredder-1", "items": ["S-2026-002"], "witness": "wendy", "witness_password": PASSWORD}
        body.update(changes)
        response = client.post("/api/destruction/run", json=body, headers=tokens["otto"])
        assert response.status_code == 409, response.text
        return response.json()

    assert run(items=["S-2026-001"])["rule"] == "destruction.not_approved"
    assert run(witness="otto")["rule"] == "destruction.witness"
    assert run(witness="bob")["rule"] == "person.role"
    assert run(witness_password="not wendy's")["rule"] == "destruction.witness_unconfirmed"
    assert run(station="main-exit-panel")["rule"] == "destruction.station"
    # The register names the station, but this site runs none (no devices are connected): 404.
    unwired = {"station": "degausser-1", "items": ["S-2026-002"], "witness": "wendy", "witness_password": PASSWORD}
    assert client.post("/api/destruction/run", json=unwired, headers=tokens["otto"]).status_code == 404


def test_certificate_download_serves_only_the_file_with_the_recorded_hash(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session], settings: ApiSettings
) -> None:
    pdf = b"%PDF-1.4 certificate of destruction"
    digest = hashlib.sha256(pdf).hexdigest()
    with db.transaction(factory) as session:
        item = lookup.item(session, "S-2026-002")
        record = DestructionRecord(
            item_id=item.id,
            operator_id=lookup.person(session, "otto").id,
            witness_id=lookup.person(session, "wendy").id,
            device_name="shredder-1",
            method="shred",
            outcome="destroyed",
            started_at=journal.now_utc(),
            completed_at=journal.now_utc(),
            certificate_sha256=digest,
        )
        session.add(record)
        session.flush()
        record_id = record.id
    url = f"/api/destruction/records/{record_id}/certificate"
    assert client.get(url, headers=tokens["otto"]).status_code == 404
    assert settings.certificates_dir is not None
    (settings.certificates_dir / "D-20260302-0000AAAA.pdf").write_bytes(b"%PDF-1.4 another certificate")
    (settings.certificates_dir / "D-20260302-1234ABCD.pdf").write_bytes(pdf + b" altered")
    assert client.get(url, headers=tokens["otto"]).status_code == 404
    (settings.certificates_dir / "D-20260302-5678CDEF.pdf").write_bytes(pdf)
    response = client.get(url, headers=tokens["otto"])
    assert response.status_code == 200 and response.content == pdf
    records = client.get("/api/destruction/records", headers=tokens["wendy"]).json()
    assert [(r["item"], r["operator"], r["witness"]) for r in records] == [("S-2026-002/1", "otto", "wendy")]


def crossing(factory: sessionmaker[Session], epc: str, portal: str, to_venue: str | None, direction: str) -> None:
    with db.transaction(factory) as session:
        journal.append(
            session,
            "portal-controller",
            "movement.crossed",
            f"portal:{portal}",
            {
                "epc": epc,
                "portal": portal,
                "from_venue": "archive",
                "to_venue": to_venue,
                "direction": direction,
                "time": "2026-03-02T10:15:00+00:00",
            },
        )


def test_trail_joins_register_entries_movements_and_who_held_the_item(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    crossing(factory, "E28011700000020000000004", "archive-door", "corridor", "out")
    crossing(factory, "E28011700000020000000005", "archive-door", "corridor", "out")  # another item
    trail = client.get("/api/audit/items/S-2026-001/trail", headers=tokens["audrey"]).json()
    actions = [e["action"] for e in trail["journal"]]
    assert actions.count("movement.crossed") == 1
    assert "item.registered" in actions and "approval.requested" in actions
    assert trail["last_seen"]["payload"]["portal"] == "archive-door"
    assert [a["person"] for a in trail["access"]] == ["bob"]


def test_epcis_export_has_one_object_event_per_crossing(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    crossing(factory, "E28011700000020000000004", "archive-door", "corridor", "out")
    crossing(factory, "E28011700000020000000006", "vault-dock", None, "in")
    doc = client.get("/api/epcis/movements", headers=tokens["audrey"]).json()
    assert doc["type"] == "EPCISDocument" and doc["schemaVersion"] == "2.0"
    events = doc["epcisBody"]["eventList"]
    assert [e["epcList"] for e in events] == [
        ["urn:epc:raw:96.xE28011700000020000000004"],
        ["urn:epc:raw:96.xE28011700000020000000006"],
    ]
    assert [e["bizStep"] for e in events] == ["departing", "arriving"]
    assert {e["type"] for e in events} == {"ObjectEvent"} and {e["action"] for e in events} == {"OBSERVE"}
    assert events[0]["readPoint"]["id"].endswith("/portal/archive-door")
    assert "bizLocation" not in events[1]  # left the unit: no location of ours
    assert len({e["eventID"] for e in events}) == 2
    later = client.get("/api/epcis/movements?since=2099-01-01T00:00:00Z", headers=tokens["audrey"]).json()
    assert later["epcisBody"]["eventList"] == []
    naive = client.get("/api/epcis/movements?since=2026-01-01T00:00:00", headers=tokens["audrey"])
    assert naive.status_code == 422


def test_incident_clock_actions_and_evidence_package(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    crossing(factory, "E28011700000020000000004", "archive-door", "corridor", "out")
    with db.transaction(factory) as session:
        item = lookup.item(session, "S-2026-001")
        incident_id = incidents.open_incident(
            session, "portal-controller", "exit_without_approval", "left", item_id=item.id
        ).id
    listed = client.get("/api/audit/incidents", headers=tokens["audrey"]).json()
    assert listed[0]["id"] == incident_id
    assert 23 * 3600 < listed[0]["seconds_left"] <= 24 * 3600 and listed[0]["overdue"] is False
    action = client.post(
        f"/api/audit/incidents/{incident_id}/actions", json={"text": "called bob"}, headers=tokens["audrey"]
    )
    assert action.status_code == 201 and action.json()["actions"][0].endswith("audrey: called bob")
    response = client.get(f"/api/audit/incidents/{incident_id}/evidence.zip", headers=tokens["audrey"])
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    manifest = json.loads(archive.read("manifest.json"))
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    assert json.loads(archive.read("item.json"))["register_number"] == "S-2026-001"
    assert [p["person"] for p in json.loads(archive.read("who_knew.json"))] == ["bob"]
    assert json.loads(archive.read("last_seen.json"))["payload"]["portal"] == "archive-door"
    assert json.loads(archive.read("journal_verification.json"))["ok"] is True
    assert [e.actor for e in entries(factory, "incident.evidence_exported")] == ["audrey"]


def test_journal_verification_and_annual_report(client: TestClient, tokens: Tokens) -> None:
    status = client.get("/api/audit/journal", headers=tokens["audrey"]).json()
    assert status["ok"] is True and status["entries"] > 20
    report = client.get("/api/audit/report?start=2020-01-01&end=2099-12-31", headers=tokens["audrey"]).json()
    assert report["items_by_level"] == {
        "confidential": 1,
        "internal": 1,
        "secret": 2,
        "top_secret": 2,
        "unclassified": 1,
    }
    assert report["items_registered_in_period"] == 7
    assert report["approvals_by_kind_and_state"] == {"carry_out:approved": 2, "destroy:approved": 1}
    backwards = client.get("/api/audit/report?start=2026-02-01&end=2026-01-01", headers=tokens["audrey"])
    assert backwards.status_code == 422


def test_labels_render_as_png_and_pdf(client: TestClient, tokens: Tokens) -> None:
    png = client.get("/api/admin/items/4/label.png", headers=tokens["admin"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    pdf = client.get("/api/admin/items/4/label.pdf", headers=tokens["clara"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert client.get("/api/admin/items/4/label.gif", headers=tokens["admin"]).status_code == 404


def test_relabel_by_a_classifier_marks_the_label_out_of_date(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    label = client.get("/api/admin/items/2/label.png", headers=tokens["admin"]).content
    read_back = client.post(
        "/api/records/items/2/label-check", files={"image": ("label.png", label, "image/png")}, headers=tokens["admin"]
    )
    assert read_back.json()["label_out_of_date"] is False
    changed = client.post(
        "/api/admin/items/2/relabel", json={"reason": "annual review", "level": "confidential"}, headers=tokens["clara"]
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["level"] == "confidential" and changed.json()["label_out_of_date"] is True
    [entry] = entries(factory, "item.marking_changed")
    assert entry.actor == "clara"


def test_administration_writes_are_journalled_with_the_administrator(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    headers = tokens["admin"]
    assert (
        client.post(
            "/api/admin/venues", json={"code": "lab", "name": "Lab", "ceiling": "secret"}, headers=headers
        ).status_code
        == 201
    )
    portal = {"code": "lab-door", "name": "Lab door", "inside": "lab", "outside": "corridor"}
    assert client.post("/api/admin/portals", json=portal, headers=headers).status_code == 201
    device = {
        "name": "lab-reader",
        "kind": "llrp_reader",
        "portal": "lab-door",
        "settings": {"host": "10.0.0.9"},
        "antennas": [{"number": 1, "side": "inside"}],
    }
    assert client.post("/api/admin/devices", json=device, headers=headers).status_code == 201
    secret_setting = {**device, "name": "lab-panel", "kind": "osdp_panel", "settings": {"scbk": "00" * 16}}
    refused = client.post("/api/admin/devices", json=secret_setting, headers=headers)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "settings", "scbk"]
    person = {"username": "nina", "name": "Nina New", "clearance": "confidential", "roles": ["guard"]}
    assert client.post("/api/admin/people", json=person, headers=headers).status_code == 201
    assert (
        client.put("/api/admin/people/nina/password", json={"password": "nina-password-1"}, headers=headers).status_code
        == 204
    )
    assert client.get("/api/me", headers=token_for(client, "nina", "nina-password-1")).json()["roles"] == ["guard"]
    meeting = {
        "title": "Budget",
        "venue": "lab",
        "level": "secret",
        "starts_at": "2026-06-01T09:00:00Z",
        "ends_at": "2026-06-01T11:00:00Z",
        "participants": ["bob", "carol"],
    }
    short = client.post("/api/admin/meetings", json=meeting, headers=headers)
    assert short.status_code == 409 and short.json()["details"] == ["carol"]
    assert (
        client.post("/api/admin/meetings", json={**meeting, "participants": ["bob"]}, headers=headers).status_code
        == 201
    )
    with factory() as session:
        actions = session.execute(
            select(JournalEntry.action, JournalEntry.actor).where(JournalEntry.actor == "admin")
        ).all()
    assert {a for a, _ in actions} >= {
        "venue.created",
        "portal.created",
        "device.created",
        "person.created",
        "person.password_set",
        "meeting.created",
    }

"""Every route, every role: allowed roles get past the door (any answer but 401/403), others get 403,
anonymous callers get 401 (API) or are sent to the login page (pages). The table must name every route."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from api.app import routes
from controllers.site import SiteRuntime
from tests.api.conftest import PASSWORD, USER_FOR_ROLE, token_for

ALL = frozenset(USER_FOR_ROLE)
ADMIN = frozenset({"administrator"})
ADMIN_READ = frozenset({"administrator", "auditor"})
ITEM_READ = frozenset({"administrator", "classifier", "auditor"})
LABELS = frozenset({"administrator", "classifier"})
REQUESTERS = frozenset({"custodian", "administrator", "classifier", "approver", "destruction_operator"})
APPROVAL_READ = REQUESTERS | {"auditor"}
WATCH = frozenset({"guard", "administrator", "auditor"})
GUARD = frozenset({"guard"})
DESTRUCTION_READ = frozenset({"destruction_operator", "witness", "auditor"})
AUDIT = frozenset({"auditor"})
DISPUTE_READ = frozenset({"classifier", "administrator", "auditor"})
LABEL_CHECK = frozenset({"administrator", "classifier", "destruction_operator"})
READING = frozenset({"guard", "administrator", "custodian"})


@dataclass(frozen=True)
class Case:
    method: str
    template: str
    allowed: frozenset[str]
    path: str = ""
    json: object = None
    form: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None

    @property
    def url(self) -> str:
        return self.path or self.template


ITEM = {
    "register_number": "M-1",
    "title": "Matrix item",
    "kind": "paper",
    "level": "internal",
    "period_start": "2026-01-01",
    "period_months": 12,
    "originating_unit": "Test",
    "epc": "E28011700000020000009999",
}
MEETING = {
    "title": "Matrix meeting",
    "venue": "reading-room",
    "level": "confidential",
    "starts_at": "2026-06-01T09:00:00Z",
    "ends_at": "2026-06-01T10:00:00Z",
    "participants": ["bob"],
}
SEIZURE = {
    "description": "Copies of the survey found at a print shop",
    "level": "confidential",
    "quantity": 3,
    "source": "Print shop, 12 Harbour Road",
    "spread": "Seen by the shop's two employees",
    "seized_by": [{"name": "Officer Li", "organisation": "Secrecy bureau", "identification": "SB-0071"}],
    "seized_at": "2026-06-01T09:00:00Z",
}
INSPECTION = {
    "kind": "self_inspection",
    "subject": "Archive media management",
    "started_at": "2026-06-01T09:00:00Z",
    "inspectors": [{"username": "audrey"}, {"username": "admin"}],
    "findings": ["Two media without a fresh label"],
    "actions": ["Relabel by Friday"],
}
DISPUTE = {"reason": "The ministry holds it secret", "proposals": [{"level": "secret", "proposed_by": "Ministry"}]}
REQUEST = {
    "kind": "carry_out",
    "items": ["C-2026-001"],
    "valid_from": "2026-06-01T09:00:00Z",
    "valid_until": "2026-06-02T09:00:00Z",
}

CASES = [
    Case("GET", "/api/me", ALL),
    Case("GET", "/api/admin/venues", ADMIN_READ),
    Case("POST", "/api/admin/venues", ADMIN, json={"code": "m-venue", "name": "M", "ceiling": "internal"}),
    Case("GET", "/api/admin/portals", ADMIN_READ),
    Case("POST", "/api/admin/portals", ADMIN, json={"code": "m-portal", "name": "M", "inside": "corridor"}),
    Case("GET", "/api/admin/devices", ADMIN_READ),
    Case("POST", "/api/admin/devices", ADMIN, json={"name": "m-cam", "kind": "camera", "portal": "main-exit"}),
    Case(
        "PUT",
        "/api/admin/venues/{code}",
        ADMIN,
        "/api/admin/venues/reading-room",
        json={"name": "Reading room", "ceiling": "confidential"},
    ),
    Case("DELETE", "/api/admin/venues/{code}", ADMIN, "/api/admin/venues/corridor"),
    Case(
        "PUT",
        "/api/admin/portals/{code}",
        ADMIN,
        "/api/admin/portals/reading-door",
        json={"name": "Reading room door", "inside": "reading-room", "outside": "corridor"},
    ),
    Case("DELETE", "/api/admin/portals/{code}", ADMIN, "/api/admin/portals/main-exit"),
    Case("GET", "/api/admin/device-kinds", ADMIN_READ),
    Case(
        "PUT",
        "/api/admin/devices/{name}",
        ADMIN,
        "/api/admin/devices/main-exit-camera",
        json={"portal": "main-exit", "settings": {"source": "synthetic"}},
    ),
    Case("DELETE", "/api/admin/devices/{name}", ADMIN, "/api/admin/devices/no-such-device"),
    Case("POST", "/api/admin/devices/{name}/probe", ADMIN, "/api/admin/devices/main-exit-panel/probe"),
    Case("GET", "/api/admin/roles", ADMIN_READ),
    Case("GET", "/api/admin/people", ADMIN_READ),
    Case(
        "PUT",
        "/api/admin/people/{username}",
        ADMIN,
        "/api/admin/people/victor",
        json={"name": "Victor Visitor", "clearance": "internal", "visitor": True},
    ),
    Case("POST", "/api/admin/people/{username}/departure", ADMIN, "/api/admin/people/victor/departure"),
    Case("POST", "/api/admin/people/{username}/sign-off", ADMIN, "/api/admin/people/bob/sign-off", json={}),
    Case("POST", "/api/admin/people", ADMIN, json={"username": "mallory", "name": "M", "clearance": "internal"}),
    Case(
        "PUT",
        "/api/admin/people/{username}/password",
        ADMIN,
        "/api/admin/people/victor/password",
        json={"password": "another-password-1"},
    ),
    Case("GET", "/api/admin/items", ITEM_READ),
    Case("GET", "/api/admin/items/{item_id}", ITEM_READ, "/api/admin/items/1"),
    Case("POST", "/api/admin/items", ADMIN, json=ITEM),
    Case(
        "POST",
        "/api/admin/items/{item_id}/relabel",
        frozenset({"classifier"}),
        "/api/admin/items/1/relabel",
        json={"reason": "matrix review", "level": "internal"},
    ),
    Case("GET", "/api/admin/items/{item_id}/label.{fmt}", LABELS, "/api/admin/items/1/label.png"),
    Case("GET", "/api/admin/meetings", ADMIN_READ),
    Case("POST", "/api/admin/meetings", ADMIN, json=MEETING),
    Case("GET", "/api/approvals", APPROVAL_READ),
    # alice (custodian) is named on A-2026-0003; the classifier and the operator are not, so they are refused.
    Case(
        "GET",
        "/api/approvals/{ref}",
        frozenset({"approver", "administrator", "auditor", "custodian"}),
        "/api/approvals/A-2026-0003",
    ),
    Case("POST", "/api/approvals", REQUESTERS, json=REQUEST),
    Case(
        "POST", "/api/approvals/{ref}/approve", frozenset({"approver"}), "/api/approvals/A-2026-0001/approve", json={}
    ),
    Case(
        "POST",
        "/api/approvals/{ref}/refuse",
        frozenset({"approver"}),
        "/api/approvals/A-2026-0001/refuse",
        json={"note": "no"},
    ),
    Case("GET", "/api/live", WATCH),
    Case("GET", "/api/guard/alarms", WATCH),
    Case("POST", "/api/guard/alarms/{alarm_id}/ack", GUARD, "/api/guard/alarms/1/ack"),
    Case("POST", "/api/guard/alarms/{alarm_id}/resolve", GUARD, "/api/guard/alarms/1/resolve", json={"note": "done"}),
    Case("GET", "/api/guard/alarms/{alarm_id}/frame.png", WATCH, "/api/guard/alarms/1/frame.png"),
    Case("GET", "/api/guard/procedures", WATCH),
    Case("PUT", "/api/guard/procedures/{kind}", ADMIN, "/api/guard/procedures/door_forced", json={"steps": ["Go."]}),
    Case(
        "POST",
        "/api/guard/portals/{portal}/override",
        GUARD,
        "/api/guard/portals/main-exit/override",
        json={"reason": "matrix test", "password": PASSWORD},  # the right password: a 403 would mean the role
    ),
    Case("GET", "/api/centre/alarms", WATCH),
    Case("POST", "/api/centre/sites/{site}/alarms/{alarm_id}/ack", GUARD, "/api/centre/sites/site-a/alarms/1/ack"),
    Case(
        "POST",
        "/api/centre/sites/{site}/alarms/{alarm_id}/resolve",
        GUARD,
        "/api/centre/sites/site-a/alarms/1/resolve",
        json={"note": "matrix check"},
    ),
    Case(
        "POST",
        "/api/centre/sites/{site}/portals/{portal}/override",
        GUARD,
        "/api/centre/sites/site-a/portals/main-exit/override",
        json={"password": PASSWORD, "reason": "matrix check"},
    ),
    Case("GET", "/api/guard/doors", WATCH),
    Case("GET", "/api/guard/muster", WATCH),
    Case("POST", "/api/guard/muster/export", GUARD, json={"note": "matrix"}),
    Case(
        "POST",
        "/api/guard/people/{username}/forgive",
        GUARD,
        "/api/guard/people/bob/forgive",
        json={"reason": "seen coming in behind a group"},
    ),
    Case("GET", "/api/admin/meetings/{meeting_id}/report", ADMIN_READ, "/api/admin/meetings/1/report"),
    Case("GET", "/guard/muster", WATCH),
    Case("GET", "/api/guard/devices", WATCH),
    Case("GET", "/api/destruction/queue", DESTRUCTION_READ),
    Case("GET", "/api/destruction/stations", DESTRUCTION_READ),
    Case(
        "POST",
        "/api/destruction/run",
        frozenset({"destruction_operator"}),
        json={"station": "shredder-1", "items": ["S-2026-002"], "witness": "wendy", "witness_password": PASSWORD},
    ),
    Case("GET", "/api/destruction/records", DESTRUCTION_READ),
    Case(
        "POST",
        "/api/destruction/intake",
        frozenset({"destruction_operator"}),
        json={"station": "destruction-centre", "items": ["S-2026-002"]},
    ),
    Case("GET", "/api/destruction/live", DESTRUCTION_READ),
    Case("GET", "/api/destruction/pending", DESTRUCTION_READ),
    Case(
        "POST",
        "/api/destruction/reimage",
        frozenset({"destruction_operator"}),
        json={"station": "destruction-centre", "witness": "wendy", "witness_password": PASSWORD},
    ),
    Case(
        "POST", "/api/destruction/give-up", frozenset({"destruction_operator"}), json={"station": "destruction-centre"}
    ),
    Case("GET", "/api/destruction/witnesses", DESTRUCTION_READ),
    Case("GET", "/api/destruction/evidence/{sha256}", DESTRUCTION_READ, "/api/destruction/evidence/" + "0" * 64),
    Case(
        "GET",
        "/api/destruction/records/{record_id}/certificate",
        DESTRUCTION_READ,
        "/api/destruction/records/1/certificate",
    ),
    Case("GET", "/api/audit/journal", AUDIT),
    Case("GET", "/api/audit/items/{key}/trail", AUDIT, "/api/audit/items/S-2026-001/trail"),
    Case("GET", "/api/audit/inventory", AUDIT),
    Case("GET", "/api/audit/incidents", AUDIT),
    Case(
        "POST",
        "/api/audit/incidents/{incident_id}/actions",
        AUDIT,
        "/api/audit/incidents/1/actions",
        json={"text": "called the owner"},
    ),
    Case("POST", "/api/audit/incidents/{incident_id}/reported", AUDIT, "/api/audit/incidents/1/reported"),
    Case("GET", "/api/audit/incidents/{incident_id}/evidence.zip", AUDIT, "/api/audit/incidents/1/evidence.zip"),
    Case("GET", "/api/audit/report", AUDIT, "/api/audit/report?start=2026-01-01&end=2026-12-31"),
    Case("GET", "/api/audit/report.pdf", AUDIT, "/api/audit/report.pdf?start=2026-01-01&end=2026-12-31"),
    Case("GET", "/api/audit/journal/entries", AUDIT, "/api/audit/journal/entries?action=item."),
    Case("GET", "/api/audit/anchors", AUDIT),
    # The corridor has no handheld reader: refused (409) before any reader is asked.
    Case("POST", "/api/audit/inventory/sweep", AUDIT, json={"venue": "corridor"}),
    Case("GET", "/api/epcis/movements", ADMIN_READ),
    Case("GET", "/api/records/seizures", ADMIN_READ),
    Case("POST", "/api/records/seizures", ADMIN, json=SEIZURE),
    Case("GET", "/api/records/inspections", ADMIN_READ),
    Case("POST", "/api/records/inspections", ADMIN_READ, json=INSPECTION),
    Case("GET", "/api/records/disputes", DISPUTE_READ),
    Case("POST", "/api/records/items/{item_id}/disputes", LABELS, "/api/records/items/3/disputes", json=DISPUTE),
    Case(
        "POST",
        "/api/records/disputes/{dispute_id}/proposals",
        LABELS,
        "/api/records/disputes/1/proposals",
        json={"level": "top_secret", "proposed_by": "Defence staff"},
    ),
    Case(
        "POST",
        "/api/records/disputes/{dispute_id}/decision",
        frozenset({"classifier"}),
        "/api/records/disputes/1/decision",
        json={"level": "secret", "note": "Ministry's view stands"},
    ),
    Case(
        "POST",
        "/api/records/items/{item_id}/label-check",
        LABEL_CHECK,
        "/api/records/items/1/label-check",
        files={"image": ("label.png", b"not an image", "image/png")},
    ),
    Case(
        "POST",
        "/api/records/readings",
        READING,
        json={"item": "S-2026-001", "person": "bob", "venue": "archive"},
    ),
    Case("GET", "/api/records/items/{item_id}/access", ADMIN_READ, "/api/records/items/4/access"),
    Case("GET", "/", ALL),
    Case("GET", "/guard", WATCH),
    Case("GET", "/destruction", DESTRUCTION_READ),
    Case("GET", "/admin", ADMIN),
    Case("POST", "/admin/venues", ADMIN, form={"code": "m-form", "name": "M", "ceiling": "internal"}),
    Case("POST", "/admin/people", ADMIN, form={"username": "m-form", "name": "M", "clearance": "internal"}),
    Case("POST", "/admin/items", ADMIN, form={"register_number": "M-2"}),
    Case("GET", "/admin/items", ADMIN),
    Case("GET", "/admin/items/{item_id}", ADMIN, "/admin/items/1"),
    Case("POST", "/admin/items/{item_id}/place", ADMIN, "/admin/items/1/place", form={"venue": "corridor"}),
    Case(
        "POST",
        "/admin/items/{item_id}/label-check",
        ADMIN,
        "/admin/items/1/label-check",
        files={"image": ("label.png", b"not an image", "image/png")},
    ),
    Case("GET", "/admin/people", ADMIN),
    Case("GET", "/admin/people/{username}", ADMIN, "/admin/people/victor"),
    Case("POST", "/admin/people/{username}", ADMIN, "/admin/people/victor", form={"name": "Victor"}),
    Case("POST", "/admin/people/{username}/departure", ADMIN, "/admin/people/victor/departure", form={}),
    Case("POST", "/admin/people/{username}/sign-off", ADMIN, "/admin/people/bob/sign-off", form={}),
    Case("GET", "/admin/venues", ADMIN),
    Case("GET", "/admin/venues/{code}", ADMIN, "/admin/venues/archive"),
    Case("POST", "/admin/venues/{code}", ADMIN, "/admin/venues/archive", form={"name": "Archive"}),
    Case("POST", "/admin/venues/{code}/retire", ADMIN, "/admin/venues/archive/retire", form={}),
    Case("GET", "/admin/portals", ADMIN),
    Case("POST", "/admin/portals", ADMIN, form={"code": "m-door"}),
    Case("GET", "/admin/portals/{code}", ADMIN, "/admin/portals/main-exit"),
    Case("POST", "/admin/portals/{code}", ADMIN, "/admin/portals/main-exit", form={"name": "Main exit"}),
    Case("POST", "/admin/portals/{code}/retire", ADMIN, "/admin/portals/main-exit/retire", form={}),
    Case("GET", "/admin/devices", ADMIN),
    Case("GET", "/admin/devices/new", ADMIN, "/admin/devices/new?kind=camera&portal=main-exit"),
    Case("POST", "/admin/devices", ADMIN, form={"kind": "camera", "name": "m-cam-2"}),
    Case("GET", "/admin/devices/{name}", ADMIN, "/admin/devices/main-exit-reader"),
    Case("POST", "/admin/devices/{name}", ADMIN, "/admin/devices/main-exit-camera", form={"portal": "main-exit"}),
    Case("POST", "/admin/devices/{name}/probe", ADMIN, "/admin/devices/main-exit-panel/probe", form={}),
    Case("POST", "/admin/devices/{name}/retire", ADMIN, "/admin/devices/vault-dock-camera/retire", form={}),
    Case("GET", "/approvals", APPROVAL_READ),
    Case("POST", "/approvals", REQUESTERS, form={"kind": "carry_out"}),
    Case("GET", "/approvals/{ref}", APPROVAL_READ, "/approvals/A-2026-0003"),
    Case(
        "POST",
        "/approvals/{ref}/decide",
        frozenset({"approver"}),
        "/approvals/A-2026-0001/decide",
        form={"decision": "approve"},
    ),
    Case("GET", "/audit", AUDIT),
    Case("GET", "/audit/incidents", AUDIT),
    Case("GET", "/audit/inventory", AUDIT),
    Case("GET", "/audit/report", AUDIT, "/audit/report?start=2026-01-01&end=2026-12-31"),
    # The API's description is a map of the system: administrators and auditors only.
    Case("GET", "/openapi.json", ADMIN_READ),
    Case("GET", "/docs", ADMIN_READ),
    Case("GET", "/redoc", ADMIN_READ),
]
# JSON answers 401 to anonymous callers; pages send them to the login page.
JSON_PATHS = ("/api/", "/openapi.json")
# Signing out revokes the caller's token, so it has its own tests (test_security.py); the login routes are public.
ELSEWHERE = {
    ("POST", "/api/logout"),
    ("POST", "/logout"),
    ("POST", "/api/token"),
    ("GET", "/login"),
    ("POST", "/login"),
}


def _routes() -> set[tuple[str, str]]:
    return {(m, r.path) for r in routes() for m in r.methods}


def _call(client: TestClient, case: Case, headers: dict[str, str]) -> int:
    return client.request(
        case.method,
        case.url,
        headers=headers,
        json=case.json,
        data=case.form,
        files=case.files,
        follow_redirects=False,
    ).status_code


def test_the_matrix_names_every_route() -> None:
    named = {(c.method, c.template) for c in CASES}
    assert _routes() - ELSEWHERE == named


def test_every_role_against_every_route(
    settings: ApiSettings, factory: sessionmaker[Session], control: SiteRuntime
) -> None:
    # No live bus here: the live feed answers 503 to those allowed in, instead of streaming forever.
    app = create_app(settings, session_factory=factory, control=control)
    wrong: list[str] = []
    with TestClient(app) as client:
        headers = {role: token_for(client, user) for role, user in USER_FOR_ROLE.items()}
        for case in CASES:
            anonymous = _call(client, case, {})
            expected_anonymous = 401 if case.template.startswith(JSON_PATHS) else 303
            if anonymous != expected_anonymous:
                wrong.append(f"anonymous {case.method} {case.url}: {anonymous}")
            for role in USER_FOR_ROLE:
                code = _call(client, case, headers[role])
                if role in case.allowed and code in (401, 403):
                    wrong.append(f"{role} refused on {case.method} {case.url}: {code}")
                if role not in case.allowed and code != 403:
                    wrong.append(f"{role} let in on {case.method} {case.url}: {code}")
    assert not wrong, "\n".join(wrong)

"""Bad input through the real app: free text of spaces only is a 422 naming the field, and nothing is done."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from controllers.site import SiteRuntime
from registry.models import JournalEntry
from tests.api.conftest import PASSWORD, Tokens, browser_login

BLANK = "   \t  "
ITEM = {
    "register_number": "B-1",
    "title": "Blank test",
    "kind": "paper",
    "level": "internal",
    "period_start": "2026-01-01",
    "period_months": 12,
    "originating_unit": "Test",
    "epc": "E28011700000020000000B01",
}
WINDOW = {"valid_from": "2026-06-01T09:00:00Z", "valid_until": "2030-06-02T09:00:00Z"}
APPROVAL = {"kind": "reproduce", "items": ["C-2026-001"], **WINDOW}
MEETING = {
    "title": "Budget",
    "venue": "reading-room",
    "level": "confidential",
    "starts_at": "2026-06-01T09:00:00Z",
    "ends_at": "2026-06-01T10:00:00Z",
    "participants": ["bob"],
}
RUN = {"station": "shredder-1", "items": ["S-2026-002"], "witness": "wendy", "witness_password": "x"}

# (user, url, body with one blank value, location of the blank value)
BLANKS = [
    ("gus", "/api/guard/portals/main-exit/override", {"reason": BLANK, "password": PASSWORD}, ["reason"]),
    ("gus", "/api/guard/portals/main-exit/override", {"reason": "  ok   ", "password": PASSWORD}, ["reason"]),
    ("admin", "/api/admin/venues", {"code": "v1", "name": BLANK, "ceiling": "internal"}, ["name"]),
    ("admin", "/api/admin/portals", {"code": "p1", "name": BLANK, "inside": "corridor"}, ["name"]),
    ("admin", "/api/admin/portals", {"code": "p1", "name": "P", "inside": BLANK}, ["inside"]),
    ("admin", "/api/admin/devices", {"name": "d1", "kind": "camera", "portal": BLANK}, ["portal"]),
    ("admin", "/api/admin/people", {"username": "u1", "name": BLANK, "clearance": "internal"}, ["name"]),
    (
        "admin",
        "/api/admin/people",
        {"username": "u1", "name": "U", "clearance": "internal", "badges": [BLANK]},
        ["badges", 0],
    ),
    (
        "admin",
        "/api/admin/people",
        {"username": "u1", "name": "U", "clearance": "internal", "groups": [BLANK]},
        ["groups", 0],
    ),
    ("admin", "/api/admin/items", {**ITEM, "title": BLANK}, ["title"]),
    ("admin", "/api/admin/items", {**ITEM, "register_number": BLANK}, ["register_number"]),
    ("admin", "/api/admin/items", {**ITEM, "originating_unit": BLANK}, ["originating_unit"]),
    ("admin", "/api/admin/items", {**ITEM, "declassify_condition": BLANK}, ["declassify_condition"]),
    ("admin", "/api/admin/items", {**ITEM, "scope_groups": [BLANK]}, ["scope_groups", 0]),
    ("clara", "/api/admin/items/2/relabel", {"reason": BLANK, "level": "secret"}, ["reason"]),
    ("admin", "/api/admin/meetings", {**MEETING, "title": BLANK}, ["title"]),
    ("admin", "/api/admin/meetings", {**MEETING, "participants": ["bob", BLANK]}, ["participants", 1]),
    ("bob", "/api/approvals", {**APPROVAL, "items": [BLANK]}, ["items", 0]),
    ("bob", "/api/approvals", {**APPROVAL, "people": [BLANK]}, ["people", 0]),
    ("bob", "/api/approvals", {**APPROVAL, "originator_consent": BLANK}, ["originator_consent"]),
    ("otto", "/api/destruction/run", {**RUN, "witness": BLANK}, ["witness"]),
    ("otto", "/api/destruction/run", {**RUN, "station": BLANK}, ["station"]),
    ("audrey", "/api/audit/incidents/1/actions", {"text": "\n \t\n"}, ["text"]),
]


def journal_length(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.execute(select(func.count()).select_from(JournalEntry)).scalar_one())


@pytest.mark.parametrize(("user", "url", "body", "loc"), BLANKS, ids=[f"{c[1]}:{c[3]}" for c in BLANKS])
def test_blank_free_text_is_422_naming_the_field(
    client: TestClient,
    tokens: Tokens,
    control: SiteRuntime,
    factory: sessionmaker[Session],
    user: str,
    url: str,
    body: dict[str, object],
    loc: list[str],
) -> None:
    headers = tokens[user]  # signing in is journalled: before counting
    before = journal_length(factory)
    response = client.post(url, json=body, headers=headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", *loc]
    assert error["msg"] in ("must not be blank", "needs at least 5 characters besides surrounding spaces")
    assert journal_length(factory) == before
    control.recorder.flush(10)
    assert journal_length(factory) == before  # nothing reached the site either


def test_text_is_stored_without_its_surrounding_spaces(
    client: TestClient, tokens: Tokens, control: SiteRuntime, factory: sessionmaker[Session]
) -> None:
    body = {"reason": "  courier identity confirmed \n", "password": PASSWORD}
    answer = client.post("/api/guard/portals/main-exit/override", json=body, headers=tokens["gus"])
    assert answer.status_code == 409  # no blocked exit there; the engine refused it and it was journalled
    control.recorder.flush(10)
    with factory() as session:
        entry = session.execute(select(JournalEntry).where(JournalEntry.action == "exit.override_refused")).scalar_one()
    assert json.loads(entry.payload)["reason"] == "courier identity confirmed"


def test_a_blank_name_on_a_form_comes_back_as_a_message(client: TestClient, factory: sessionmaker[Session]) -> None:
    csrf = browser_login(client, "admin")
    before = journal_length(factory)
    form = {"code": "blank-room", "name": BLANK, "ceiling": "internal", "csrf_token": csrf}
    response = client.post("/admin/venues", data=form, follow_redirects=False)
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert "name: must not be blank" in page.text
    assert journal_length(factory) == before

"""The administrator's and approver's pages over HTTP: lists and filters, refusals shown in the form they came
from (with the rule), typed device forms, departures, label read-back from an uploaded photo, and the full
request on the approver's page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.conftest import Tokens, browser_login


def form_error(html: str, form_id: str) -> str:
    """The refusal shown inside the form `form_id` ("" when there is none)."""
    form = html.split(f'id="{form_id}"', 1)[1].split("</form>", 1)[0]
    found = re.search(r'class="form-error"[^>]*>([^<]*)<', form)
    return found.group(1) if found else ""


def test_lists_filter(client: TestClient) -> None:
    browser_login(client, "admin")
    items = client.get("/admin/items", params={"level": "top_secret"}).text
    assert "T-2026-001/1" in items and "S-2026-001/1" not in items
    assert "S-2026-001/1" in client.get("/admin/items", params={"q": "negotiation"}).text
    people = client.get("/admin/people", params={"role": "guard"}).text
    assert 'data-person="gus"' in people and 'data-person="bob"' not in people
    assert 'data-venue="destruction-centre"' in client.get("/admin/venues", params={"flag": "destruction"}).text
    assert 'data-portal="vault-dock"' in client.get("/admin/portals", params={"venue": "vault"}).text
    assert 'data-device="shredder-1"' in client.get("/admin/devices", params={"kind": "modbus_shredder"}).text
    approvals = client.get("/approvals", params={"state": "approved", "q": "backup"}).text
    assert 'data-ref="A-2026-0002"' in approvals and 'data-ref="A-2026-0001"' not in approvals
    for page in ("/admin/venues/archive", "/admin/portals/main-exit", "/admin/devices/main-exit-reader"):
        assert client.get(page).status_code == 200, page


def test_a_refused_venue_change_shows_the_rule_in_the_form(client: TestClient) -> None:
    csrf = browser_login(client, "admin")
    answer = client.post(
        "/admin/venues/archive", data={"csrf_token": csrf, "name": "Archive", "ceiling": "internal", "storage": "on"}
    )
    assert answer.status_code == 409
    message = form_error(answer.text, "venue-edit")
    assert "venue.ceiling" in message and "S-2026-001/1" in message
    assert "<option selected>internal</option>" in answer.text  # the value as typed, to correct
    assert "secret" in client.get("/admin/venues", params={"q": "archive"}).text
    retired = client.post("/admin/venues/archive/retire", data={"csrf_token": csrf})
    assert retired.status_code == 409 and "venue.in_use" in form_error(retired.text, "venue-edit")


def test_a_portal_and_its_devices_from_the_typed_forms(client: TestClient) -> None:
    csrf = browser_login(client, "admin")
    created = client.post(
        "/admin/portals",
        data={
            "csrf_token": csrf,
            "code": "annex-door",
            "name": "Annex door",
            "inside": "reading-room",
            "outside": "corridor",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303 and created.headers["location"].startswith("/admin/portals/annex-door")
    form = client.get("/admin/devices/new", params={"kind": "osdp_panel", "portal": "annex-door"}).text
    assert 'name="setting.address"' in form and 'name="setting.install_mode"' in form and "antenna.1" not in form
    panel = {"csrf_token": csrf, "kind": "osdp_panel", "name": "annex-panel", "portal": "annex-door"}
    refused = client.post("/admin/devices", data={**panel, "setting.address": "200"})
    assert refused.status_code == 422 and "settings.address" in form_error(refused.text, "device-form")
    assert 'name="setting.address" inputmode="decimal" value="200"' in refused.text
    added = client.post("/admin/devices", data={**panel, "setting.address": "4"}, follow_redirects=False)
    assert added.status_code == 303, added.text
    reader = client.get("/admin/devices/new", params={"kind": "llrp_reader", "portal": "annex-door"}).text
    assert 'name="setting.profile"' in reader and 'name="antenna.4"' in reader
    one_side = {"csrf_token": csrf, "kind": "llrp_reader", "name": "annex-reader", "portal": "annex-door"}
    client.post("/admin/devices", data={**one_side, "antenna.1": "inside"}, follow_redirects=False)
    page = client.get("/admin/portals/annex-door").text
    assert 'data-device="annex-panel"' in page and "portal.antenna_sides" in page
    client.post("/admin/devices/annex-reader", data={**one_side, "antenna.1": "inside", "antenna.2": "outside"})
    page = client.get("/admin/portals/annex-door").text
    assert "portal.antenna_sides" not in page and "1: inside, 2: outside" in page
    probed = client.post("/admin/devices/annex-panel/probe", data={"csrf_token": csrf})
    assert 'id="probe-result"' in probed.text
    twice = client.post("/admin/devices", data={**panel, "name": "annex-panel-2"})
    assert twice.status_code == 409 and "portal.one_panel" in form_error(twice.text, "device-form")


def test_roles_as_checkboxes_and_a_sign_off_waiting_for_items(client: TestClient, tokens: Tokens) -> None:
    csrf = browser_login(client, "admin")
    page = client.get("/admin/people/bob").text
    assert page.count('type="checkbox" name="roles"') == 8
    changed = client.post(
        "/admin/people/bob",
        data={
            "csrf_token": csrf,
            "name": "Bob Researcher",
            "clearance": "secret",
            "roles": ["", "custodian", "witness"],
            "badges": "20003",
            "groups": "archive-readers",
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    bob = client.get("/api/admin/people", params={"q": "bob"}, headers=tokens["admin"]).json()[0]
    assert bob["roles"] == ["custodian", "witness"]
    assert "S-2026-001/1" in client.get("/admin/people/bob").text.split('id="to-return"')[1]
    refused = client.post("/admin/people/bob/sign-off", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "person.items_in_custody" in refused.text.split('id="departure"')[1]
    lowered = client.post(
        "/admin/people/bob", data={"csrf_token": csrf, "name": "Bob", "clearance": "internal", "roles": "custodian"}
    )
    assert lowered.status_code == 409 and "custody.clearance" in form_error(lowered.text, "person-edit")


def test_a_label_photo_clears_label_out_of_date(client: TestClient, tokens: Tokens) -> None:
    csrf = browser_login(client, "admin")
    item = client.get("/api/admin/items", params={"q": "S-2026-002"}, headers=tokens["admin"]).json()[0]
    assert item["label_out_of_date"]
    page = client.get(f"/admin/items/{item['id']}").text
    assert "label out of date" in page and f"/api/admin/items/{item['id']}/label.pdf" in page
    png = client.get(f"/api/admin/items/{item['id']}/label.png").content
    unreadable = client.post(
        f"/admin/items/{item['id']}/label-check",
        data={"csrf_token": csrf},
        files={"image": ("label.png", b"not a photo", "image/png")},
    )
    assert unreadable.status_code == 409 and "label.unreadable" in unreadable.text
    checked = client.post(
        f"/admin/items/{item['id']}/label-check",
        data={"csrf_token": csrf},
        files={"image": ("label.png", png, "image/png")},
    )
    assert checked.status_code == 200 and "label out of date cleared" in checked.text
    assert not client.get(f"/api/admin/items/{item['id']}", headers=tokens["admin"]).json()["label_out_of_date"]


def test_the_approver_sees_the_whole_request_and_no_approve_button_when_named(
    client: TestClient, tokens: Tokens
) -> None:
    request = {
        "kind": "carry_out",
        "items": ["S-2026-001"],
        "people": ["bob", "paul"],
        "portal": "main-exit",
        "valid_from": "2026-06-01T09:00:00Z",
        "valid_until": "2026-06-02T17:00:00Z",
        "uses": 2,
        "reason": "Courier run to the ministry with Paul",
    }
    made = client.post("/api/approvals", headers=tokens["bob"], json=request)
    assert made.status_code == 201, made.text
    ref = made.json()["ref"]
    alone = client.post("/api/approvals", headers=tokens["bob"], json={**request, "people": ["bob"]}).json()["ref"]
    browser_login(client, "paul")
    page = client.get(f"/approvals/{ref}").text
    for shown in (
        "Courier run to the ministry with Paul",
        "Negotiation briefing",
        "secret",
        "main-exit",
        "2 left of 2",
        "Paul Approver (paul)",
        "2026-06-01 09:00 to 2026-06-02 17:00 UTC",
    ):
        assert shown in page, shown
    assert 'value="approve"' not in page and "approval.approver_named" in page
    assert 'value="refuse"' in page
    listed = client.get("/approvals").text.split(f'data-ref="{ref}"')[1].split("</tr>")[0]
    assert 'value="approve"' not in listed and "approver_named" in listed
    other = client.get(f"/approvals/{alone}").text
    assert 'value="approve"' in other and "blocker" not in other


def test_a_page_for_something_missing_says_so_in_words(client: TestClient) -> None:
    browser_login(client, "admin")
    answer = client.get("/admin/venues/no-such-room")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert "no venue &#x27;no-such-room&#x27;" in answer.text
    assert client.get("/admin/devices/new", params={"kind": "teleporter"}).status_code == 404

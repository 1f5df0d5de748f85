"""Administration through the JSON API: searches and filters, changes and retirements through the register's
services (a refusal names its rule), device settings checked by the kind's typed settings, departures."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Tokens


def test_searches_and_filters(client: TestClient, tokens: Tokens) -> None:
    admin = tokens["admin"]
    secret = client.get("/api/admin/items", params={"level": "secret"}, headers=admin).json()
    assert {i["register_number"] for i in secret} == {"S-2026-001", "S-2026-002"}
    found = client.get("/api/admin/items", params={"q": "briefing"}, headers=admin).json()
    assert [i["register_number"] for i in found] == ["S-2026-001"]
    held = client.get("/api/admin/items", params={"custodian": "bob"}, headers=admin).json()
    assert [i["register_number"] for i in held] == ["S-2026-001"]
    approvers = client.get("/api/admin/people", params={"role": "approver"}, headers=admin).json()
    assert {p["username"] for p in approvers} == {"paul", "petra"}
    assert [v["code"] for v in client.get("/api/admin/venues", params={"flag": "destruction"}, headers=admin).json()]
    assert client.get("/api/admin/venues", params={"flag": "nonsense"}, headers=admin).status_code == 422
    doors = client.get("/api/admin/portals", params={"venue": "vault"}, headers=admin).json()
    assert [p["code"] for p in doors] == ["vault-dock"]
    panels = client.get("/api/admin/devices", params={"kind": "osdp_panel"}, headers=admin).json()
    assert len(panels) == 3
    assert client.get("/api/admin/roles", headers=admin).json()[0] == "administrator"
    # The search text is literal: an underscore or a percent sign is not a wildcard.
    assert [d["name"] for d in client.get("/api/admin/devices", params={"q": "_"}, headers=admin).json()] == []
    assert len(client.get("/api/admin/devices", params={"q": "-"}, headers=admin).json()) > 5
    assert client.get("/api/admin/items", params={"q": "100%"}, headers=admin).json() == []


def test_a_venue_change_is_refused_by_its_rule_and_nothing_changes(client: TestClient, tokens: Tokens) -> None:
    admin = tokens["admin"]
    answer = client.put(
        "/api/admin/venues/archive", headers=admin, json={"name": "Archive", "ceiling": "internal", "storage": True}
    )
    assert answer.status_code == 409 and answer.json()["rule"] == "venue.ceiling", answer.text
    assert "S-2026-001/1" in answer.json()["detail"]
    [archive] = [v for v in client.get("/api/admin/venues", params={"q": "archive"}, headers=admin).json()]
    assert archive["ceiling"] == "secret"
    renamed = client.put(
        "/api/admin/venues/archive", headers=admin, json={"name": "Main archive", "ceiling": "secret", "storage": True}
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Main archive"


def test_retiring_refuses_what_is_referred_to(client: TestClient, tokens: Tokens) -> None:
    admin = tokens["admin"]
    refused = client.delete("/api/admin/venues/archive", headers=admin)
    assert refused.status_code == 409 and refused.json()["rule"] == "venue.in_use"
    assert client.delete("/api/admin/portals/main-exit", headers=admin).json()["rule"] == "portal.in_use"
    client.post("/api/admin/venues", headers=admin, json={"code": "spare", "name": "Spare", "ceiling": "internal"})
    assert client.delete("/api/admin/venues/spare", headers=admin).status_code == 204
    assert client.delete("/api/admin/devices/main-exit-camera", headers=admin).status_code == 204
    assert client.delete("/api/admin/devices/main-exit-camera", headers=admin).status_code == 404


def test_device_settings_are_the_kinds_typed_settings(client: TestClient, tokens: Tokens) -> None:
    admin = tokens["admin"]
    kinds = {k["name"]: k for k in client.get("/api/admin/device-kinds", headers=admin).json()}
    assert kinds["osdp_panel"]["role"] == "panel"
    address = next(f for f in kinds["osdp_panel"]["settings"] if f["name"] == "address")
    assert address == {"name": "address", "type": "int", "default": 1, "choices": [], "optional": False}
    body = {"name": "door-x", "kind": "osdp_panel", "portal": "reading-door", "settings": {"address": 200}}
    refused = client.post("/api/admin/devices", headers=admin, json=body)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "settings", "address"]
    body["settings"] = {"address": "7", "scbk_env": "CUSTODIAN_SCBK_X"}
    created = client.post("/api/admin/devices", headers=admin, json=body)
    assert created.status_code == 201 and created.json()["settings"]["address"] == 7, created.text
    twice = client.post("/api/admin/devices", headers=admin, json={**body, "name": "door-y"})
    assert twice.status_code == 409 and twice.json()["rule"] == "portal.one_panel"
    moved = client.put("/api/admin/devices/door-x", headers=admin, json={"portal": "destruction-door"})
    assert moved.status_code == 200 and moved.json()["portal"] == "destruction-door"
    probe = client.post("/api/admin/devices/door-x/probe", headers=admin)
    assert probe.status_code == 200 and probe.json()["name"] == "door-x"


def test_person_changes_follow_the_rules(client: TestClient, tokens: Tokens) -> None:
    admin = tokens["admin"]
    bob = {"name": "Bob Researcher", "clearance": "confidential", "roles": ["custodian"], "badges": ["20003"]}
    lowered = client.put("/api/admin/people/bob", headers=admin, json=bob)
    assert lowered.status_code == 409 and lowered.json()["rule"] == "custody.clearance", lowered.text
    taken = client.put("/api/admin/people/bob", headers=admin, json={**bob, "clearance": "secret", "badges": ["20004"]})
    assert taken.status_code == 409 and taken.json()["rule"] == "person.badge_unique"
    changed = client.put(
        "/api/admin/people/bob",
        headers=admin,
        json={**bob, "clearance": "secret", "roles": ["custodian", "witness"], "groups": ["archive-readers"]},
    )
    assert changed.status_code == 200 and changed.json()["roles"] == ["custodian", "witness"]
    last = client.put("/api/admin/people/admin", headers=admin, json={"name": "Ada", "clearance": "secret"})
    assert last.status_code == 409 and last.json()["rule"] == "person.last_administrator"


def test_departure_lists_the_items_and_sign_off_waits_for_them(client: TestClient, tokens: Tokens) -> None:
    admin = tokens["admin"]
    leaving = client.post("/api/admin/people/bob/departure", headers=admin).json()
    assert leaving["status"] == "departing"
    assert [i["register_number"] for i in leaving["items_to_return"]] == ["S-2026-001"]
    refused = client.post("/api/admin/people/bob/sign-off", headers=admin, json={})
    assert refused.status_code == 409 and refused.json()["rule"] == "person.items_in_custody"
    signed = client.post("/api/admin/people/dave/sign-off", headers=admin, json={"separation_until": "2027-01-01"})
    assert signed.status_code == 200 and signed.json()["status"] == "separation"


def test_approvals_filter_by_state_kind_and_text(client: TestClient, tokens: Tokens) -> None:
    paul = tokens["paul"]
    found = client.get("/api/approvals", params={"kind": "destroy"}, headers=paul).json()
    assert [a["ref"] for a in found] == ["A-2026-0002"]
    assert found[0]["destination_text"] == "" and found[0]["uses_total"] == 1
    courier = client.get("/api/approvals", params={"q": "courier"}, headers=paul).json()
    assert [a["ref"] for a in courier] == ["A-2026-0003"] and courier[0]["portal"] == "vault-dock"
    assert client.get("/api/approvals", params={"state": "refused"}, headers=paul).json() == []

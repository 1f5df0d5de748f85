"""The records routes through the real app: a printed label photographed and read back, seizures,
inspections, a disputed level and who read an item, each answer journaled under the caller's name."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.routers import records
from registry.models import JournalEntry
from tests.api.conftest import Tokens

SURVEY, BRIEFING, BACKUP = 3, 4, 5  # C-2026-001, S-2026-001, S-2026-002 in examples/site.toml


def journaled(factory: sessionmaker[Session], action: str) -> list[tuple[str, str, dict[str, object]]]:
    with factory() as session:
        rows = session.execute(select(JournalEntry).where(JournalEntry.action == action).order_by(JournalEntry.seq))
        return [(e.actor, e.subject, json.loads(e.payload)) for e in rows.scalars()]


def photographed(png: bytes, seed: int) -> bytes:
    """A phone photo of a printed label: tilted on a desk, uneven light, out of focus, sensor noise, JPEG."""
    rng = np.random.default_rng(seed)
    label = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    height, width = label.shape
    frame_w, frame_h = 1600, 1200
    left, top = 300 + rng.uniform(-40, 40), 330 + rng.uniform(-40, 40)
    target = np.float32([[left, top], [left + 1000, top + 60], [left + 980, top + 620], [left - 20, top + 560]])
    target += rng.uniform(-25, 25, size=(4, 2)).astype(np.float32)
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    warp = cv2.getPerspectiveTransform(source, target)
    desk = np.full((frame_h, frame_w), 95, np.uint8)
    frame = cv2.warpPerspective(label, warp, (frame_w, frame_h), dst=desk, borderMode=cv2.BORDER_TRANSPARENT)
    light = np.linspace(0.75, 1.1, frame_w, dtype=np.float32)[None, :]
    frame = cv2.GaussianBlur(frame.astype(np.float32) * light, (0, 0), 1.3)
    frame += rng.normal(0, 6, frame.shape).astype(np.float32)
    ok, jpeg = cv2.imencode(".jpg", np.clip(frame, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return jpeg.tobytes()


def printed_label(client: TestClient, tokens: Tokens, item_id: int) -> bytes:
    response = client.get(f"/api/admin/items/{item_id}/label.png", headers=tokens["clara"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return response.content


def check(client: TestClient, tokens: Tokens, user: str, item_id: int, image: bytes):  # type: ignore[no-untyped-def]
    files = {"image": ("label.jpg", image, "image/jpeg")}
    return client.post(f"/api/records/items/{item_id}/label-check", files=files, headers=tokens[user])


def flag(client: TestClient, tokens: Tokens, item_id: int) -> bool:
    return bool(client.get(f"/api/admin/items/{item_id}", headers=tokens["clara"]).json()["label_out_of_date"])


def test_a_photographed_label_that_agrees_clears_label_out_of_date(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    assert flag(client, tokens, BRIEFING)
    response = check(client, tokens, "otto", BRIEFING, photographed(printed_label(client, tokens, BRIEFING), 1))
    assert response.status_code == 200, response.text
    assert response.json() == {"item": "S-2026-001/1", "level": "secret", "label_out_of_date": False}
    assert not flag(client, tokens, BRIEFING)
    assert journaled(factory, "item.label_verified") == [("otto", "item:S-2026-001/1", {"level": "secret"})]
    # The caller's word is no longer enough: the route that cleared the flag without a photo is gone.
    old = client.post(f"/api/admin/items/{BRIEFING}/label-verified", headers=tokens["clara"])
    assert old.status_code in (404, 405)


def test_another_items_label_is_409_and_the_mismatch_stays_journaled(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    assert check(client, tokens, "clara", BRIEFING, printed_label(client, tokens, BRIEFING)).status_code == 200
    response = check(client, tokens, "clara", BRIEFING, photographed(printed_label(client, tokens, BACKUP), 2))
    assert response.status_code == 409
    assert response.json()["rule"] == "label.disagrees"
    assert {"epc", "register_key"} <= set(response.json()["details"])
    assert flag(client, tokens, BRIEFING)  # flagged again: the item may carry a wrong label
    [(actor, subject, payload)] = journaled(factory, "item.label_mismatch")
    assert (actor, subject) == ("clara", "item:S-2026-001/1")
    assert payload["read"]["register_key"] == "S-2026-002/1"  # type: ignore[index]


def test_an_old_label_after_relabelling_is_409(client: TestClient, tokens: Tokens) -> None:
    old = printed_label(client, tokens, SURVEY)
    relabel = {"reason": "annual review", "level": "internal"}
    assert client.post(f"/api/admin/items/{SURVEY}/relabel", json=relabel, headers=tokens["clara"]).status_code == 200
    response = check(client, tokens, "clara", SURVEY, photographed(old, 3))
    assert response.status_code == 409 and response.json()["details"] == ["level"]
    fresh = photographed(printed_label(client, tokens, SURVEY), 4)
    assert check(client, tokens, "clara", SURVEY, fresh).json()["level"] == "internal"


@pytest.mark.parametrize("image", [b"", b"\x89PNG\r\n\x1a\n broken"], ids=["empty", "corrupt"])
def test_an_unreadable_photo_is_409_and_changes_nothing(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session], image: bytes
) -> None:
    before = len(journaled(factory, "item.label_mismatch")) + len(journaled(factory, "item.label_verified"))
    response = check(client, tokens, "admin", BRIEFING, image)
    assert response.status_code == 409 and response.json()["rule"] == "label.unreadable"
    assert flag(client, tokens, BRIEFING)
    after = len(journaled(factory, "item.label_mismatch")) + len(journaled(factory, "item.label_verified"))
    assert after == before


def test_an_oversized_photo_is_413(client: TestClient, tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "MAX_IMAGE_BYTES", 1000)
    assert check(client, tokens, "admin", BRIEFING, b"\0" * 1001).status_code == 413


SEIZURE = {
    "description": "Printouts of the regional survey found at a copy shop",
    "level": "confidential",
    "quantity": 4,
    "source": "Copy shop at 12 Harbour Road",
    "spread": "Handled by two shop employees",
    "seized_by": [
        {"name": "Li Wei", "organisation": "Secrecy bureau", "identification": "SB-0071"},
        {"username": "gus"},
    ],
    "seized_at": "2026-05-04T15:30:00Z",
    "venue": "archive",
    "items": ["C-2026-001"],
}


def test_a_seizure_is_recorded_listed_and_journaled(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    blank = client.post("/api/records/seizures", json={**SEIZURE, "spread": "  "}, headers=tokens["admin"])
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"][-1] == "spread"  # blank text: schema
    none = client.post("/api/records/seizures", json={**SEIZURE, "quantity": 0}, headers=tokens["admin"])
    assert none.status_code == 422 and none.json()["detail"][0]["loc"][-1] == "quantity"
    created = client.post("/api/records/seizures", json=SEIZURE, headers=tokens["admin"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["level"], body["quantity"], body["items"]) == ("confidential", 4, ["C-2026-001/1"])
    assert body["seized_by"] == ["Li Wei, Secrecy bureau (id SB-0071)", "gus"]
    listed = client.get("/api/records/seizures", headers=tokens["audrey"]).json()
    assert [s["id"] for s in listed] == [body["id"]]
    assert client.get(f"/api/admin/items/{SURVEY}", headers=tokens["admin"]).json()["status"] == "seized"
    assert [(a, s) for a, s, _ in journaled(factory, "seizure.recorded")] == [("admin", f"seizure:{body['id']}")]


def test_an_inspection_needs_two_inspectors(client: TestClient, tokens: Tokens) -> None:
    inspection = {
        "kind": "on_site",
        "subject": "Technical precautions, archive",
        "started_at": "2026-06-02T09:00:00Z",
        "inspectors": [{"name": "Li Wei", "identification": "SB-0071"}],
        "findings": ["Reader antenna unplugged"],
        "actions": ["Reconnect it"],
        "venues": ["archive"],
    }
    alone = client.post("/api/records/inspections", json=inspection, headers=tokens["audrey"])
    assert alone.status_code == 409 and alone.json()["rule"] == "inspection.two_inspectors"
    inspection["inspectors"].append({"name": "Zhang Min", "identification": "SB-0102"})  # type: ignore[attr-defined]
    created = client.post("/api/records/inspections", json=inspection, headers=tokens["audrey"])
    assert created.status_code == 201, created.text
    assert created.json()["findings"] == ["Reader antenna unplugged"] and created.json()["recorded_by"] == "audrey"
    assert len(client.get("/api/records/inspections", headers=tokens["admin"]).json()) == 1


def test_a_disputed_level_protects_every_copy_until_a_classifier_decides(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    body = {
        "reason": "The ministry holds annex B secret",
        "proposals": [{"level": "secret", "proposed_by": "Ministry"}],
    }
    opened = client.post(f"/api/records/items/{SURVEY}/disputes", json=body, headers=tokens["admin"])
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert (dispute["register_level"], dispute["protected_at"], dispute["state"]) == ("confidential", "secret", "open")
    assert dispute["conflicts"] == [
        "C-2026-001/1: a secret item may not be placed in reading-room (ceiling confidential)"
    ]
    assert client.get(f"/api/admin/items/{SURVEY}", headers=tokens["admin"]).json()["level"] == "secret"
    again = client.post(f"/api/records/items/{SURVEY}/disputes", json=body, headers=tokens["clara"])
    assert again.status_code == 409 and again.json()["rule"] == "dispute.already_open"
    decision = {"level": "confidential", "note": "The ministry's guide lists annex B as confidential"}
    decided = client.post(f"/api/records/disputes/{dispute['id']}/decision", json=decision, headers=tokens["clara"])
    assert decided.status_code == 200, decided.text
    assert (decided.json()["state"], decided.json()["decided_by"], decided.json()["protected_at"]) == (
        "decided",
        "clara",
        None,
    )
    assert client.get(f"/api/admin/items/{SURVEY}", headers=tokens["admin"]).json()["level"] == "confidential"
    assert [a for a, _, _ in journaled(factory, "item.level_disputed")] == ["admin"]
    assert [a for a, _, _ in journaled(factory, "item.dispute_decided")] == ["clara"]


def test_a_reading_is_recorded_and_listed_with_who_knew(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    reading = {"item": "S-2026-001", "person": "bob", "venue": "archive", "reference": "desk 3"}
    answer = client.post("/api/records/readings", json=reading, headers=tokens["alice"])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"item": "S-2026-001/1", "person": "bob", "venue": "archive", "recorded": True}
    short = client.post("/api/records/readings", json={**reading, "person": "carol"}, headers=tokens["alice"])
    assert short.status_code == 409 and short.json()["rule"] == "access.clearance"
    listed = client.get(f"/api/records/items/{BRIEFING}/access", headers=tokens["audrey"]).json()
    assert [(a["person"], a["kind"]) for a in listed] == [("bob", "custody"), ("bob", "read")]
    assert listed[1]["venue"] == "archive" and listed[1]["recorded_by"] == "alice" and listed[1]["context"] == "desk 3"
    [(actor, subject, payload)] = journaled(factory, "access.recorded")[-1:]
    assert (actor, subject, payload["kind"]) == ("alice", "item:S-2026-001/1", "read")

"""The auditor's API: the journal browser's filters and pages, the head and the anchors' verdict, sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from registry import anchors, db, journal
from registry.models import JournalEntry
from tests.api.conftest import Tokens, token_for


def entries(client: TestClient, headers: dict[str, str], **query: object) -> dict[str, object]:
    response = client.get("/api/audit/journal/entries", params=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_filters_by_actor_action_subject_and_time(
    client: TestClient, tokens: Tokens, factory: sessionmaker[Session]
) -> None:
    audrey = tokens["audrey"]
    with factory() as session:
        total = session.execute(select(func.count()).select_from(JournalEntry)).scalar_one()
        loader_items = session.execute(
            select(func.count()).select_from(JournalEntry).where(
                JournalEntry.actor == "site-loader", JournalEntry.action.startswith("item.")
            )
        ).scalar_one()
    everything = entries(client, audrey, limit=500)
    assert everything["matched"] >= total  # signing in added entries since
    page = entries(client, audrey, actor="site-loader", action="item.", limit=500)
    assert page["matched"] == loader_items == len(page["entries"])
    assert {e["actor"] for e in page["entries"]} == {"site-loader"}
    assert all(e["action"].startswith("item.") for e in page["entries"])
    subject = entries(client, audrey, subject="S-2026-002")
    assert subject["entries"] and all("S-2026-002" in e["subject"] for e in subject["entries"])
    # Prefix and substring are literal: LIKE wildcards in a filter match nothing special.
    assert entries(client, audrey, action="%")["matched"] == 0
    assert entries(client, audrey, subject="_")["matched"] == 0
    newest = everything["entries"][0]
    assert entries(client, audrey, since=newest["at"])["entries"][0]["seq"] == newest["seq"]
    assert entries(client, audrey, until=newest["at"])["entries"][0]["seq"] < newest["seq"]
    naive = client.get("/api/audit/journal/entries?since=2026-01-01T00:00:00", headers=audrey)
    assert naive.status_code == 422


def test_pages_are_newest_first_and_stable_by_sequence(client: TestClient, tokens: Tokens) -> None:
    audrey = tokens["audrey"]
    first = entries(client, audrey, limit=10)
    seqs = [e["seq"] for e in first["entries"]]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == 10
    second = entries(client, audrey, limit=10, before=first["next_before"])
    assert second["entries"][0]["seq"] == seqs[-1] - 1
    assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in second["entries"])
    last = entries(client, audrey, limit=500, before=11)
    assert [e["seq"] for e in last["entries"]] == list(range(10, 0, -1)) and last["next_before"] is None
    assert client.get("/api/audit/journal/entries?limit=501", headers=audrey).status_code == 422


def test_anchor_status_follows_the_folder(
    settings: ApiSettings, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    unset = create_app(settings, session_factory=factory, control=None)
    with TestClient(unset) as client:
        answer = client.get("/api/audit/anchors", headers=token_for(client, "audrey")).json()
    assert answer["state"] == "not_configured" and answer["folder"] is None

    folder = tmp_path / "anchors"
    configured = ApiSettings(secret_key=settings.secret_key, anchors_dir=folder)
    app = create_app(configured, session_factory=factory, control=None)
    with TestClient(app) as client:
        audrey = token_for(client, "audrey")
        assert client.get("/api/audit/anchors", headers=audrey).json()["state"] == "not_anchored"
        with factory() as session:
            written = anchors.write_anchor(session, folder)
        answer = client.get("/api/audit/anchors", headers=audrey).json()
        assert (answer["state"], answer["newest_seq"], answer["newest_hash"]) == ("anchored", written.seq, written.hash)
        with factory() as session:
            head = journal.head(session)
        assert (answer["head_seq"], answer["head_hash"]) == (head.seq, head.hash)
        with db.transaction(factory) as session:
            session.execute(delete(JournalEntry).where(JournalEntry.seq >= written.seq))
        broken = client.get("/api/audit/anchors", headers=audrey).json()
        assert broken["state"] == "broken" and "deleted" in broken["problem"]


@pytest.mark.parametrize(("venue", "code", "rule"), [("corridor", 409, "inventory.no_reader"), ("nowhere", 404, None)])
def test_a_sweep_needs_a_venue_with_a_reader(
    client: TestClient, tokens: Tokens, venue: str, code: int, rule: str | None
) -> None:
    answer = client.post("/api/audit/inventory/sweep", json={"venue": venue}, headers=tokens["audrey"])
    assert answer.status_code == code and answer.json().get("rule") == rule


def test_a_report_to_the_last_representable_day_does_not_overflow(client: TestClient, tokens: Tokens) -> None:
    for path in ("/api/audit/report", "/api/audit/report.pdf"):
        answer = client.get(f"{path}?start=0001-01-01&end=9999-12-31", headers=tokens["audrey"])
        assert answer.status_code == 200, answer.text

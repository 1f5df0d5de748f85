"""The API on a running simulated site (no test doubles): a destruction operator runs a destruction through
the API, the Modbus machines cycle, and the certificate the register recorded is downloadable; a guard
sees the site's doors and devices."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from controllers.bus import LiveBus
from custodian.web import DEMO_PASSWORD, set_demo_passwords
from custodian.wiring import RunningSite, start_site
from firmware_bridge.rfid.mercury_simulator import FieldTag

DISK = "E28011700000020000000005"


@pytest.fixture
def api(site: sessionmaker[Session], tmp_path: Path) -> Iterator[tuple[TestClient, RunningSite]]:
    set_demo_passwords(site)
    running = start_site(site, LiveBus(), tmp_path / "state", simulate=True)
    settings = ApiSettings(secret_key="k" * 48, certificates_dir=tmp_path / "state" / "certificates")
    app = create_app(settings, session_factory=site, bus=running.bus, control=running.runtime)
    try:
        assert running.wait_ready()
        with TestClient(app) as client:
            yield client, running
    finally:
        running.stop()


def login(client: TestClient, username: str) -> dict[str, str]:
    answer = client.post("/api/token", data={"username": username, "password": DEMO_PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_destruction_through_the_api_and_certificate_download(api: tuple[TestClient, RunningSite]) -> None:
    client, running = api
    assert running.sims is not None
    running.sims.mercury["destruction-intake"].place(FieldTag(DISK, 1, -45))
    otto = login(client, "otto")
    answer = client.post(
        "/api/destruction/run",
        headers=otto,
        json={"station": "shredder-1", "items": ["S-2026-002"], "witness": "wendy", "witness_password": DEMO_PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    [outcome] = answer.json()
    assert outcome["destroyed"], outcome["reason"]
    pdf = client.get(f"/api/destruction/records/{outcome['record_id']}/certificate", headers=otto)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert hashlib.sha256(pdf.content).hexdigest() == outcome["certificate_sha256"]


def test_the_guard_sees_the_sites_doors_and_devices(api: tuple[TestClient, RunningSite]) -> None:
    client, _running = api
    gus = login(client, "gus")
    doors = client.get("/api/guard/doors", headers=gus).json()
    assert {d["portal"] for d in doors} == {"archive-door", "vault-dock", "main-exit"}
    assert {d["links"] for d in doors} == {"online"}
    devices = {d["name"]: d["health"] for d in client.get("/api/guard/devices", headers=gus).json()}
    assert devices["main-exit-panel"] == "online" and devices["archive-door-reader"] == "online"
    assert client.get("/api/guard/doors", headers=login(client, "bob")).status_code == 403


@pytest.fixture
def demo_api(site: sessionmaker[Session], tmp_path: Path) -> Iterator[tuple[TestClient, RunningSite]]:
    """The same site with the demo's controls open (the intake can be loaded from the page)."""
    set_demo_passwords(site)
    running = start_site(site, LiveBus(), tmp_path / "state", simulate=True)
    settings = ApiSettings(secret_key="k" * 48, certificates_dir=tmp_path / "state" / "certificates", demo=True)
    app = create_app(settings, session_factory=site, bus=running.bus, control=running.runtime)
    try:
        assert running.wait_ready()
        with TestClient(app) as client:
            yield client, running
    finally:
        running.stop()


def _approve_destruction(client: TestClient, ref: str, item: str) -> None:
    body = {
        "ref": ref, "kind": "destroy", "items": [item], "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2030-12-31T23:59:59Z", "reason": "retired",
    }
    assert client.post("/api/approvals", json=body, headers=login(client, "bob")).status_code == 201
    assert client.post(f"/api/approvals/{ref}/approve", json={}, headers=login(client, "paul")).status_code == 200


def test_the_page_loads_the_simulated_intake_and_records_the_machines_used(
    demo_api: tuple[TestClient, RunningSite],
) -> None:
    client, running = demo_api
    otto = login(client, "otto")
    _approve_destruction(client, "A-TWICE", "S-2026-002")  # S-2026-002 is now approved twice
    queue = client.get("/api/destruction/queue", headers=otto).json()
    assert [(q["item"], q["approval"], q["other_approvals"], q["method"]) for q in queue] == [
        ("S-2026-002/1", "A-2026-0002", ["A-TWICE"], "degauss then shred")
    ]
    [station] = client.get("/api/destruction/stations", headers=otto).json()
    assert station["name"] == "destruction-centre" and station["simulated_intake"]
    assert [m["name"] for m in station["machines"]] == ["degausser-1", "shredder-1"]

    # Without the tag on the intake the run fails, and the failed record keeps its witness.
    run = {
        "station": "destruction-centre", "items": ["S-2026-002"], "witness": "wendy", "witness_password": DEMO_PASSWORD
    }
    [failed] = client.post("/api/destruction/run", json=run, headers=otto).json()
    assert not failed["destroyed"] and "intake" in failed["reason"]
    placed = client.post("/api/destruction/intake", json={"station": "destruction-centre", "items": ["S-2026-002"]},
                         headers=otto)
    assert placed.json() == [{"item": "S-2026-002/1", "epc": DISK}]
    [done] = client.post("/api/destruction/run", json={**run, "station": "degausser-1"}, headers=otto).json()
    assert done["destroyed"], done["reason"]
    records = {r["id"]: r for r in client.get("/api/destruction/records", headers=otto).json()}
    assert (records[failed["record_id"]]["witness"], records[failed["record_id"]]["device_name"]) == ("wendy", "none")
    record = records[done["record_id"]]
    assert (record["witness"], record["device_name"], record["approval"]) == (
        "wendy", "degausser-1 + shredder-1", "A-2026-0002"
    )
    evidence = client.get(f"/api/destruction/evidence/{record['evidence_image_sha256']}", headers=otto)
    assert evidence.status_code == 200 and evidence.content.startswith(b"\x89PNG")
    assert hashlib.sha256(evidence.content).hexdigest() == record["evidence_image_sha256"]
    steps = [e.title for e in running.bus.history() if e.kind == "destruction"]
    for expected in ("intake read", "degausser-1 cycle complete", "shredder-1 cycle complete",
                     "particle analysis pass", "witnessed", "destroyed and verified"):
        assert any(expected in title for title in steps), (expected, steps)


def test_a_machine_the_medium_does_not_need_is_refused_and_the_intake_is_demo_only(
    api: tuple[TestClient, RunningSite],
) -> None:
    client, _running = api
    otto = login(client, "otto")
    _approve_destruction(client, "A-PAPER", "S-2026-001")
    run = {"station": "degausser-1", "items": ["S-2026-001"], "witness": "wendy", "witness_password": DEMO_PASSWORD}
    refused = client.post("/api/destruction/run", json=run, headers=otto)
    assert refused.status_code == 409 and refused.json()["rule"] == "destruction.device"
    intake = client.post("/api/destruction/intake", json={"station": "destruction-centre", "items": ["S-2026-001"]},
                         headers=otto)
    assert intake.status_code == 409 and intake.json()["rule"] == "destruction.demo_only"

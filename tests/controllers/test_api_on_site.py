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
        json={"station": "shredder-1", "items": ["S-2026-002"], "witness": "wendy"},
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

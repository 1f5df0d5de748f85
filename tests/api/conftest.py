"""The API under test: built by the app factory around a SQLite register loaded from examples/site.toml,
with a password for every demo person, a live bus and a recording stand-in for the running site."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from api.server import uvicorn_config
from controllers.bus import LiveBus
from controllers.control import DestructionOutcome, DeviceProbe, DeviceState, DoorState
from registry import db
from registry.passwords import hash_password
from registry.services import lookup, people
from registry.sitefile import load

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "site.toml"
PASSWORD = "demo-password-2026"
SECRET = "k" * 48
# One demo person per role (examples/site.toml).
USER_FOR_ROLE = {
    "administrator": "admin",
    "classifier": "clara",
    "approver": "paul",
    "guard": "gus",
    "destruction_operator": "otto",
    "witness": "wendy",
    "auditor": "audrey",
    "custodian": "alice",
}


@dataclass
class RecordingControl:
    """A SiteControl that answers from fixed state and records every command it is given."""

    acknowledged: list[tuple[int, str]] = field(default_factory=list)
    overrides: list[tuple[str, str, str]] = field(default_factory=list)
    forgiven: list[tuple[str, str, str]] = field(default_factory=list)
    destructions: list[tuple[str, list[str], str, str]] = field(default_factory=list)
    open_alarms: set[int] = field(default_factory=lambda: {1, 2, 3})
    # What a destruction of one item does on the site; by default it only reports success.
    destroy_one: Callable[[str, str, str], DestructionOutcome] | None = None
    stations_running: set[str] | None = None  # None: every station in the register is running

    def doors(self) -> list[DoorState]:
        return [
            DoorState("main-exit", True, False, False, True, True),
            DoorState("archive-door", False, True, True, True, False),
        ]

    def devices(self) -> list[DeviceState]:
        return [
            DeviceState("main-exit-panel", "osdp_panel", "online", ""),
            DeviceState("shredder-1", "modbus_shredder", "offline", "no reply"),
        ]

    def probe(self, device: str) -> DeviceProbe:
        return DeviceProbe(device, "osdp_panel", "online", "recorded stand-in", "")

    def acknowledge(self, alarm_id: int, username: str) -> None:
        if alarm_id not in self.open_alarms:
            raise KeyError(alarm_id)
        self.open_alarms.discard(alarm_id)
        self.acknowledged.append((alarm_id, username))

    def override(self, portal: str, username: str, reason: str) -> None:
        self.overrides.append((portal, username, reason))

    def forgive(self, person: str, username: str, reason: str) -> None:
        self.forgiven.append((person, username, reason))

    def run_destruction(
        self, station: str, item_keys: list[str], operator: str, witness: str
    ) -> list[DestructionOutcome]:
        self.destructions.append((station, item_keys, operator, witness))
        if self.stations_running is not None and station not in self.stations_running:
            raise KeyError(station)
        if self.destroy_one is not None:
            return [self.destroy_one(key, operator, witness) for key in item_keys]
        return [DestructionOutcome(key, True, "cycle complete", None, None) for key in item_keys]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (servers, portals, browsers must all be shut down)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while (extra := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not extra, f"threads left running: {sorted(t.name for t in extra)}"


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    hashed = hash_password(PASSWORD)
    with db.transaction(sessions) as session:
        load(session, "site-loader", EXAMPLE_SITE)
        for username in (*USER_FOR_ROLE.values(), "bob", "dave", "petra"):
            people.set_password_hash(session, "site-loader", lookup.person(session, username), hashed)
    yield sessions
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> ApiSettings:
    certificates = tmp_path / "certificates"
    certificates.mkdir()
    return ApiSettings(secret_key=SECRET, certificates_dir=certificates)


@pytest.fixture
def bus() -> LiveBus:
    return LiveBus(history_size=50)


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()


@pytest.fixture
def app(settings: ApiSettings, factory: sessionmaker[Session], bus: LiveBus, control: RecordingControl) -> FastAPI:
    return create_app(settings, session_factory=factory, bus=bus, control=control)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def token_for(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class Tokens(dict[str, dict[str, str]]):
    """Authorization headers by username, signing in on first use (each sign-in costs an argon2 check)."""

    def __init__(self, client: TestClient) -> None:
        super().__init__()
        self.client = client

    def __missing__(self, username: str) -> dict[str, str]:
        self[username] = token_for(self.client, username)
        return self[username]


@pytest.fixture
def tokens(client: TestClient) -> Tokens:
    return Tokens(client)


def browser_login(client: TestClient, username: str) -> str:
    """Sign in through the login page; returns the CSRF token the pages carry."""
    page = client.get("/login")
    login_csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": login_csrf}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/", response.text
    home = client.get("/", follow_redirects=True)
    return home.text.split('name="csrf-token" content="')[1].split('"')[0]


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def live_server(app: FastAPI, settings: ApiSettings) -> Iterator[LiveServer]:
    """The app served by uvicorn on 127.0.0.1, port chosen by the OS, in a thread."""
    server = uvicorn.Server(uvicorn_config(app, settings, port=0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield LiveServer(f"http://127.0.0.1:{port}", server, thread)
    server.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive(), "uvicorn did not stop"

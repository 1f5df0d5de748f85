"""The API under test: built by the app factory around a SQLite register loaded from examples/site.toml,
with a password for every demo person, a live bus and the real running site behind it: `control` is the
product's SiteRuntime (engine, portal controller, recorder, alarm book) without devices; `simulated` is the
whole site with every device simulated (OSDP panels, LLRP and Mercury readers, Modbus machines)."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from api.server import uvicorn_config
from controllers.bus import LiveBus
from controllers.site import SiteRuntime
from custodian.wiring import RunningSite, start_site
from registry import db
from registry.passwords import hash_password
from registry.services import lookup, people
from registry.sitefile import load
from tests.api import browsing
from tracking.model import EngineConfig

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
def browser() -> Iterator[browsing.Browser]:
    """Chromium for a browser test (tests/api/browsing.py); its pages' script errors fail the test."""
    with browsing.launched() as launched:
        yield launched


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    hashed = hash_password(PASSWORD)
    with db.transaction(sessions) as session:
        load(session, "site-loader", EXAMPLE_SITE)
        for username in (*USER_FOR_ROLE.values(), "bob", "dave", "petra", "gina"):
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
def control(factory: sessionmaker[Session], bus: LiveBus, tmp_path: Path) -> Iterator[SiteRuntime]:
    """The running site without devices: its doors are the register's, every device's health is unknown."""
    runtime = SiteRuntime(factory, bus, tmp_path / "state" / "spool", backend="reference").start()
    yield runtime
    runtime.stop()


@pytest.fixture
def site_config() -> EngineConfig:
    """The engine configuration of the simulated site (a test parametrizes it to change one setting)."""
    return EngineConfig()


@pytest.fixture
def site_zone() -> str:
    """The simulated site's time zone, its pages' too (a test parametrizes it to change it)."""
    return "UTC"


@pytest.fixture
def simulated(
    factory: sessionmaker[Session], bus: LiveBus, tmp_path: Path, site_config: EngineConfig, site_zone: str
) -> Iterator[RunningSite]:
    """The whole example site on simulated devices, every panel and portal reader online."""
    running = start_site(factory, bus, tmp_path / "site-state", simulate=True, config=site_config, time_zone=site_zone)
    try:
        assert running.wait_ready(), "panels (Secure Channel) and readers must come online"
        yield running
    finally:
        running.stop()


@pytest.fixture
def app(settings: ApiSettings, factory: sessionmaker[Session], bus: LiveBus, control: SiteRuntime) -> FastAPI:
    return create_app(settings, session_factory=factory, bus=bus, control=control)


@pytest.fixture
def site_app(settings: ApiSettings, factory: sessionmaker[Session], simulated: RunningSite, tmp_path: Path) -> FastAPI:
    """The API in front of the whole simulated site (serving the certificates its stations write)."""
    here = dataclasses.replace(
        settings, certificates_dir=tmp_path / "site-state" / "certificates", time_zone=simulated.runtime.time_zone
    )
    return create_app(here, session_factory=factory, bus=simulated.bus, control=simulated.runtime)


@pytest.fixture
def site_client(site_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(site_app) as test_client:
        yield test_client


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


@contextlib.contextmanager
def serve(app: FastAPI, settings: ApiSettings) -> Iterator[LiveServer]:
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


@pytest.fixture
def live_server(app: FastAPI, settings: ApiSettings) -> Iterator[LiveServer]:
    with serve(app, settings) as server:
        yield server


@pytest.fixture
def site_server(site_app: FastAPI, settings: ApiSettings) -> Iterator[LiveServer]:
    """The pages and API of the whole simulated site, served on a loopback port."""
    with serve(site_app, settings) as server:
        yield server

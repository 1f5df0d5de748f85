"""Serve the web pages and API of a running site from a background thread."""

from __future__ import annotations

import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from api.server import uvicorn_config
from custodian.wiring import RunningSite
from registry import db, passwords
from registry.models import Person
from registry.services import people

DEMO_PASSWORD = "custodian-demo"


@dataclass
class WebServer:
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1] if self.server.servers else 0

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def secret_key() -> str:
    """$CUSTODIAN_SECRET_KEY, or a fresh random key (sessions then end when the process does)."""
    return os.environ.get("CUSTODIAN_SECRET_KEY") or secrets.token_urlsafe(48)


def set_demo_passwords(factory: sessionmaker[Session]) -> None:
    """Demo only: every person of the example site signs in with the same published password."""
    hashed = passwords.hash_password(DEMO_PASSWORD)
    with db.transaction(factory) as session:
        for person in session.execute(select(Person).where(Person.password_hash.is_(None))).scalars():
            people.set_password_hash(session, "demo", person, hashed)


def serve_in_thread(site: RunningSite, factory: sessionmaker[Session], port: int, state: Path) -> WebServer:
    settings = ApiSettings(secret_key=secret_key(), certificates_dir=state / "certificates")
    app = create_app(settings, session_factory=factory, bus=site.bus, control=site.runtime)
    server = uvicorn.Server(uvicorn_config(app, settings, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return WebServer(server, thread)

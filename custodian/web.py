"""Serve the web pages and API of a running site from a background thread."""

from __future__ import annotations

import os
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from api.server import uvicorn_config
from controllers.bus import LiveBus
from controllers.control import CentreDesk, SiteControl
from custodian.wiring import RunningSite
from registry import db, passwords
from registry.models import Person
from registry.services import people
from registry.sitefile import site_time_zone

DEMO_PASSWORD = "custodian-demo"


@dataclass
class WebServer:
    server: uvicorn.Server
    thread: threading.Thread
    https: bool = False

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1] if self.server.servers else 0

    @property
    def url(self) -> str:
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"

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


def tls_files(certfile: Path | None, keyfile: Path | None) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with (None: plain HTTP). Raises ValueError naming the problem
    unless both are given, load, and belong together."""
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise ValueError("HTTPS needs both --tls-cert and --tls-key")
    for option, path in (("--tls-cert", certfile), ("--tls-key", keyfile)):
        if not path.is_file():
            raise ValueError(f"{option} {path}: no such file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"--tls-cert/--tls-key: cannot use {certfile} with {keyfile}: {exc}") from None
    return certfile, keyfile


def serve_in_thread(
    site: RunningSite,
    factory: sessionmaker[Session],
    port: int,
    state: Path,
    *,
    tls: tuple[Path, Path] | None = None,
    anchors_dir: Path | None = None,
    demo: bool = False,
) -> WebServer:
    """Serve the pages and API; HTTPS with Secure cookies when `tls` names a certificate and its key.
    `demo` opens the demo-only controls (placing an item on a simulated intake)."""
    return serve_register(factory, port, state, bus=site.bus, control=site.runtime, tls=tls,
                          anchors_dir=anchors_dir, demo=demo, time_zone=site.runtime.time_zone)


def serve_register(
    factory: sessionmaker[Session],
    port: int,
    state: Path,
    *,
    bus: LiveBus | None,
    control: SiteControl | None,
    desk: CentreDesk | None = None,
    tls: tuple[Path, Path] | None = None,
    anchors_dir: Path | None = None,
    demo: bool = False,
    time_zone: str | None = None,
) -> WebServer:
    """The pages and API over a register, with a site's live state and door control when given (the
    centre has the register, the live bus and the desk of every site's alarm book, no doors of its own).
    time_zone: the one guard consoles show times in (None: registry.sitefile.site_time_zone's fallback,
    $CUSTODIAN_TIME_ZONE or UTC)."""
    certfile, keyfile = tls or (None, None)
    settings = ApiSettings(
        secret_key=secret_key(),
        certificates_dir=state / "certificates",
        tls_certfile=certfile,
        tls_keyfile=keyfile,
        anchors_dir=anchors_dir,
        demo=demo,
        time_zone=time_zone or site_time_zone(),
    )
    app = create_app(settings, session_factory=factory, bus=bus, control=control, desk=desk)
    server = uvicorn.Server(uvicorn_config(app, settings, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return WebServer(server, thread, https=tls is not None)

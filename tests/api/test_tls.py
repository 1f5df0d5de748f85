"""Given a certificate and key, the server speaks HTTPS and the session cookie is marked Secure: through the
app's settings, and through `custodian run --tls-cert FILE --tls-key FILE`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from api import ApiSettings, create_app
from api.auth import SESSION_COOKIE
from api.server import uvicorn_config
from custodian.cli import app
from registry import db
from registry.passwords import hash_password
from registry.services import lookup, people
from tests.api.conftest import EXAMPLE_SITE, PASSWORD, SECRET

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_https_with_secure_session_cookie(tmp_path: Path, factory: sessionmaker[Session]) -> None:
    cert, key = self_signed(tmp_path)
    settings = ApiSettings(secret_key=SECRET, tls_certfile=cert, tls_keyfile=key)
    server = uvicorn.Server(uvicorn_config(create_app(settings, session_factory=factory), settings, port=0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust, timeout=10) as client:
            page = client.get("/login")
            assert page.status_code == 200
            token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            response = client.post("/login", data={"username": "gus", "password": PASSWORD, "csrf_token": token})
            cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
            assert "Secure" in cookie
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_custodian_run_serves_https_with_secure_cookies(tmp_path: Path) -> None:
    """The command as an operator types it: `custodian run SITE --tls-cert FILE --tls-key FILE`."""
    cert, key = self_signed(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"sqlite:///{tmp_path / 'register.db'}"
    command = [str(Path(sys.executable).with_name("custodian")), "run", str(EXAMPLE_SITE), "--simulate"]
    command += ["--db", url, "--state", str(tmp_path / "state"), "--port", str(port), "--backend", "reference"]
    command += ["--tls-cert", str(cert), "--tls-key", str(key)]
    process = subprocess.Popen(command, env={**os.environ, "CUSTODIAN_SECRET_KEY": SECRET}, cwd=tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust, timeout=10) as client:
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None, "custodian run exited"
                try:
                    page = client.get("/login")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "custodian run did not serve HTTPS"
                    time.sleep(0.2)
            engine = db.make_engine(url)
            with db.transaction(db.session_factory(engine)) as session:
                people.set_password_hash(session, "test", lookup.person(session, "gus"), hash_password(PASSWORD))
            engine.dispose()
            token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            response = client.post("/login", data={"username": "gus", "password": PASSWORD, "csrf_token": token})
            cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
            assert "Secure" in cookie and "HttpOnly" in cookie
            assert client.get("/api/guard/doors").status_code == 200  # the session works over HTTPS
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (("cert",), "needs both --tls-cert and --tls-key"),
        (("cert", "missing"), "no such file"),
        (("cert", "other-key"), "cannot use"),
    ],
)
def test_custodian_run_refuses_unusable_tls_files_before_starting(
    tmp_path: Path, files: tuple[str, ...], message: str
) -> None:
    cert, _key = self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _other_cert, other_key = self_signed(other)
    paths = {"cert": cert, "missing": tmp_path / "missing.pem", "other-key": other_key}
    options = ["--tls-cert", str(paths[files[0]])] + (["--tls-key", str(paths[files[1]])] if len(files) > 1 else [])
    result = CliRunner().invoke(app, ["run", str(EXAMPLE_SITE), "--db", f"sqlite:///{tmp_path / 'r.db'}", *options])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "r.db").exists()  # refused before the register was even opened

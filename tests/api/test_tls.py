"""Given a certificate and key, the server speaks HTTPS and the session cookie is marked Secure."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from api.auth import SESSION_COOKIE
from api.server import uvicorn_config
from tests.api.conftest import PASSWORD, SECRET

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

"""Sessions and the sign-in throttle live in the register: a sign-out and a throttle survive the API process
being killed; spraying one address across usernames and guessing one account from many addresses are both
throttled with 429 and Retry-After; expired rows are deleted."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings
from api.auth import LoginThrottle, Throttled, ThrottleLimits
from registry import db
from registry.models import AuthSession, LoginFailure
from tests.api.conftest import PASSWORD, LiveServer, Tokens, browser_login, token_for

ROOT = Path(__file__).resolve().parents[2]


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def from_address(server: LiveServer, address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127.x.y.z reaches a server on 127.0.0.1)."""
    return httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=address), timeout=10)


def sign_in(client: httpx.Client | TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/token", data={"username": username, "password": password})


@pytest.fixture
def settings(settings: ApiSettings) -> ApiSettings:
    """Smaller limits than the defaults (5 / 20 / 20), so that each refused password (an argon2 check) counts."""
    return dataclasses.replace(settings, login_failures_per_address=8, login_failures_per_username=8)


def test_spraying_one_address_across_usernames_is_throttled_there_only(live_server: LiveServer) -> None:
    with from_address(live_server, "127.0.0.2") as sprayer, from_address(live_server, "127.0.0.1") as colleague:
        # Refused passwords up to the per-address limit, never more than one per username.
        for n in range(8):
            assert sign_in(sprayer, f"guess-{n}", "Winter2026!").status_code == 401
        blocked = sign_in(sprayer, "gus")  # the right password, from the spraying address
        assert blocked.status_code == 429
        assert "from this address" in blocked.json()["detail"]
        assert 0 < int(blocked.headers["retry-after"]) <= 300
        assert sign_in(colleague, "gus").status_code == 200


def test_one_account_guessed_from_many_addresses_is_throttled(live_server: LiveServer) -> None:
    for n in range(2, 4):  # 2 addresses x 4 refused passwords = the per-username limit
        with from_address(live_server, f"127.0.1.{n}") as guesser:
            for _ in range(4):
                assert sign_in(guesser, "gus", "guess-guess").status_code == 401
    with from_address(live_server, "127.0.1.9") as fresh:
        blocked = sign_in(fresh, "gus")
        assert blocked.status_code == 429 and "for this account" in blocked.json()["detail"]
        assert sign_in(fresh, "audrey").status_code == 200


def test_the_login_page_shows_the_throttle(client: TestClient) -> None:
    for _ in range(5):
        assert sign_in(client, "gus", "wrong-wrong").status_code == 401
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post("/login", data={"username": "gus", "password": PASSWORD, "csrf_token": csrf})
    assert "too many failed sign-ins" in answer.text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def api_process(tmp_path: Path, factory: sessionmaker[Session]) -> Iterator[object]:
    """Starts `python -m tests.api.serve` on the test register; `start()` again after a kill."""
    url = f"sqlite:///{tmp_path / 'register.db'}"
    port = free_port()
    running: list[subprocess.Popen[bytes]] = []

    class Process:
        base = f"http://127.0.0.1:{port}"

        def start(self) -> None:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.api.serve", url, str(port)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            running.append(proc)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"{self.base}/login", timeout=1)
                    return
                except httpx.TransportError:
                    assert proc.poll() is None, "the API process died"
                    time.sleep(0.1)
            raise RuntimeError("the API process did not start")

        def kill(self) -> None:
            proc = running[-1]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    yield Process()
    for proc in running:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_sign_out_and_throttle_survive_a_killed_api_process(api_process) -> None:  # type: ignore[no-untyped-def]
    api_process.start()
    with httpx.Client(base_url=api_process.base, timeout=10) as client:
        kept = {"Authorization": f"Bearer {sign_in(client, 'audrey').json()['access_token']}"}
        ended = {"Authorization": f"Bearer {sign_in(client, 'audrey').json()['access_token']}"}
        assert client.post("/api/logout", headers=ended).status_code == 200
        for _ in range(5):
            assert sign_in(client, "gus", "wrong-wrong").status_code == 401
        assert sign_in(client, "gus").status_code == 429
    api_process.kill()
    api_process.start()
    with httpx.Client(base_url=api_process.base, timeout=10) as client:
        assert client.get("/api/me", headers=ended).status_code == 401
        assert client.get("/api/me", headers=kept).json()["username"] == "audrey"
        assert sign_in(client, "gus").status_code == 429


def test_a_page_sign_out_is_kept_in_the_register(client: TestClient, factory: sessionmaker[Session]) -> None:
    csrf = browser_login(client, "audrey")
    cookie = client.cookies.get("custodian_session")
    assert count(factory, AuthSession) == 1
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert count(factory, AuthSession) == 0
    client.cookies.set("custodian_session", cookie)  # a copy of the cookie kept from before
    assert client.get("/audit", follow_redirects=False).headers["location"] == "/login"


def test_a_new_password_ends_every_session_of_that_person(client: TestClient, tokens: Tokens) -> None:
    gus = token_for(client, "gus")
    assert client.get("/api/me", headers=gus).status_code == 200
    body = {"password": "a-brand-new-password"}
    assert client.put("/api/admin/people/gus/password", json=body, headers=tokens["admin"]).status_code == 204
    assert client.get("/api/me", headers=gus).status_code == 401
    assert client.get("/api/me", headers=tokens["admin"]).status_code == 200
    token_for(client, "gus", "a-brand-new-password")


def test_expired_sessions_and_failures_are_deleted(client: TestClient, factory: sessionmaker[Session]) -> None:
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with db.transaction(factory) as session:
        session.add(AuthSession(sid="old", username="gus", via="bearer", issued_at=long_ago, expires_at=long_ago))
        session.add(LoginFailure(at=long_ago, username="gus", address="testclient"))
    assert sign_in(client, "gus", "wrong-wrong").status_code == 401
    with factory() as session:
        assert session.execute(select(LoginFailure.at)).scalars().all() != [long_ago]
        assert count(factory, LoginFailure) == 1
    token_for(client, "gus")
    with factory() as session:
        assert session.get(AuthSession, "old") is None
        assert count(factory, AuthSession) == 1
    assert count(factory, LoginFailure) == 0  # a successful sign-in forgets its own failures


def test_the_throttle_counts_only_its_window(factory: sessionmaker[Session]) -> None:
    now = [dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)]
    throttle = LoginThrottle(ThrottleLimits(2, 3, 4, 300), clock=lambda: now[0])
    with db.transaction(factory) as session:
        throttle.failed(session, "gus", "10.0.0.1")
        now[0] += dt.timedelta(seconds=100)
        throttle.failed(session, "GUS", "10.0.0.1")
        with pytest.raises(Throttled) as caught:
            throttle.check(session, "gus", "10.0.0.1")
        assert caught.value.retry_after_s == 200  # the first failure leaves the window in 200 s
        throttle.check(session, "gus", "10.0.0.2")
        throttle.check(session, "gina", "10.0.0.1")
        throttle.failed(session, "gina", "10.0.0.1")
        with pytest.raises(Throttled, match="from this address"):
            throttle.check(session, "bob", "10.0.0.1")
        now[0] += dt.timedelta(seconds=200)
        throttle.check(session, "gus", "10.0.0.1")


def test_an_ipv6_host_is_throttled_by_its_64(factory: sessionmaker[Session]) -> None:
    throttle = LoginThrottle(ThrottleLimits(5, 2, 5, 300))
    with db.transaction(factory) as session:
        throttle.failed(session, "a", "2001:db8:1:2::1")
        throttle.failed(session, "b", "2001:db8:1:2::ffff")
        with pytest.raises(Throttled):
            throttle.check(session, "c", "2001:db8:1:2:abcd::9")
        throttle.check(session, "c", "2001:db8:1:3::1")

"""Settings, sessions and tokens, CSRF, throttling, sign-out, deny by default, journalled logins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings
from api.app import require_declared_access
from api.auth import SESSION_COOKIE
from controllers.site import SiteRuntime
from registry.models import JournalEntry
from tests.api.conftest import PASSWORD, Tokens, browser_login, token_for


def journal(factory: sessionmaker[Session], action: str) -> list[JournalEntry]:
    with factory() as session:
        return list(
            session.execute(select(JournalEntry).where(JournalEntry.action == action).order_by(JournalEntry.seq))
            .scalars()
            .all()
        )


@pytest.mark.parametrize("secret", ["", "changethis", "secret", "short-but-random-7f3a"])
def test_settings_refuse_a_missing_or_placeholder_secret(secret: str) -> None:
    with pytest.raises(ValueError, match="secret_key"):
        ApiSettings(secret_key=secret)


def test_settings_need_both_halves_of_tls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TLS"):
        ApiSettings(secret_key="k" * 40, tls_certfile=tmp_path / "cert.pem")


def test_a_route_without_declared_roles_stops_the_app_from_being_built() -> None:
    router = APIRouter()

    @router.get("/forgotten")
    def forgotten() -> str:
        return "anyone"

    with pytest.raises(RuntimeError, match="/forgotten"):
        require_declared_access((router,))


def test_wrong_password_is_refused_and_journalled_without_the_password(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    response = client.post("/api/token", data={"username": "gus", "password": "not-the-password"})
    assert response.status_code == 401
    refused = journal(factory, "auth.login_refused")
    assert [e.subject for e in refused] == ["person:gus"]
    assert "not-the-password" not in refused[0].payload
    token_for(client, "gus")
    logins = journal(factory, "auth.login")
    assert [(e.actor, json.loads(e.payload)["via"]) for e in logins] == [("gus", "bearer")]
    assert PASSWORD not in logins[0].payload


def test_five_failures_per_user_and_address_then_429_even_with_the_right_password(client: TestClient) -> None:
    for _ in range(5):
        assert client.post("/api/token", data={"username": "gus", "password": "wrong-wrong"}).status_code == 401
    blocked = client.post("/api/token", data={"username": "gus", "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    # Another username from the same address is not held back by gus's failures.
    assert client.post("/api/token", data={"username": "gina", "password": "wrong-wrong"}).status_code == 401
    token_for(client, "audrey")


def test_session_cookie_is_httponly_and_samesite_strict(client: TestClient) -> None:
    login = client.get("/login")
    token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": "gus", "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie


def test_login_form_without_its_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post(
        "/login", data={"username": "gus", "password": PASSWORD, "csrf_token": "forged"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "error=" in response.headers["location"]
    assert SESSION_COOKIE not in client.cookies


def test_form_post_with_a_session_needs_the_csrf_token(client: TestClient, factory: sessionmaker[Session]) -> None:
    csrf = browser_login(client, "admin")
    form = {"code": "csrf-room", "name": "CSRF room", "ceiling": "internal"}
    refused = client.post("/admin/venues", data=form, follow_redirects=False)
    assert refused.status_code == 403
    forged = client.post("/admin/venues", data={**form, "csrf_token": "0" * 64}, follow_redirects=False)
    assert forged.status_code == 403
    assert not [e for e in journal(factory, "venue.created") if e.subject == "venue:csrf-room"]
    accepted = client.post("/admin/venues", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert accepted.status_code == 303 and "ok=" in accepted.headers["location"]
    [created] = [e for e in journal(factory, "venue.created") if e.subject == "venue:csrf-room"]
    assert created.actor == "admin"


def test_json_call_with_a_session_cookie_needs_the_csrf_header(
    client: TestClient, control: SiteRuntime, factory: sessionmaker[Session]
) -> None:
    csrf = browser_login(client, "gus")
    body = {"reason": "courier verified by phone", "password": PASSWORD}
    assert client.post("/api/guard/portals/main-exit/override", json=body).status_code == 403
    control.recorder.flush(10)
    assert not journal(factory, "exit.override_refused")  # refused at the door of the API: the site never saw it
    reached = client.post("/api/guard/portals/main-exit/override", json=body, headers={"X-CSRF-Token": csrf})
    assert reached.status_code == 409  # the site decided it (no blocked exit there)
    control.recorder.flush(10)
    [refused] = journal(factory, "exit.override_refused")
    assert refused.actor == "gus"


def test_logout_revokes_the_token_and_is_journalled(client: TestClient, factory: sessionmaker[Session]) -> None:
    headers = token_for(client, "audrey")
    assert client.get("/api/me", headers=headers).json()["username"] == "audrey"
    assert client.post("/api/logout", headers=headers).status_code == 200
    assert client.get("/api/me", headers=headers).status_code == 401
    assert [e.actor for e in journal(factory, "auth.logout")] == ["audrey"]


def test_page_logout_ends_the_session(client: TestClient) -> None:
    csrf = browser_login(client, "audrey")
    assert client.get("/audit").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/audit", follow_redirects=False).headers["location"] == "/login"


def test_a_tampered_token_is_refused(client: TestClient) -> None:
    headers = token_for(client, "gus")
    forged = {"Authorization": headers["Authorization"][:-2] + "xx"}
    assert client.get("/api/me", headers=forged).status_code == 401


def test_a_token_signed_with_another_key_is_refused(client: TestClient, factory, bus) -> None:
    from api import create_app

    with TestClient(create_app(ApiSettings(secret_key="z" * 48), session_factory=factory, bus=bus)) as other:
        headers = token_for(other, "gus")
    assert client.get("/api/me", headers=headers).status_code == 401


def test_role_changes_apply_at_once_to_issued_tokens(client: TestClient, factory: sessionmaker[Session]) -> None:
    from registry.models import Person, PersonRole

    headers = token_for(client, "gus")
    assert client.get("/api/guard/doors", headers=headers).status_code == 200
    with factory() as session, session.begin():
        gus = session.execute(select(Person).where(Person.username == "gus")).scalar_one()
        gus.roles = [PersonRole(role="custodian")]
    assert client.get("/api/guard/doors", headers=headers).status_code == 403


def test_pages_carry_a_strict_content_policy_and_no_framing(client: TestClient) -> None:
    response = client.get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text  # nothing inline: the policy would block it


def test_the_api_description_is_for_administrators_and_auditors_only(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/openapi.json").status_code == 401
    for page in ("/docs", "/redoc"):
        assert client.get(page, follow_redirects=False).headers["location"] == "/login"
    assert client.get("/openapi.json", headers=tokens["gus"]).status_code == 403
    document = client.get("/openapi.json", headers=tokens["audrey"]).json()
    assert "/api/guard/portals/{portal}/override" in document["paths"]
    assert "/openapi.json" not in document["paths"]
    swagger = client.get("/docs", headers=tokens["admin"])
    assert swagger.status_code == 200 and "/openapi.json" in swagger.text
    assert client.get("/docs/oauth2-redirect", headers=tokens["admin"]).status_code == 404

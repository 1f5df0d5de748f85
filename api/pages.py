"""The web pages: Jinja2 templates, forms posted with a CSRF token, small vanilla JS for the live consoles.

Form posts go through the same register services as the JSON API; the administrator's and approver's pages
and their forms are in `api.admin_pages`.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from api.auth import LOGIN_CSRF_COOKIE, PUBLIC, SESSION_COOKIE, NotAuthenticated, Principal, Throttled, client_address
from api.deps import (
    AnySignedIn,
    ContextDep,
    DestructionReader,
    SiteWatcher,
)
from api.routers.auth import sign_in
from registry import journal
from registry.db import transaction
from registry.models import Portal

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
router = APIRouter(include_in_schema=False)

HOME_BY_ROLE = (
    ("guard", "/guard"),
    ("administrator", "/admin"),
    ("destruction_operator", "/destruction"),
    ("witness", "/destruction"),
    ("auditor", "/audit"),
    ("approver", "/approvals"),
    ("classifier", "/approvals"),
    ("custodian", "/approvals"),
)
NAV = (
    ("/guard", "Guard console", {"guard", "administrator", "auditor"}),
    ("/destruction", "Destruction", {"destruction_operator", "witness", "auditor"}),
    ("/admin", "Administration", {"administrator"}),
    (
        "/approvals",
        "Approvals",
        {"approver", "administrator", "auditor", "custodian", "classifier", "destruction_operator"},
    ),
    ("/audit", "Audit", {"auditor"}),
)


def render(request: Request, template: str, user: Principal | None, **values: object) -> HTMLResponse:
    nav = [(href, label) for href, label, roles in NAV if user and user.roles & roles]
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "nav": nav,
            "csrf": user.csrf if user else "",
            "ok": request.query_params.get("ok", ""),
            "error": request.query_params.get("error", ""),
            "site_name": request.app.state.context.settings.site_name,
            **values,
        },
    )


def back(path: str, *, ok: str = "", error: str = "") -> RedirectResponse:
    query = urlencode({k: v for k, v in (("ok", ok), ("error", error)) if v})
    return RedirectResponse(f"{path}?{query}" if query else path, status.HTTP_303_SEE_OTHER)


@router.get("/login", dependencies=[Depends(PUBLIC)])
def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, login_csrf=token)
    settings = request.app.state.context.settings
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies, max_age=1800
    )
    return response


@router.post("/login", dependencies=[Depends(PUBLIC)])
def login(
    request: Request,
    ctx: ContextDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=128)],
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return back("/login", error="the sign-in form expired; please try again")
    try:
        _person, credential = sign_in(ctx.factory, ctx.auth, username, password, client_address(request), "session")
    except NotAuthenticated:
        return back("/login", error="wrong username or password")
    except Throttled as exc:
        return back("/login", error=str(exc))
    response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        credential.value,
        max_age=credential.max_age_s,
        httponly=True,
        samesite="strict",
        secure=ctx.settings.secure_cookies,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, httponly=True, samesite="strict", secure=ctx.settings.secure_cookies)
    return response


@router.post("/logout")
def logout(ctx: ContextDep, user: AnySignedIn) -> Response:
    with transaction(ctx.factory) as session:
        ctx.auth.revoke(session, user)
        journal.append(session, user.username, "auth.logout", f"person:{user.username}", {"via": user.via})
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    # With the attributes it was set with, so the browser drops the same cookie (Secure ones included).
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=ctx.settings.secure_cookies)
    return response


@router.get("/")
def home(user: AnySignedIn) -> Response:
    target = next(path for role, path in HOME_BY_ROLE if role in user.roles)
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@router.get("/guard")
def guard_page(request: Request, ctx: ContextDep, user: SiteWatcher) -> Response:
    with ctx.factory() as session:
        portals = list(session.execute(select(Portal.code).order_by(Portal.code)).scalars())
    return render(
        request, "guard.html", user, portals=portals, can_act="guard" in user.roles, time_zone=ctx.settings.time_zone,
        centre=ctx.desk is not None,  # at the centre: every site's book, acting through the centre's routes
    )


@router.get("/destruction")
def destruction_page(request: Request, user: DestructionReader) -> Response:
    return render(request, "destruction.html", user, can_run="destruction_operator" in user.roles)



"""Register and infrastructure errors translated to HTTP answers, in exactly one place."""

from __future__ import annotations

import html
import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DBAPIError

from api.auth import NotAuthenticated, Throttled
from api.context import ControlUnavailable
from api.routers.docs import OPENAPI_URL
from controllers.control import (
    AlarmConflict,
    ControlError,
    OverrideRefused,
    PasswordRefused,
    RegisterUnavailable,
    SiteUnreachable,
    UnknownAlarm,
    UnknownPortal,
)
from registry.errors import InvalidInput, NotFound, RuleViolation

log = logging.getLogger(__name__)


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and request.url.path != OPENAPI_URL


async def _rule_violation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RuleViolation)
    return JSONResponse({"detail": exc.message, "rule": exc.rule, "details": exc.details}, status.HTTP_409_CONFLICT)


async def _invalid_input(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidInput)
    # The same shape FastAPI uses for its own validation errors, so clients parse one format.
    detail = [{"loc": ["body", *exc.field.split(".")], "msg": exc.message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    if _is_page(request):  # a page names what it did not find, in words, with a way back
        text = html.escape(str(exc))
        body = f'<!doctype html><title>Not found</title><p>Not found: {text}.</p><p><a href="/">Back</a></p>'
        return HTMLResponse(body, status.HTTP_404_NOT_FOUND)
    return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)


async def _database_down(request: Request, exc: Exception) -> Response:
    log.warning("register database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the register database is unavailable; the site keeps deciding from its snapshot"},
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def _control_unavailable(_request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE)


def _control_status(exc: ControlError) -> int:
    if isinstance(exc, UnknownAlarm | UnknownPortal):
        return status.HTTP_404_NOT_FOUND
    if isinstance(exc, PasswordRefused):
        return status.HTTP_403_FORBIDDEN
    if isinstance(exc, RegisterUnavailable | SiteUnreachable):
        return status.HTTP_503_SERVICE_UNAVAILABLE
    if isinstance(exc, AlarmConflict | OverrideRefused):
        return status.HTTP_409_CONFLICT
    return status.HTTP_409_CONFLICT


async def _control_refused(_request: Request, exc: Exception) -> Response:
    """A command the site refused, with the sentence it gave (and the engine's reason id for overrides)."""
    assert isinstance(exc, ControlError)
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, OverrideRefused) and exc.reason:
        body["reason"] = exc.reason
    return JSONResponse(body, _control_status(exc))


async def _not_authenticated(request: Request, exc: Exception) -> Response:
    if _is_page(request):
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    return JSONResponse({"detail": str(exc)}, status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


async def _throttled(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Throttled)
    return JSONResponse(
        {"detail": str(exc)},
        status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RuleViolation, _rule_violation)
    app.add_exception_handler(InvalidInput, _invalid_input)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(DBAPIError, _database_down)
    app.add_exception_handler(ControlUnavailable, _control_unavailable)
    app.add_exception_handler(ControlError, _control_refused)
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(Throttled, _throttled)

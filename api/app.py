"""The application factory. Nothing is global: each call builds an app around the register, bus and control
it is given. Every route must declare who may call it (`Allow(...)`) or that it is public (`PUBLIC`);
the factory refuses to build an app with a route that does neither."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from api import admin_pages, errors, headers, pages
from api.auth import Allow, Authenticator, Public
from api.context import AppContext
from api.limits import BodyLimit
from api.routers import admin, approvals, audit, centre, destruction, docs, guard, people, records
from api.routers import auth as auth_routes
from api.settings import ApiSettings
from controllers.bus import LiveBus
from controllers.control import CentreDesk, SiteControl

STATIC = Path(__file__).with_name("static")
ROUTERS: tuple[APIRouter, ...] = (
    auth_routes.router,
    admin.router,
    approvals.router,
    guard.router,
    centre.router,
    destruction.router,
    audit.router,
    audit.epcis_router,
    audit.pages_router,
    records.router,
    people.router,
    pages.router,
    admin_pages.router,
    docs.router,
)


def create_app(
    settings: ApiSettings,
    *,
    session_factory: sessionmaker[Session],
    bus: LiveBus | None = None,
    control: SiteControl | None = None,
    desk: CentreDesk | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Custodian",
        summary="Physical control of classified media: register, approvals, guard stations, destruction, audit",
        version="1",
        # Served by api.routers.docs behind a role instead of FastAPI's open defaults.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = AppContext(
        settings, session_factory, bus, control, Authenticator(settings, session_factory), desk
    )
    errors.install(app)
    # Added before the headers, so it sits inside them: a 413 carries the security headers too.
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes, max_image_bytes=settings.max_image_bytes)
    headers.install(app)
    require_declared_access(ROUTERS)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _guards(dependant: Dependant) -> set[type]:
    found = {type(dependant.call)} & {Allow, Public}
    for sub in dependant.dependencies:
        found |= _guards(sub)
    return found


def routes(routers: tuple[APIRouter, ...] = ROUTERS) -> list[APIRoute]:
    """Every route the app serves (besides the static files)."""
    return [route for router in routers for route in router.routes if isinstance(route, APIRoute)]


def require_declared_access(routers: tuple[APIRouter, ...]) -> None:
    """Deny by default, checked once at build time: a route without Allow or PUBLIC is a programming error."""
    undeclared = [f"{sorted(r.methods)} {r.path}" for r in routes(routers) if not _guards(r.dependant)]
    if undeclared:
        raise RuntimeError(f"routes without Allow(...) or PUBLIC: {', '.join(undeclared)}")

"""The API's own description (OpenAPI document, Swagger UI, ReDoc), for administrators and auditors only: it
lists every route and field, which is a map of the system an anonymous caller has no need for."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import AdminReader

OPENAPI_URL = "/openapi.json"
router = APIRouter(include_in_schema=False)


@router.get(OPENAPI_URL)
def openapi(request: Request, _user: AdminReader) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def swagger(request: Request, _user: AdminReader) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} API")


@router.get("/redoc")
def redoc(request: Request, _user: AdminReader) -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} API")

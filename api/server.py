"""Serving the app: a uvicorn configuration that speaks HTTPS when the settings name a certificate and key."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from api.settings import ApiSettings


def uvicorn_config(app: FastAPI, settings: ApiSettings, host: str = "127.0.0.1", port: int = 8000) -> uvicorn.Config:
    """Run with `uvicorn.Server(uvicorn_config(...)).run()` (port 0: the OS picks a free port)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_level="warning",
        # Open live feeds are closed after this many seconds when the server stops.
        timeout_graceful_shutdown=2,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )

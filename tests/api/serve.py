"""The API alone in its own process, for tests that kill it: `python -m tests.api.serve DB_URL PORT`.

It serves what `custodian run` serves (the app factory and `uvicorn_config`) around the register at DB_URL,
signed with the test suite's secret key."""

from __future__ import annotations

import sys

import uvicorn

from api import ApiSettings, create_app, uvicorn_config
from registry import db
from tests.api.conftest import SECRET

if __name__ == "__main__":
    settings = ApiSettings(secret_key=SECRET)
    app = create_app(settings, session_factory=db.session_factory(db.make_engine(sys.argv[1])))
    uvicorn.Server(uvicorn_config(app, settings, port=int(sys.argv[2]))).run()

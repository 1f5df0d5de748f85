"""Every registry test runs on SQLite and on the PostgreSQL server at 127.0.0.1:5432 (database `test`)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.sitefile import load

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "site.toml"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = db.make_engine(f"sqlite:///{tmp_path / 'register.db'}")
        db.upgrade(eng)
        yield eng
        eng.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    # The schema travels in the URL, so a command run with `--db` (see `url`) sees the same tables.
    eng = db.make_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        db.upgrade(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def url(engine: Engine) -> str:
    """The engine's database as a URL for the `custodian` command."""
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


@pytest.fixture
def site(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """The example site loaded into a fresh register."""
    with db.transaction(factory) as session:
        load(session, "site-loader", EXAMPLE_SITE)
    return factory


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)

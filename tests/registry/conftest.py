"""Every registry test runs on SQLite and on the PostgreSQL server at 127.0.0.1:5432 (database `test`)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.sitefile import load

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "site.toml"


BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def fresh_register(backend: str, folder: Path) -> Iterator[Engine]:
    """An empty, migrated register: a SQLite file in `folder`, or a throw-away PostgreSQL schema."""
    if backend == "sqlite":
        eng = db.make_engine(f"sqlite:///{folder / 'register.db'}")
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


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_register(request.param, tmp_path) as eng:
        yield eng


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

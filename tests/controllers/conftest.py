"""Controller tests run against the example site in a fresh SQLite register; the durability tests also get
a register they can take away for real (`outage_register`, on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.sitefile import load
from tests.leaks import no_leaks  # noqa: F401  (autouse: fail a test that leaks threads, fds or ports)

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "site.toml"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    db.upgrade(engine)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        load(session, "site-loader", EXAMPLE_SITE)
    yield factory
    engine.dispose()


class OutageRegister:
    """A fresh register that a test can make unavailable for real, and give back.

    PostgreSQL: a schema owned by a throw-away login role; the outage takes LOGIN away and terminates its
    backends. SQLite: another process's exclusive lock on the file (a backup, a stuck writer), so writes
    fail with "database is locked" after the busy timeout."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self._lock: sqlite3.Connection | None = None
        if backend == "sqlite":
            self.path = tmp_path / "register.db"
            self.url = f"sqlite:///{self.path}"
            self._admin: Engine | None = None
            self.role = ""
        else:
            self.role = f"outage_{uuid.uuid4().hex[:8]}"
            self._admin = db.make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.execute(text(f"CREATE ROLE {self.role} LOGIN"))
                conn.execute(text(f"CREATE SCHEMA {self.role} AUTHORIZATION {self.role}"))
            # The role's schema is first on its default search path ("$user").
            self.url = f"postgresql+psycopg://{self.role}@127.0.0.1:5432/test"
        self._terminate = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{self.role}'"
        self.engine = db.make_engine(self.url, pool_pre_ping=True)
        if backend == "sqlite":  # notice the lock in 0.5 s rather than the site's 5 s: a shorter test, same path
            event.listen(self.engine, "connect", lambda conn, _record: conn.execute("PRAGMA busy_timeout=500"))
        db.upgrade(self.engine)
        self.factory = db.session_factory(self.engine)

    def take_away(self) -> None:
        if self._admin is None:
            self._lock = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._lock.execute("BEGIN EXCLUSIVE")
            return
        with self._admin.connect() as conn:
            conn.execute(text(f"ALTER ROLE {self.role} NOLOGIN"))
            conn.execute(text(self._terminate))

    def give_back(self) -> None:
        if self._admin is None:
            if self._lock is not None:
                self._lock.execute("ROLLBACK")
                self._lock.close()
                self._lock = None
            return
        with self._admin.connect() as conn:
            conn.execute(text(f"ALTER ROLE {self.role} LOGIN"))

    def close(self) -> None:
        self.give_back()
        self.engine.dispose()
        if self._admin is not None:
            with self._admin.connect() as conn:
                conn.execute(text(self._terminate))
                conn.execute(text(f"DROP SCHEMA {self.role} CASCADE"))
                conn.execute(text(f"DROP ROLE {self.role}"))
            self._admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def outage_register(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OutageRegister]:
    register = OutageRegister(request.param, tmp_path)
    try:
        yield register
    finally:
        register.close()

"""The recorder keeps every accepted record through a real database outage and replays a crash spool."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from controllers.recorder import Record, Recorder
from registry import db, journal
from registry.models import JournalEntry

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def outage_db() -> Iterator[tuple[Engine, sessionmaker[Session], str]]:
    """A schema owned by a throw-away login role, so the test can take the database away from it."""
    role = f"outage_{uuid.uuid4().hex[:8]}"
    admin = db.make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"CREATE SCHEMA {role} AUTHORIZATION {role}"))
    url = f"postgresql+psycopg://{role}@127.0.0.1:5432/test"
    eng = db.make_engine(url, connect_args={"options": f"-csearch_path={role}"}, pool_pre_ping=True)
    db.upgrade(eng)
    try:
        yield admin, db.session_factory(eng), role
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"ALTER ROLE {role} LOGIN"))
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"))
            conn.execute(text(f"DROP SCHEMA {role} CASCADE"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def _count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(JournalEntry)).scalar_one()


def test_nothing_is_lost_while_the_database_is_away(
    outage_db: tuple[Engine, sessionmaker[Session], str], tmp_path: Path
) -> None:
    admin, factory, role = outage_db
    health: list[bool] = []
    recorder = Recorder(factory, tmp_path / "spool.jsonl", on_db_health=lambda ok, _why: health.append(ok)).start()
    try:
        for n in range(50):
            recorder.submit(Record("system", "test.before", f"n:{n}", {"n": n}))
        assert recorder.flush(10)
        with admin.connect() as conn:
            conn.execute(text(f"ALTER ROLE {role} NOLOGIN"))
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"))
        for n in range(50, 300):
            recorder.submit(Record("system", "test.during", f"n:{n}", {"n": n}))
        deadline = time.monotonic() + 10
        while recorder.retries == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recorder.retries > 0 and health == [False]
        assert (tmp_path / "spool.jsonl").read_text().count("\n") > 0  # the waiting batch is on disk
        with admin.connect() as conn:
            conn.execute(text(f"ALTER ROLE {role} LOGIN"))
        assert recorder.flush(20)
    finally:
        recorder.stop()
    assert health == [False, True]
    with factory() as session:
        entries = list(session.execute(select(JournalEntry).order_by(JournalEntry.seq)).scalars())
        assert journal.verify(session).ok
    assert sorted(int(e.subject.split(":")[1]) for e in entries) == list(range(300))


def test_a_spool_left_by_a_crash_is_replayed(tmp_path: Path) -> None:
    eng = db.make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    db.upgrade(eng)
    factory = db.session_factory(eng)
    spool = tmp_path / "spool.jsonl"
    spool.write_text('["system", "test.spooled", "a", {"n": 1}, ""]\n')
    recorder = Recorder(factory, spool).start()
    assert recorder.flush(10)
    recorder.stop()
    with factory() as session:
        assert [e.action for e in session.execute(select(JournalEntry)).scalars()] == ["test.spooled"]
    assert spool.read_text() == ""
    eng.dispose()

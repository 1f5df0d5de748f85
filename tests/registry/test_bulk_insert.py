"""`db.bulk_insert` (the recorder's driver-level path: COPY on PostgreSQL) reports errors as every other
statement does, so the recorder tells an outage (OperationalError) from a refused record (IntegrityError)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from registry import db

COLUMNS = ("site", "node", "seq", "kind", "journal_seq", "dead_letter")
ROW = ("site", "node", 1, "alarm", 1, False)


def test_a_duplicate_key_is_an_integrity_error(factory: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), factory() as session, session.begin():
        db.bulk_insert(session, "accepted_records", COLUMNS, [ROW, ROW])


def test_a_connection_lost_mid_batch_is_an_operational_error(engine: Engine, factory: sessionmaker[Session]) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file has no connection to lose")
    with pytest.raises(OperationalError), factory() as session, session.begin():
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        db.bulk_insert(session, "accepted_records", COLUMNS, [ROW])

"""Controller tests run against the example site in a fresh SQLite register."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from registry import db
from registry.sitefile import load
from tests.leaks import no_leaks  # noqa: F401  (autouse: fail a test that leaks threads, fds or ports)

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "site.toml"


@pytest.fixture
def site(tmp_path: Path) -> sessionmaker[Session]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'register.db'}")
    db.upgrade(engine)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        load(session, "site-loader", EXAMPLE_SITE)
    yield factory
    engine.dispose()

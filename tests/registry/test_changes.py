"""The register's typed change signal (`registry.changes`), on SQLite and PostgreSQL: every committed write
of what the engine compiles leaves one signal naming its topics, whoever wrote it (a service in this
process, the site loader, the CLI in another process); reads and rolled-back writes leave none."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from registry import changes, db
from registry.changes import RegisterChanged, Topic
from registry.models import Base, Item, Person
from registry.services import approvals, items, lookup, people

CLI = [sys.executable, "-c", "from custodian.cli import app; app()"]


def _since(factory: sessionmaker[Session], position: int) -> list[RegisterChanged]:
    with factory() as session:
        return changes.since(session, position)


def test_each_write_signals_its_topics_once_and_reads_signal_nothing(site: sessionmaker[Session]) -> None:
    with site() as session:
        start = changes.latest(session)
        session.execute(select(Item)).scalars().all()  # a read
    heard: list[RegisterChanged] = []
    unsubscribe = changes.subscribe(heard.append)
    try:
        with db.transaction(site) as session:
            items.place(session, "admin", lookup.item(session, "S-2026-001"), "corridor")
        with db.transaction(site) as session:
            people.create(session, "admin", people.PersonData("zoe", "Zoe", "secret"))
        now = dt.datetime.now(dt.UTC)
        with db.transaction(site) as session:
            request = approvals.ApprovalRequest(
                "A-NEW", "carry_out", ("U-2026-001",), now, now + dt.timedelta(hours=1), people=("carol",)
            )
            approvals.approve(session, "paul", approvals.request(session, "carol", request))
        try:
            with db.transaction(site) as session:
                items.place(session, "admin", lookup.item(session, "U-2026-001"), "archive")
                raise RuntimeError("changed my mind")
        except RuntimeError:
            pass
    finally:
        unsubscribe()
    found = _since(site, start)
    assert [c.topics for c in found] == [{Topic.ITEMS}, {Topic.PEOPLE}, {Topic.APPROVALS}]
    assert heard == found, "in-process subscribers hear the same signals, after each commit"
    assert all(c.origin == "" for c in found)
    assert [c.position for c in found] == sorted(c.position for c in found)


def test_a_writer_that_names_itself_is_told_apart(site: sessionmaker[Session]) -> None:
    with site() as session:
        start = changes.latest(session)
    with site() as session, session.begin():
        session.info["origin"] = "recorder:site/node-1"
        session.execute(select(Person).where(Person.username == "bob")).scalar_one().title = "Dr"
    [signal] = _since(site, start)
    assert signal.origin == "recorder:site/node-1" and signal.topics == {Topic.PEOPLE}


def test_another_process_writing_the_register_is_seen(engine: Engine, site: sessionmaker[Session]) -> None:
    with site() as session:
        start = changes.latest(session)
    url = engine.url.render_as_string(hide_password=False)
    env = dict(os.environ)
    if engine.dialect.name == "postgresql":  # the test's schema, as libpq takes it from the environment
        env["PGOPTIONS"] = f"-csearch_path={_search_path(site)}"
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    for args in (
        ["approvals", "request", "A-CLI", "--as", "carol", "--kind", "carry_out", "--item", "U-2026-001",
         "--until", until],
        ["approvals", "approve", "A-CLI", "--as", "paul"],
    ):
        done = subprocess.run([*CLI, *args, "--db", url], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    found = _since(site, start)
    assert [c.topics for c in found] == [{Topic.APPROVALS}, {Topic.APPROVALS}]


def _search_path(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        return str(session.connection().exec_driver_sql("SHOW search_path").scalar())


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []

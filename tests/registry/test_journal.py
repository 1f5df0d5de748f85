"""The journal chain catches edits, deletions and reordering made directly in the database."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from custodian.cli import app
from registry import db, journal
from registry.models import JournalEntry
from tests.registry.conftest import fresh_register


def _verify(factory: sessionmaker[Session]) -> journal.VerifyResult:
    with factory() as session:
        return journal.verify(session)


def test_every_state_change_is_journaled_and_the_chain_verifies(site: sessionmaker[Session]) -> None:
    result = _verify(site)
    assert result.ok and result.entries > 40
    with site() as session:
        actions = set(session.execute(select(JournalEntry.action)).scalars())
    assert {"item.registered", "person.created", "approval.requested", "approval.approved"} <= actions


def test_an_edited_entry_is_named(site: sessionmaker[Session], engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE journal SET payload = payload || ' ' WHERE seq = 20"))
    result = _verify(site)
    assert not result.ok and result.first_bad_seq == 20 and "hash" in result.problem


def test_an_edited_actor_is_named(site: sessionmaker[Session], engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE journal SET actor = 'someone-else' WHERE seq = 7"))
    assert _verify(site).first_bad_seq == 7


def test_a_deleted_entry_is_named(site: sessionmaker[Session], engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM journal WHERE seq = 11"))
    result = _verify(site)
    assert not result.ok and result.first_bad_seq == 11


def test_reordered_entries_are_named(site: sessionmaker[Session], engine: Engine) -> None:
    # Swap the sequence numbers of entries 5 and 6, as someone rewriting history would.
    with engine.begin() as conn:
        conn.execute(text("UPDATE journal SET seq = -1 WHERE seq = 5"))
        conn.execute(text("UPDATE journal SET seq = 5 WHERE seq = 6"))
        conn.execute(text("UPDATE journal SET seq = 6 WHERE seq = -1"))
    result = _verify(site)
    assert not result.ok and result.first_bad_seq == 5


def test_a_rewritten_and_rehashed_entry_breaks_the_next_link(site: sessionmaker[Session], engine: Engine) -> None:
    with site() as session:
        e = session.get(JournalEntry, 9)
        assert e is not None
        forged = journal.entry_hash(e.prev_hash, e.seq, e.at, "forger", e.action, e.subject, e.payload)
    with engine.begin() as conn:
        conn.execute(text("UPDATE journal SET actor = 'forger', hash = :h WHERE seq = 9"), {"h": forged})
    assert _verify(site).first_bad_seq == 10


def test_cli_verify_exits_0_then_1_naming_the_sequence(site: sessionmaker[Session], engine: Engine, url: str) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["journal", "verify", "--db", url])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE journal SET subject = 'item:forged' WHERE seq = 13"))
    broken = runner.invoke(app, ["journal", "verify", "--db", url])
    assert broken.exit_code == 1
    assert "sequence 13" in broken.output


def test_appends_continue_the_chain(factory: sessionmaker[Session]) -> None:
    with db.transaction(factory) as session:
        first = journal.append(session, "a", "x.one", "s", {"n": 1})
        second = journal.append(session, "a", "x.two", "s", {"n": 2, "text": "秘密"})
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash and first.prev_hash == journal.GENESIS
    with factory() as session:
        assert session.execute(select(func.count()).select_from(JournalEntry)).scalar_one() == 2
    assert _verify(factory).ok


def test_verify_from_an_offline_export(site: sessionmaker[Session], tmp_path: Path) -> None:
    """Anyone can verify the chain from the rows alone (no database needed)."""
    with site() as session:
        rows = list(session.execute(select(JournalEntry).order_by(JournalEntry.seq)).scalars())
    assert journal.verify_entries(rows).ok
    assert not journal.verify_entries(rows[:3] + rows[4:]).ok


def test_concurrent_writers_each_get_the_next_sequence(factory: sessionmaker[Session]) -> None:
    """Writers in several threads (the recorder, the API) append at once: none is refused, the chain holds.
    On SQLite the head used to be read before the driver opened the write transaction (UNIQUE journal.seq)."""
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        for n in range(60):
            try:
                with db.transaction(factory) as session:
                    journal.append(session, f"writer-{writer}", "test.concurrent", f"n:{n}")
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    with factory() as session:
        assert journal.verify(session).ok
        assert session.scalar(select(func.count()).select_from(JournalEntry)) == 4 * 60


def test_registers_in_two_schemas_of_one_database_append_independently(tmp_path: Path) -> None:
    """PostgreSQL's append lock is per register (schema): a writer holding it in one register does not hold up
    appends to another register in the same database (a centre and its edges, tests side by side)."""
    with fresh_register("postgresql", tmp_path) as one, fresh_register("postgresql", tmp_path) as other:
        first, second = db.session_factory(one), db.session_factory(other)
        with db.transaction(first) as holding:
            journal.append(holding, "a", "test.hold", "n:1")  # holds one's append lock until this block ends
            with db.transaction(second) as session:
                session.execute(text("SET LOCAL lock_timeout = '2s'"))  # a shared lock would fail here, not hang
                journal.append(session, "b", "test.other", "n:1")
        with first() as session:
            assert journal.verify(session).ok

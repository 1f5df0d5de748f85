"""Journal anchors catch what the chain alone cannot: a deleted tail, every row deleted, and a chain
rewritten from some entry on with freshly computed hashes. The tampering is done as an intruder would,
with raw SQL on the database, on SQLite and PostgreSQL; the checks are made through the library and
through the `custodian journal` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from custodian.cli import app
from registry import anchors, db, journal
from registry.models import JournalEntry
from registry.services import items, lookup


def move_items(factory: sessionmaker[Session], moves: int) -> None:
    """Movements only: entries that create no row, so deleting them leaves the register looking whole."""
    with db.transaction(factory) as session:
        item = lookup.item(session, "U-2026-001")
        for n in range(moves):
            items.place(session, "gus", item, "reading-room" if n % 2 == 0 else "corridor")


def head(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return journal.head(session).seq


def delete_tail(engine: Engine, after: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM journal WHERE seq > :n"), {"n": after})


def rewrite_from(engine: Engine, seq: int) -> None:
    """Forge entry `seq` and re-chain every entry after it, hashes recomputed: the chain verifies again."""
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT * FROM journal WHERE seq >= :n ORDER BY seq"), {"n": seq}).mappings().all()
        prev = rows[0]["prev_hash"]
        for row in rows:
            actor = "forger" if row["seq"] == seq else row["actor"]
            digest = journal.entry_hash(
                prev, row["seq"], row["at"], actor, row["action"], row["subject"], row["payload"]
            )
            conn.execute(
                text("UPDATE journal SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"a": actor, "p": prev, "h": digest, "s": row["seq"]},
            )
            prev = digest


def verified(factory: sessionmaker[Session], given: list[anchors.Anchor]) -> journal.VerifyResult:
    with factory() as session:
        return anchors.verify(session, given)


def anchor_now(factory: sessionmaker[Session]) -> anchors.Anchor:
    with factory() as session:
        return anchors.take(session)


def test_a_deleted_tail_passes_the_chain_but_not_the_anchor(site: sessionmaker[Session], engine: Engine) -> None:
    move_items(site, 6)
    anchor = anchor_now(site)
    delete_tail(engine, anchor.seq - 6)
    with site() as session:
        assert journal.verify(session).ok  # the links alone cannot see it
    result = verified(site, [anchor])
    assert not result.ok and result.first_bad_seq == anchor.seq
    assert f"ends at {anchor.seq - 6}" in result.problem and "were deleted" in result.problem


def test_every_row_deleted_is_not_intact(site: sessionmaker[Session], engine: Engine) -> None:
    anchor = anchor_now(site)
    delete_tail(engine, 0)
    with site() as session:
        plain = journal.verify(session)
    assert not plain.ok and plain.entries == 0 and plain.first_bad_seq == 1
    assert "journal is empty" in plain.problem and "venue:" in plain.problem
    result = verified(site, [anchor])
    assert not result.ok and "journal is empty" in result.problem


def test_an_anchor_catches_an_empty_journal_even_with_an_empty_register(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    with db.transaction(factory) as session:
        journal.append(session, "system", "site.started", "site:example", {})
    anchor = anchor_now(factory)
    delete_tail(engine, 0)
    assert verified(factory, []).ok  # nothing registered, nothing to miss
    result = verified(factory, [anchor])
    assert not result.ok and "every entry was deleted" in result.problem


def test_a_chain_rewritten_with_fresh_hashes_fails_against_its_anchor(
    site: sessionmaker[Session], engine: Engine
) -> None:
    older = anchor_now(site)
    move_items(site, 4)
    newer = anchor_now(site)
    rewrite_from(engine, older.seq + 2)
    with site() as session:
        assert journal.verify(session).ok  # a consistent forgery
    assert verified(site, [older]).ok  # the rewrite began after the older anchor ...
    result = verified(site, [older, newer])  # ... and at or before the newer one
    assert not result.ok and result.first_bad_seq == newer.seq
    assert f"rewritten at or before entry {newer.seq}" in result.problem


def test_the_periodic_writer_keeps_a_rolling_set_and_refuses_a_tampered_journal(
    site: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "anchors"
    with site() as session:
        first = anchors.write_anchor(session, folder, keep=3)
        assert anchors.write_anchor(session, folder, keep=3) == first  # the head did not move: no new file
    assert len(list(folder.iterdir())) == 1
    for _ in range(4):
        move_items(site, 1)
        with site() as session:
            anchors.write_anchor(session, folder, keep=3)
    kept = anchors.read(folder)
    assert len(kept) == 3 and kept[-1].seq == head(site)
    with site() as session:
        assert anchors.status(session, folder).state == "anchored"
    delete_tail(engine, kept[-1].seq - 2)
    names = sorted(p.name for p in folder.iterdir())
    with site() as session, pytest.raises(anchors.JournalTampered) as refused:
        anchors.write_anchor(session, folder, keep=3)
    assert "were deleted" in refused.value.problem
    assert sorted(p.name for p in folder.iterdir()) == names  # nothing written, nothing rolled away


def test_the_periodic_writer_checks_the_entries_since_the_last_anchor(
    site: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "anchors"
    with site() as session:
        anchors.write_anchor(session, folder)
    move_items(site, 3)
    edited = head(site) - 1
    with engine.begin() as conn:
        conn.execute(text("UPDATE journal SET actor = 'forger' WHERE seq = :n"), {"n": edited})
    with site() as session, pytest.raises(anchors.JournalTampered) as refused:
        anchors.write_anchor(session, folder)
    assert f"entry {edited}" in refused.value.problem


def test_the_first_anchor_is_written_only_for_an_intact_journal(
    site: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    delete_tail(engine, 10)
    with site() as session, pytest.raises(anchors.JournalTampered):
        anchors.write_anchor(session, tmp_path / "anchors")
    assert not list((tmp_path / "anchors").iterdir())


def test_status_for_the_auditor_page(site: sessionmaker[Session], engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "anchors"
    with site() as session:
        before = anchors.status(session, folder)
        assert before.state == "not_anchored" and before.ok and before.head.seq == head(site)
        anchors.write_anchor(session, folder)
        now = anchors.status(session, folder)
    assert now.state == "anchored" and now.newest is not None and now.newest.seq == now.head.seq
    rewrite_from(engine, 3)
    with site() as session:
        broken = anchors.status(session, folder)
    assert broken.state == "broken" and not broken.ok and "rewritten" in broken.problem
    (folder / "journal-anchor-000000000001-20260101T000000Z.json").write_text("{not json")
    with site() as session:
        unreadable = anchors.status(session, folder)
    assert unreadable.state == "broken" and "not a journal anchor" in unreadable.problem


def test_an_anchor_file_is_plain_json_and_malformed_ones_are_refused(
    site: sessionmaker[Session], tmp_path: Path
) -> None:
    anchor = anchor_now(site)
    data = json.loads(anchor.to_json())
    assert data["seq"] == anchor.seq and data["hash"] == anchor.hash and data["taken_at"]
    assert anchors.Anchor.from_json(anchor.to_json()) == anchor
    for broken in (
        "",
        "[]",
        '{"format": "other"}',
        anchor.to_json().replace(anchor.hash, "zz"),
        anchor.to_json().replace(f'"seq": {anchor.seq}', '"seq": -1'),
    ):
        with pytest.raises(anchors.AnchorError):
            anchors.Anchor.from_json(broken)


# The command line, against the same databases.


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_cli_anchor_then_verify_catches_each_tampering(
    site: sessionmaker[Session], engine: Engine, url: str, tmp_path: Path
) -> None:
    move_items(site, 4)
    anchor_file = tmp_path / "head.json"
    made = invoke("journal", "anchor", "--db", url, "--out", str(anchor_file))
    assert made.exit_code == 0, made.output  # type: ignore[attr-defined]
    printed = invoke("journal", "anchor", "--db", url)
    assert anchors.Anchor.from_json(printed.output).seq == head(site)  # type: ignore[attr-defined]
    ok = invoke("journal", "verify", "--db", url, "--anchor", str(anchor_file))
    assert ok.exit_code == 0 and "holds 1 anchor(s)" in ok.output  # type: ignore[attr-defined]

    with site() as session:
        saved = [dict(r._mapping) for r in session.execute(select(JournalEntry.__table__))]

    def restore() -> None:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM journal"))
            conn.execute(JournalEntry.__table__.insert(), saved)

    anchored = anchors.read(anchor_file)[0].seq
    for tamper, words in (
        (lambda: delete_tail(engine, anchored - 3), "were deleted"),
        (lambda: delete_tail(engine, 0), "journal is empty"),
        (lambda: rewrite_from(engine, anchored - 5), "rewritten"),
    ):
        tamper()
        caught = invoke("journal", "verify", "--db", url, "--anchor", str(anchor_file))
        assert caught.exit_code == 1, caught.output  # type: ignore[attr-defined]
        assert "journal BROKEN" in caught.output and words in caught.output  # type: ignore[attr-defined]
        restore()
        assert invoke("journal", "verify", "--db", url, "--anchor", str(anchor_file)).exit_code == 0  # type: ignore[attr-defined]


def test_cli_refuses_to_anchor_a_broken_journal_and_names_a_bad_anchor_file(
    site: sessionmaker[Session], engine: Engine, url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not an anchor")
    unreadable = invoke("journal", "verify", "--db", url, "--anchor", str(bad))
    assert unreadable.exit_code == 2 and "not a journal anchor" in unreadable.output  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(text("UPDATE journal SET payload = payload || ' ' WHERE seq = 4"))
    refused = invoke("journal", "anchor", "--db", url, "--out", str(tmp_path / "head.json"))
    assert refused.exit_code == 1 and "not anchored" in refused.output  # type: ignore[attr-defined]
    assert not (tmp_path / "head.json").exists()

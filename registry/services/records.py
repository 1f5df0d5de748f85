"""The register's side of exactly-once delivery: which of a node's records are already in, the ledger row
written with each record, and the dead letter for a record the register refuses for good.

A record id is (site, node, seq), assigned once by the node that accepted it. The ledger's primary key is
that id, and its row is written in the same transaction as the record's journal entry and effects: a
record replayed after a crash or an unacknowledged commit is found here and skipped whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import db, journal
from registry.models import AcceptedRecord, DeadLetter

# (seq, kind, journal seq of the record's own entry). A plain tuple, not a NamedTuple: the recorder makes one
# per record, and the collector stops tracking a plain tuple of strings and ints but walks a NamedTuple at
# every full collection for as long as it lives (a fifth of the delivery's cost, measured).
LedgerRow = tuple[int, str, int]


def present(session: Session, site: str, node: str, first: int, last: int) -> set[int]:
    """Sequence numbers in [first, last] of this node already in the register (a primary-key range scan)."""
    rows = session.execute(
        select(AcceptedRecord.seq).where(
            AcceptedRecord.site == site, AcceptedRecord.node == node, AcceptedRecord.seq.between(first, last)
        )
    ).scalars()
    return set(rows)


def last_seq(session: Session, site: str, node: str) -> int:
    found = session.execute(
        select(func.max(AcceptedRecord.seq)).where(AcceptedRecord.site == site, AcceptedRecord.node == node)
    ).scalar_one()
    return found or 0


def enter(session: Session, site: str, node: str, rows: Sequence[LedgerRow]) -> None:
    """Ledger rows for records just journaled in this transaction (a duplicate id violates the key)."""
    db.bulk_insert(
        session,
        AcceptedRecord.__tablename__,
        ("site", "node", "seq", "kind", "journal_seq", "dead_letter"),
        [(site, node, seq, kind, journal_seq, False) for seq, kind, journal_seq in rows],
    )


def dead_letter(session: Session, site: str, node: str, seq: int, kind: str, body: str, error: str) -> int:
    """Keep a refused record whole, with the error, and journal it; returns the journal sequence number.

    `body` is JSON (control characters escaped), so it fits a text column on every backend."""
    error = error.replace("\x00", "\\x00")[:2000]
    record = f"{site}/{node}/{seq}"
    entry = journal.append(
        session, "recorder", "record.dead_letter", f"record:{record}", {"record": record, "kind": kind, "error": error}
    )
    session.add(DeadLetter(site=site, node=node, seq=seq, kind=kind, body=body, error=error, at=journal.now_utc()))
    session.add(AcceptedRecord(site=site, node=node, seq=seq, kind=kind, journal_seq=entry.seq, dead_letter=True))
    session.flush()
    return entry.seq

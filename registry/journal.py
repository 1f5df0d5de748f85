"""The tamper-evident journal: an append-only, SHA-256 hash chain anyone can verify offline.

Entry n stores hash_n = SHA-256(hash_{n-1} || canonical JSON of (seq, at, actor, action, subject, payload)).
Editing, deleting or reordering any row breaks the chain at that row's sequence number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from registry import db
from registry.models import Approval, Device, Item, JournalEntry, Person, Portal, Venue

_string = json.encoder.encode_basestring  # json.dumps' escaping of a str with ensure_ascii=False
_COLUMNS = ("seq", "at", "actor", "action", "subject", "payload", "prev_hash", "hash")

GENESIS = "0" * 64
# Serialises appends across processes on PostgreSQL, per schema (advisory locks are database-wide, and a
# database can hold several registers, one per schema); SQLite serialises writers by itself.
_PG_LOCK_KEY = 0x0C057D1A


# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str). The recorder
# encodes every record it accepts, so the C encoder is made once and called directly (JSONEncoder.encode
# makes one per call: a third of the cost); where there is no C encoder, the encoder itself.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_C_CANONICAL = (
    None if json.encoder.c_make_encoder is None
    else json.encoder.c_make_encoder(None, str, _string, None, ":", ",", True, False, True)
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the same bytes on every machine."""
    if _C_CANONICAL is None:
        return _CANONICAL.encode(value)
    return "".join(_C_CANONICAL(value, 0))


def entry_hash(prev_hash: str, seq: int, at: str, actor: str, action: str, subject: str, payload: str) -> str:
    """SHA-256 of the previous hash and the canonical JSON of the entry. The JSON is spelled out in sorted
    key order with the encoder's own string escaping, the exact bytes `canonical_json` gives (tested), at
    a third of the cost: this is the recorder's hot path."""
    return _digest(prev_hash, _around(at, actor, action, subject), seq, payload)


def _around(at: str, actor: str, action: str, subject: str) -> tuple[str, str]:
    """An entry's canonical JSON before its payload's value and after its seq: the same for a batch's
    entries of one (actor, action, subject), so `append_many` spells it once."""
    return (
        f'{{"action":{_string(action)},"actor":{_string(actor)},"at":{_string(at)},"payload":',
        f',"subject":{_string(subject)}}}',
    )


def _digest(prev_hash: str, around: tuple[str, str], seq: int, payload: str) -> str:
    return hashlib.sha256(f'{prev_hash}{around[0]}{_string(payload)},"seq":{int(seq)}{around[1]}'.encode()).hexdigest()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def lock(session: Session) -> None:
    """Take the append lock, held until the transaction ends: an advisory lock on PostgreSQL; on SQLite the
    database's write lock, taken by a write that changes nothing. The SQLite driver opens its transaction
    only at the first write, so this also opens it: a head read before it could be stale by commit, and a
    savepoint before it would itself become the transaction (its release would commit)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        lock = "SELECT pg_advisory_xact_lock(:k, hashtext(coalesce(current_schema(), '')))"
        session.execute(text(lock), {"k": _PG_LOCK_KEY})
    elif dialect == "sqlite":
        session.execute(text("UPDATE journal SET seq = seq WHERE 0"))


def _head(session: Session) -> tuple[int, str]:
    """Sequence and hash of the newest entry, holding the append lock until commit (`lock`)."""
    lock(session)
    last = session.execute(
        select(JournalEntry.seq, JournalEntry.hash).order_by(JournalEntry.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS) if last is None else (last.seq, last.hash)


def append_many(session: Session, entries: Sequence[tuple[str, str, str, dict[str, Any] | str]]) -> int:
    """Append (actor, action, subject, payload) entries in one statement; returns the last sequence number.

    The batch path of the recorder: the head is read once and the chain computed in memory. A payload given
    as a string is taken as its canonical JSON already (the recorder keeps records in that form).
    """
    seq, prev = _head(session)
    stamp = now_utc().isoformat(timespec="microseconds")
    rows = []
    spelled: dict[tuple[str, str, str], tuple[str, str]] = {}
    for actor, action, subject, payload in entries:
        seq += 1
        body = payload if isinstance(payload, str) else canonical_json(payload)
        around = spelled.get((actor, action, subject))
        if around is None:
            around = spelled[actor, action, subject] = _around(stamp, actor, action, subject)
        digest = _digest(prev, around, seq, body)
        rows.append((seq, stamp, actor, action, subject, body, prev, digest))
        prev = digest
    # Driver-level bulk insert in the session's transaction (COPY on PostgreSQL), without per-row bookkeeping.
    db.bulk_insert(session, JournalEntry.__tablename__, _COLUMNS, rows)
    return seq


def append(
    session: Session,
    actor: str,
    action: str,
    subject: str,
    payload: dict[str, Any] | None = None,
    *,
    at: dt.datetime | None = None,
) -> JournalEntry:
    """Append one entry in the caller's transaction (it commits or rolls back with the state change)."""
    last_seq, prev = _head(session)
    seq = last_seq + 1
    stamp = (at or now_utc()).astimezone(dt.UTC).isoformat(timespec="microseconds")
    body = canonical_json(payload or {})
    entry = JournalEntry(
        seq=seq,
        at=stamp,
        actor=actor,
        action=action,
        subject=subject,
        payload=body,
        prev_hash=prev,
        hash=entry_hash(prev, seq, stamp, actor, action, subject, body),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class Head:
    """The newest entry: what an anchor records. seq 0 and GENESIS for an empty journal."""

    seq: int
    hash: str
    at: str | None


def head(session: Session) -> Head:
    """The newest entry, read without taking the append lock."""
    last = session.execute(
        select(JournalEntry.seq, JournalEntry.hash, JournalEntry.at).order_by(JournalEntry.seq.desc()).limit(1)
    ).first()
    return Head(0, GENESIS, None) if last is None else Head(last.seq, last.hash, last.at)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_hash: str = GENESIS


def verify_entries(entries: Iterable[Any], *, after: int = 0, prev: str = GENESIS) -> VerifyResult:
    """Walk the chain in physical sequence order; report the first sequence number that does not fit.

    `after` and `prev` continue a walk from a known entry (its sequence number and hash) instead of the
    start; `entries` then counts the entries walked. Rows need seq, at, actor, action, subject, payload,
    prev_hash and hash attributes (ORM entries or plain rows)."""
    expected_seq = after + 1
    count = 0
    for e in entries:
        if e.seq != expected_seq:
            missing = expected_seq if e.seq > expected_seq else e.seq
            problem = f"sequence jumps from {expected_seq - 1} to {e.seq}"
            return VerifyResult(False, count, missing, problem, prev)
        if e.prev_hash != prev:
            return VerifyResult(False, count, e.seq, "link to the previous entry is broken", prev)
        if entry_hash(prev, e.seq, e.at, e.actor, e.action, e.subject, e.payload) != e.hash:
            return VerifyResult(False, count, e.seq, "entry content does not match its hash", prev)
        prev = e.hash
        expected_seq += 1
        count += 1
    return VerifyResult(True, count, None, "", prev)


def _rows(session: Session, after: int = 0) -> Iterator[Any]:
    """Journal rows after `after` in sequence order, as plain rows (no ORM bookkeeping), fetched in chunks."""
    columns = [getattr(JournalEntry, name) for name in _HASHED]
    result = session.execute(
        select(*columns).where(JournalEntry.seq > after).order_by(JournalEntry.seq).execution_options(yield_per=5000)
    )
    try:
        yield from result
    finally:
        result.close()  # also when the walk stops early at a broken entry


_HASHED = ("seq", "at", "actor", "action", "subject", "payload", "prev_hash", "hash")


def verify_after(session: Session, after: int, prev: str) -> VerifyResult:
    """The entries after a known one (an anchor) still link to it and to each other."""
    with closing(_rows(session, after)) as rows:
        return verify_entries(rows, after=after, prev=prev)


def _subjects_of_registered_rows(session: Session) -> Iterator[str]:
    """The journal subject under which each registered venue, portal, device, person, item and approval
    was created (the services journal every creation under these names)."""
    yield from (f"venue:{code}" for code in session.execute(select(Venue.code)).scalars())
    yield from (f"portal:{code}" for code in session.execute(select(Portal.code)).scalars())
    yield from (f"device:{name}" for name in session.execute(select(Device.name)).scalars())
    yield from (f"person:{name}" for name in session.execute(select(Person.username)).scalars())
    for number, copy in session.execute(select(Item.register_number, Item.copy_number)):
        yield f"item:{number}/{copy}"
    yield from (f"approval:{ref}" for ref in session.execute(select(Approval.ref)).scalars())


def verify(session: Session) -> VerifyResult:
    """The whole chain links and hashes, and every registered row has its entries.

    The second half sees a truncation the links cannot: entries deleted from the end (or all of them)
    leave rows in the register that no entry records. An anchor (registry.anchors) sees the rest."""
    subjects: set[str] = set()

    def walked(rows: Iterator[Any]) -> Iterator[Any]:
        for row in rows:
            subjects.add(row.subject)
            yield row

    with closing(_rows(session)) as rows:
        result = verify_entries(walked(rows))
    if not result.ok:
        return result
    unrecorded = [s for s in _subjects_of_registered_rows(session) if s not in subjects]
    if unrecorded:
        shown = ", ".join(unrecorded[:3]) + (f" and {len(unrecorded) - 3} more" if len(unrecorded) > 3 else "")
        where = "the journal is empty" if result.entries == 0 else f"the journal ends at {result.entries}"
        return VerifyResult(
            False,
            result.entries,
            result.entries + 1,
            f"{where} but the register holds rows no entry records ({shown}): entries were deleted",
            result.head_hash,
        )
    return result

"""Durable, exactly-once persistence of what a site accepts: local log first, register after.

    accept(records)  -> ids     on the caller's thread: each record gets its id (site, node, seq) and is
                                written to the local log and fdatasync'd before this returns; a door acts
                                only after that. One fsync per call, so a tick's records share it.
    register writer             on the recorder's thread: reads the log through its cursor in batches and
                                writes each batch in one transaction: journal entries, effects (through the
                                registry services) and one ledger row per record id. Ids the register holds
                                already are skipped, so a replay after a crash, or after a commit whose
                                acknowledgement was lost, applies nothing twice.

The database going away (a connection-type error) is an outage: the batch waits on disk and is retried
with back-off while accepts keep going to disk, so the backlog is bounded by the disk, not by memory. Any
other error is about the records: the batch is retried one record at a time and a record the register
refuses for good is moved aside as a dead letter, with an alarm, while the rest flow on. Any unexpected
error in the loop raises an alarm and the loop carries on. Nothing is deleted from the local log before the
register has committed it (`controllers.outbox`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from controllers.outbox import HAS_EFFECTS, Cursor, Damage, Entry, Frame, LocalLog, LogError
from controllers.records import AlarmRaised, Record, RecordId, decode
from registry import journal
from registry.errors import RegistryError
from registry.journal import canonical_json
from registry.services import records as ledger

log = logging.getLogger(__name__)
T = TypeVar("T")
BACKOFF_S = (0.05, 2.0)
CONSUMER = "register"
__all__ = ["LogError", "Outage", "Recorder", "RegisterWriter", "node_identity"]


class Outage(Exception):
    """The register is unreachable (a connection-type error); the batch stays on disk and is retried."""


def is_outage(exc: BaseException) -> bool:
    """Connection-type errors only: the server or the network went away, or refused us for now."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError | ConnectionError)


@dataclass(frozen=True, slots=True)
class Identity:
    site: str
    node: str


def node_identity(directory: Path, site: str = "site") -> Identity:
    """This node's (site, node) for record ids, created once in `directory` and kept there: a fresh state
    directory is a new node, so its sequence numbers can never collide with an older one's."""
    path = directory / "identity.json"
    try:
        found = json.loads(path.read_text())
        return Identity(str(found["site"]), str(found["node"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "node"
    identity = Identity(re.sub(r"[^A-Za-z0-9._-]", "-", site)[:60] or "site", f"{host}-{secrets.token_hex(3)}")
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        f.write(json.dumps({"site": identity.site, "node": identity.node}))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return identity


class _Transaction:
    """The `RegisterTransaction` records commit into: their own entries are buffered and chained in bulk;
    a service that journals by itself gets the buffer written first, so the chain stays in order."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._lines: list[tuple[str, str, str, str]] = []
        self._owners: list[tuple[int, str]] = []  # (record seq, kind) of each buffered line
        self.rows: list[ledger.LedgerRow] = []
        self._current = (0, "")
        self._kinds: dict[int, str] = {}  # record seq -> kind, of the records with effects begun

    def begin(self, seq: int, kind: str) -> None:
        """A record with effects: its `journal` calls are its own entry."""
        self._current = (seq, kind)
        self._kinds[seq] = kind

    def mark(self) -> int:
        return len(self.rows) + len(self._owners)

    def owners_since(self, mark: int) -> list[int]:
        """The record seq of each own entry journaled since `mark`, in journal order (buffered lines are
        always the newest: `flush` moves them all to `rows`)."""
        rows = len(self.rows)
        return [row[0] for row in self.rows[mark:]] + [owner[0] for owner in self._owners[max(mark - rows, 0) :]]

    def journal(self, actor: str, action: str, subject: str, payload: str) -> None:
        self._lines.append((actor, action, subject, payload))
        self._owners.append(self._current)

    def plain(self, frame: Frame) -> None:
        """A record without effects: its entry exactly as the local log holds it."""
        self._lines.append((frame.actor, frame.action, frame.subject, frame.payload))
        self._owners.append((frame.seq, frame.kind))

    def journaled(self, seq: int, record_id: RecordId) -> None:
        self.rows.append((record_id.seq, self._kinds[record_id.seq], seq))

    def call(self, service: Callable[[Session], T]) -> T:
        self.flush()
        return service(self.session)

    def effect(self, service: Callable[[Session], object]) -> str | None:
        self.flush()
        try:
            with self.session.begin_nested():
                service(self.session)
        except RegistryError as exc:
            return str(exc)
        return None

    def flush(self) -> None:
        if self._lines:
            last = journal.append_many(self.session, self._lines)
            first = last - len(self._lines) + 1
            self.rows += [(seq, kind, first + n) for n, (seq, kind) in enumerate(self._owners)]
            self._lines, self._owners = [], []


class RegisterWriter:
    """The register as a consumer of the local log."""

    def __init__(self, factory: sessionmaker[Session], identity: Identity) -> None:
        self.factory = factory
        self.identity = identity
        self.origin = f"recorder:{identity.site}/{identity.node}"
        self.dead_letters = 0

    def deliver(self, frames: Sequence[Frame], on_dead_letter: Callable[[RecordId, str], None]) -> int:
        """Write `frames` exactly once; returns how many were new. Raises Outage."""
        try:
            return self._commit(frames)
        except Exception as exc:
            if is_outage(exc):
                raise Outage(_reason(exc)) from exc
            if len(frames) == 1:
                self._dead_letter(frames[0], exc, on_dead_letter)
                return 0
            log.warning("a batch of %d records was refused (%s); retrying them one by one", len(frames), exc)
            return sum(self.deliver([frame], on_dead_letter) for frame in frames)

    def _session(self) -> Session:
        session = self.factory()
        session.info["origin"] = self.origin
        return session

    def _commit(self, frames: Sequence[Frame]) -> int:
        site, node = self.identity.site, self.identity.node
        with self._session() as session, session.begin():
            # The write transaction is open before any effect's savepoint: on SQLite a savepoint opened
            # outside one becomes the transaction, and its release would commit that effect on its own (a
            # later failure or a kill, and the replay applies it again).
            journal.lock(session)
            held = ledger.present(session, site, node, frames[0].seq, frames[-1].seq)
            tx = _Transaction(session)
            run: list[tuple[Record, RecordId]] = []  # consecutive records of one BATCHED kind
            for frame in frames:
                if frame.seq in held:
                    continue
                record = decode(frame.kind, json.loads(frame.payload)) if frame.has_effects else None
                if run and type(record) is not type(run[0][0]):
                    _commit_run(tx, run)
                    run = []
                if record is None:  # the common case: its journal entry, exactly as the log keeps it
                    tx.plain(frame)
                    continue
                record_id = RecordId(site, node, frame.seq)
                tx.begin(frame.seq, frame.kind)
                if record.BATCHED:
                    run.append((record, record_id))
                else:
                    _commit_run(tx, [(record, record_id)])
            if run:
                _commit_run(tx, run)
            tx.flush()
            ledger.enter(session, site, node, tx.rows)
            return len(tx.rows)

    def _dead_letter(self, frame: Frame, error: Exception, on_dead_letter: Callable[[RecordId, str], None]) -> None:
        site, node = self.identity.site, self.identity.node
        record_id = RecordId(site, node, frame.seq)
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        body = json.dumps(
            {"kind": frame.kind, "actor": frame.actor, "action": frame.action, "subject": frame.subject,
             "payload": frame.payload}
        )
        try:
            with self._session() as session, session.begin():
                if not ledger.present(session, site, node, frame.seq, frame.seq):
                    ledger.dead_letter(session, site, node, frame.seq, frame.kind, body, reason)
        except Exception as exc:
            if is_outage(exc):
                raise Outage(_reason(exc)) from exc
            raise
        self.dead_letters += 1
        log.error("record %s moved to the dead letters: %s", record_id, reason)
        on_dead_letter(record_id, reason)


def _commit_run(tx: _Transaction, records: list[tuple[Record, RecordId]]) -> None:
    """Commit records with effects (several only of a BATCHED kind); each must journal one entry of its own."""
    mark = tx.mark()
    if len(records) == 1:
        record, record_id = records[0]
        record.commit(tx, record_id)
    else:
        type(records[0][0]).commit_run(tx, records)
    if tx.owners_since(mark) != [record_id.seq for _, record_id in records]:
        raise RuntimeError(f"record kind {records[0][0].KIND} must journal exactly one entry of its own per record")


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {cause}".splitlines()[0]


class Recorder:
    """Accepts records durably and delivers them to the register exactly once, on its own thread."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        directory: Path,
        *,
        site: str = "site",
        batch_size: int = 5000,
        on_db_health: Callable[[bool, str], None] | None = None,
        on_alarm: Callable[[str, str], None] | None = None,
        segment_bytes: int | None = None,
        consumers: tuple[str, ...] = (),
    ) -> None:
        """consumers: other readers of the local log besides the register (an edge's JetStream shipper),
        registered before delivery starts so no segment is released before they have read it."""
        self.directory = directory
        self._consumers = consumers
        self.identity = node_identity(directory, site)
        kwargs = {"segment_bytes": segment_bytes} if segment_bytes else {}
        self.log = LocalLog(directory, self.identity.site, self.identity.node, **kwargs)
        self.writer = RegisterWriter(factory, self.identity)
        self._batch_size = batch_size
        self._on_db_health = on_db_health or (lambda ok, reason: None)
        self._on_alarm = on_alarm  # the site's alarm book, which records (and journals) what it is told
        self._cursor: Cursor | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self._db_ok = True
        self.damage: tuple[Damage, ...] = ()
        self.written = 0  # records this process wrote to the register
        self.retries = 0
        # Accepted records with register effects (the engine's own changes); counted under the log's lock.
        self.effects_accepted = 0
        self.last_effect_seq = 0  # the newest of them (a snapshot from elsewhere must contain it)

    @property
    def origin(self) -> str:
        """What the register's change signals say for this recorder's writes."""
        return self.writer.origin

    # ---- lifecycle ----
    def start(self) -> Recorder:
        """Recover the local log (damage is never fatal), then start delivering. The damage found is in `damage`
        for the site to alarm once its alarm book is loaded; a recorder with no `on_alarm` journals it here."""
        opened = self.log.open(CONSUMER)
        self._cursor = self.log.cursor(CONSUMER)
        for consumer in self._consumers:
            self.log.add_cursor(consumer)
        self.damage = opened.damage
        if opened.backlog:
            log.warning("delivering %d records accepted by an earlier run", opened.backlog)
        for damage in opened.damage:
            log.error("%s", damage.describe())
        if self._on_alarm is None and opened.damage:
            now = time.time_ns() // 1000
            self.accept([AlarmRaised(alarm="local_log_damaged", source="recorder", detail=d.describe(), time_us=now)
                         for d in opened.damage])
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> int:
        """Deliver what the register will take within `timeout_s`, then stop; returns how many accepted
        records are left in the local log, not yet confirmed in the register (the next start delivers them)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                self._abandon.set()
                self._thread.join(5)
            self._thread = None
        self.log.close()
        return self.backlog()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything accepted so far is in the register (tests, shutdown, reloads)."""
        deadline = time.monotonic() + timeout_s
        while self.backlog() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.backlog() == 0

    # ---- the producer side ----
    def accept(self, records: Sequence[Record]) -> list[RecordId]:
        """Give each record its id and make them durable in the local log (one fdatasync), then return the
        ids. Raises LogError when the disk refuses: the caller must not act on these records."""
        if not records:
            return []
        site, node = self.identity.site, self.identity.node
        effects = [record.has_effects() for record in records]

        def entries(first: int) -> list[Entry]:  # called under the log's lock, with the first new seq
            self.effects_accepted += sum(effects)
            if any(effects):
                self.last_effect_seq = first + max(n for n, e in enumerate(effects) if e)
            return [
                Entry(
                    HAS_EFFECTS if effects[n] else 0, record.KIND, *record.entry(),
                    canonical_json(record.payload(RecordId(site, node, first + n))),
                )
                for n, record in enumerate(records)
            ]

        first = self.log.append(entries)
        self._wake.set()
        return [RecordId(site, node, first + n) for n in range(len(records))]

    def backlog(self) -> int:
        """Accepted records not yet confirmed in the register."""
        return self._cursor.backlog() if self._cursor is not None else 0

    # ---- the consumer side ----
    def _run(self) -> None:
        assert self._cursor is not None
        cursor = self._cursor
        delay = BACKOFF_S[0]
        while not self._abandon.is_set():
            if self._stop.is_set() and cursor.backlog() == 0:
                return
            try:
                frames, through = cursor.read(self._batch_size)
                if not frames:
                    if through != cursor.position:
                        cursor.commit(0, through)  # only damage or empty segments lay between
                    if self._stop.is_set():
                        return
                    self._wake.wait(0.05)
                    self._wake.clear()
                    continue
                self.written += self.writer.deliver(frames, self._dead_lettered)
                cursor.commit(len(frames), through)
                self._set_db(True, "database reachable")
                delay = BACKOFF_S[0]
            except Outage as exc:
                self.retries += 1
                self._set_db(False, f"database unavailable: {exc}")
                if self._stop.is_set():
                    log.error("stopping with %d accepted records kept in %s", cursor.backlog(), self.directory)
                    return
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_S[1])
            except Exception as exc:
                log.exception("recorder loop error")
                self._alarm("recorder_error", f"{type(exc).__name__}: {exc}")
                if self._stop.is_set():
                    return
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_S[1])

    def _dead_lettered(self, record_id: RecordId, reason: str) -> None:
        self._alarm("record_dead_lettered", f"record {record_id} refused by the register: {reason}")

    def _alarm(self, kind: str, detail: str) -> None:
        """Tell the guards through the site's alarm book (it records the alarm)."""
        if self._on_alarm is None:
            return
        try:
            self._on_alarm(kind, detail)
        except Exception:
            log.exception("alarm callback failed")

    def _set_db(self, ok: bool, reason: str) -> None:
        if ok != self._db_ok:
            self._db_ok = ok
            self._on_db_health(ok, reason)

"""Durable, batched persistence of what the controllers decide, off the decision path.

Every record is first appended to a local spool file (fsynced per batch), then written to the register in
one transaction per batch, then the spool is cleared. While the database is unavailable, batches wait and
are retried with back-off; records submitted meanwhile keep queueing; nothing accepted is dropped. A
spool left behind by a crash is replayed at start (at-least-once: a batch committed just before a crash
may be journaled twice, never lost).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from registry import db, journal

log = logging.getLogger(__name__)
Effect = Callable[[Session, "Record"], None]


@dataclass(frozen=True, slots=True)
class Record:
    """One journal entry to write, plus the name of a register effect to apply with it (or "")."""

    actor: str
    action: str
    subject: str
    payload: dict[str, Any] = field(default_factory=dict)
    effect: str = ""


def _fields(record: Record) -> list[object]:
    return [record.actor, record.action, record.subject, record.payload, record.effect]


class Recorder:
    def __init__(
        self,
        factory: sessionmaker[Session],
        spool: Path,
        effects: dict[str, Effect] | None = None,
        *,
        batch_size: int = 5000,
        on_db_health: Callable[[bool, str], None] | None = None,
    ) -> None:
        self._factory = factory
        self._spool = spool
        self._effects = effects or {}
        self._batch_size = batch_size
        self._queue: queue.Queue[Record] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_db_health = on_db_health or (lambda ok, reason: None)
        self._db_ok = True
        self.written = 0
        self.retries = 0

    def submit(self, record: Record) -> None:
        self._queue.put(record)

    def pending(self) -> int:
        return self._queue.qsize()

    def start(self) -> Recorder:
        self._replay_spool()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Drain everything queued, then stop. Whatever cannot be written stays in the spool."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted so far is in the register (tests and shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def _take_batch(self) -> list[Record]:
        try:
            first = self._queue.get(timeout=0.05)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        delay = 0.05
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stop.is_set():
                    return
                continue
            self._write_spool(batch)
            while True:
                try:
                    self._commit(batch)
                    break
                except (OperationalError, DBAPIError) as exc:
                    self.retries += 1
                    self._set_db(False, f"database unavailable: {type(exc.orig).__name__ if exc.orig else exc}")
                    if self._stop.is_set() and self.retries > 50:
                        log.error("recorder stopping with %d records left in the spool", len(batch))
                        return
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
            delay = 0.05
            self._set_db(True, "database reachable")
            self._clear_spool()
            for _ in batch:
                self._queue.task_done()

    def _commit(self, batch: list[Record]) -> None:
        """One transaction per batch. Plain records are chained in bulk; a record with a register effect is
        written after its effect, which may journal entries of its own."""
        with db.transaction(self._factory) as session:
            plain: list[tuple[str, str, str, dict[str, Any]]] = []
            for record in batch:
                if record.effect:
                    journal.append_many(session, plain)
                    plain = []
                    self._effects[record.effect](session, record)
                plain.append((record.actor, record.action, record.subject, record.payload))
            journal.append_many(session, plain)
        self.written += len(batch)

    def _set_db(self, ok: bool, reason: str) -> None:
        if ok != self._db_ok:
            self._db_ok = ok
            self._on_db_health(ok, reason)

    def _write_spool(self, batch: list[Record]) -> None:
        with self._spool.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(_fields(record), default=str) + "\n" for record in batch)
            f.flush()
            os.fsync(f.fileno())

    def _clear_spool(self) -> None:
        with self._spool.open("w", encoding="utf-8") as f:
            f.flush()
            os.fsync(f.fileno())

    def _replay_spool(self) -> None:
        if not self._spool.exists():
            return
        lines = [line for line in self._spool.read_text(encoding="utf-8").splitlines() if line.strip()]
        self._clear_spool()
        for line in lines:
            self.submit(Record(*json.loads(line)))
        if lines:
            log.warning("replaying %d spooled records left by an earlier run", len(lines))

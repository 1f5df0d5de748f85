"""Records between the recorder's local log at an edge and the register at the centre.

Edge: `LogShipper` is a second consumer of the recorder's local log (beside the edge's own register
writer). It publishes each frame to the site stream with `Nats-Msg-Id` = its record id (site/node/seq) and
commits its cursor only once the local JetStream acknowledged every frame up to there; the log keeps a
segment until every consumer passed it, so a record leaves the edge's disk only once the leaf holds it.
After a crash the cursor (a hint) may be behind: the frames go again and come back as duplicates.

Centre: `RegisterSink` is the centre consumer's sink: it writes records into the register with the same
`RegisterWriter` the single site uses (journal entry, effects, one ledger row per record id, in one
transaction per node's batch), so a redelivered record is skipped whole.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from itertools import groupby

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from controllers.outbox import Cursor, Frame, LocalLog
from controllers.recorder import Identity, RegisterWriter
from controllers.records import RecordId
from multisite.commands import RESULT_KIND, CommandResult
from multisite.edge import SyncEdgePublisher
from multisite.envelope import EnvelopeError, RecordEnvelope
from registry.models import AcceptedRecord

log = logging.getLogger(__name__)
SHIPPER = "jetstream"  # the shipper's cursor name in the local log


def frame_envelope(identity: Identity, frame: Frame, at_us: int) -> RecordEnvelope:
    body = json.dumps(
        [frame.flags, frame.actor, frame.action, frame.subject, frame.payload], separators=(",", ":")
    ).encode()
    record_id = str(RecordId(identity.site, identity.node, frame.seq))
    return RecordEnvelope(record_id, identity.site, frame.kind, at_us, body)


def envelope_frame(envelope: RecordEnvelope) -> tuple[Identity, Frame]:
    """The frame an envelope carries and the node that accepted it. Raises EnvelopeError."""
    try:
        site, node, seq = envelope.record_id.split("/")
        flags, actor, action, subject, payload = json.loads(envelope.body)
        if site != envelope.site:
            raise ValueError(f"record of site {site} on site {envelope.site}'s subject")
        return Identity(site, node), Frame(int(seq), int(flags), envelope.kind, actor, action, subject, payload, 0, 0)
    except (ValueError, TypeError) as exc:
        raise EnvelopeError(f"record {envelope.record_id}: not a recorder frame ({exc})") from exc


class LogShipper:
    """Publishes the local log to the site stream on its own thread, in order, batch by batch."""

    def __init__(
        self,
        cursor: Cursor,
        identity: Identity,
        publisher: SyncEdgePublisher,
        *,
        log: LocalLog,
        batch: int = 2000,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self._cursor = cursor
        self._log = log
        first, _ = cursor.read(1)
        self._through_seq = first[0].seq - 1 if first else log.next_seq - 1  # the last seq the leaf holds
        self._identity = identity
        self._publisher = publisher
        self._batch = batch
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self.shipped = 0  # frames the site stream acknowledged (duplicates included)
        self.duplicates = 0
        self.last_error = ""

    def start(self) -> LogShipper:
        self._thread.start()
        return self

    def poke(self) -> None:
        self._wake.set()

    def backlog(self) -> int:
        """Accepted records the site stream has not acknowledged yet (an upper bound after damage)."""
        return max(0, self._log.next_seq - 1 - self._through_seq)

    def stop(self, timeout_s: float = 10.0) -> int:
        """Ship what the leaf takes within `timeout_s`, then stop; returns the backlog left (kept on disk)."""
        deadline = time.monotonic() + timeout_s
        while self.backlog() and time.monotonic() < deadline and not self.last_error:
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s + 35)
        return self.backlog()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._ship()
            except Exception as exc:  # the disk or a cursor file: logged, and shipping goes on
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("log shipper error; retrying")
                self._stop.wait(0.5)

    def _ship(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            frames, through = self._cursor.read(self._batch)
            if not frames:
                if through != self._cursor.position:
                    self._cursor.commit(0, through)
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            at = self._clock()
            envelopes = [frame_envelope(self._identity, f, at) for f in frames]
            try:
                outcomes = self._publisher.publish(envelopes)
            except Exception as exc:  # the loop thread wedged or the link closed: try again
                outcomes = []
                self.last_error = f"{type(exc).__name__}: {exc}"
            refused = next((o for o in outcomes if not o.accepted), None) if outcomes else None
            if outcomes and refused is None:
                self._cursor.commit(len(frames), through)
                self._through_seq = frames[-1].seq
                self.shipped += len(frames)
                self.duplicates += sum(o.duplicate for o in outcomes)
                self.last_error = ""
                delay = 0.05
                continue
            if refused is not None:
                self.last_error = refused.error
            log.warning("site stream did not take %d records, retrying: %s", len(frames), self.last_error)
            self._stop.wait(delay)
            delay = min(2 * delay, 2.0)


class RegisterSink:
    """The centre consumer's sink: records into the register, exactly once by record id. Raises Outage
    (the consumer keeps the batch and retries) while the database is away."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        on_dead_letter: Callable[[RecordId, str], None] | None = None,
        on_written: Callable[[Identity, Sequence[Frame]], None] | None = None,
        on_result: Callable[[CommandResult], None] | None = None,
    ) -> None:
        """on_written: called with each node's batch once the register committed it (new records only when
        the whole batch was new; a redelivered batch is not reported again). on_result: called with each
        command receipt an edge sent back (a redelivered one again: the callee keeps it idempotent)."""
        self._factory = factory
        self._on_written = on_written or (lambda identity, frames: None)
        self._on_result = on_result or (lambda result: None)
        self._writers: dict[Identity, RegisterWriter] = {}
        self._on_dead_letter = on_dead_letter or (lambda record_id, reason: None)
        self.written = 0
        self.malformed = 0
        self.effects = 0  # records with register effects handed to the register
        self._lock = threading.Lock()
        with factory() as session:  # site/node -> highest seq in the ledger (edges wait for their own)
            self.applied = {
                f"{s}/{n}": int(seq)
                for s, n, seq in session.execute(
                    select(AcceptedRecord.site, AcceptedRecord.node, func.max(AcceptedRecord.seq)).group_by(
                        AcceptedRecord.site, AcceptedRecord.node
                    )
                )
            }

    def apply(self, envelopes: Sequence[RecordEnvelope]) -> None:
        frames: list[tuple[Identity, Frame]] = []
        for envelope in envelopes:
            if envelope.kind == RESULT_KIND:  # a command's receipt: its effect came as the edge's own record
                try:
                    self._on_result(CommandResult.from_envelope(envelope))
                except (ValueError, TypeError) as exc:
                    log.error("unreadable command receipt %s: %s", envelope.record_id, exc)
                continue
            try:
                frames.append(envelope_frame(envelope))
            except EnvelopeError as exc:
                self.malformed += 1
                log.error("%s", exc)
        frames.sort(key=lambda pair: (pair[0].site, pair[0].node, pair[1].seq))
        for identity, group in groupby(frames, key=lambda pair: pair[0]):
            writer = self._writers.get(identity)
            if writer is None:
                writer = self._writers[identity] = RegisterWriter(self._factory, identity)
            batch = _unique([f for _i, f in group])
            new = writer.deliver(batch, self._on_dead_letter)  # raises Outage: the batch is retried
            self.written += new
            if new:
                self._on_written(identity, batch)
            self.effects += sum(f.has_effects for f in batch)
            key = f"{identity.site}/{identity.node}"
            with self._lock:
                self.applied[key] = max(self.applied.get(key, 0), batch[-1].seq)

    def applied_now(self) -> dict[str, int]:
        """A copy of the ledger positions written so far (from any thread)."""
        with self._lock:
            return dict(self.applied)


def _unique(frames: list[Frame]) -> list[Frame]:
    """One frame per seq (a batch may hold a redelivered copy next to the first)."""
    out: list[Frame] = []
    for frame in frames:
        if not out or out[-1].seq != frame.seq:
            out.append(frame)
    return out

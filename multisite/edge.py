"""The edge's side of the record path: the site stream on the local leaf server, and the publisher that
counts a record accepted only when that server's JetStream has stored it.

The site stream keeps every record for `max_age` (Limits retention: WorkQueue and Interest streams lost
messages across outages, nats-server issue 3207), longer than the longest outage planned for, so the
centre's source can resume from where it stopped. A batch of records republished within `duplicate_window`
(after a crash, a timeout, a retry: the same records, cut the same way) is acknowledged as a duplicate and
stored once; records republished in another cut are stored again and the register keeps one copy of each.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from multisite.envelope import (
    PublishOutcome,
    RecordBatch,
    RecordEnvelope,
    check_site,
    cut_batches,
    record_subject,
    site_inbox,
    site_stream,
)
from multisite.link import Link

DAY_S = 86_400.0
EXPECTED_STREAM = "Nats-Expected-Stream"  # the server refuses a record that would land in any other stream


@dataclass(frozen=True)
class SiteStreamConfig:
    """max_age_s: how long records stay at the edge (30 days: outages up to that long lose nothing).
    duplicate_window_s: republished ids inside it are acked as duplicates (the register's unique record id
    catches later ones). max_bytes: disk the site stream may take (-1: no limit but max_age)."""

    max_age_s: float = 30 * DAY_S
    duplicate_window_s: float = 3600.0
    max_bytes: int = -1


async def ensure_site_stream(js: JetStreamContext, site: str, config: SiteStreamConfig | None = None) -> None:
    """Create the site stream in the local domain, or bring its limits up to `config` (idempotent)."""
    config = config or SiteStreamConfig()
    wanted = api.StreamConfig(
        name=site_stream(site),
        subjects=[record_subject(check_site(site), ">")],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=config.max_age_s,
        max_bytes=config.max_bytes,
        duplicate_window=config.duplicate_window_s,
        discard=api.DiscardPolicy.NEW,  # full: refuse new records (the recorder keeps them) rather than drop old
        deny_delete=True,
        deny_purge=True,
    )
    try:
        await js.stream_info(wanted.name)  # type: ignore[arg-type]
    except NotFoundError:
        await js.add_stream(wanted)
        return
    await js.update_stream(wanted)


class EdgePublisher:
    """Publishes envelopes to the local site stream and reports each one's outcome, with at most `window`
    acknowledgements outstanding. Async; `SyncEdgePublisher` is the threaded callers' face.

    The envelopes travel in batches (`cut_batches`: up to 100 consecutive records per message, its
    `Nats-Msg-Id` a digest of their ids): the leaf, the hub's source and the centre's consumer handle one
    message per batch, not per record. A record is accepted only when the ack of its whole batch came back;
    nothing is held back to fill a batch (a call's records are cut into batches and sent at once).

    A JetStream publish is a request whose reply is the stream's ack. The batch's requests are written
    back to back (one socket write per window, not per record) with replies to one wildcard inbox; nats-py's
    `publish_async` yields to the loop on every record, which caps it near 6 k records/s."""

    def __init__(self, nc: Client, site: str, *, window: int = 4000, ack_timeout_s: float = 30.0) -> None:
        self._nc = nc
        self.site = check_site(site)
        self._stream = site_stream(site)
        self._window = window
        self._ack_timeout_s = ack_timeout_s
        self._inbox = ""
        self._waiting: dict[str, asyncio.Future[bytes]] = {}
        self._serial = 0

    async def _ensure_inbox(self) -> None:
        if not self._inbox:
            self._inbox = self._nc.new_inbox()
            await self._nc.subscribe(self._inbox + ".*", cb=self._on_reply)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject.rpartition(".")[2], None)
        if future is None or future.done():
            return  # an ack that arrived after its record was given up on: the retry will see a duplicate
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(NoRespondersError())
        else:
            future.set_result(msg.data)

    async def publish(self, envelopes: Sequence[RecordEnvelope]) -> list[PublishOutcome]:
        """One outcome per envelope, in order. Not accepted (error set) means: not known to be stored;
        publish it again later (same record id: a copy that did get stored comes back as a duplicate)."""
        for env in envelopes:
            if env.site != self.site:
                raise ValueError(f"record {env.record_id} is for site {env.site}, this publisher is {self.site}")
        await self._ensure_inbox()
        batches = cut_batches(envelopes)
        outcomes: list[PublishOutcome] = []
        for start in range(0, len(batches), self._window):
            outcomes += await self._publish_window(batches[start : start + self._window])
        return outcomes

    async def _publish_window(self, batches: Sequence[RecordBatch]) -> list[PublishOutcome]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bytes] | str] = []
        refused = ""  # once one cannot be sent, the rest of the window is not tried
        for batch in batches:
            if refused:
                futures.append(refused)
                continue
            self._serial += 1
            token = str(self._serial)
            future: asyncio.Future[bytes] = loop.create_future()
            self._waiting[token] = future
            headers = batch.headers()
            headers[EXPECTED_STREAM] = self._stream
            try:
                await self._nc.publish(batch.subject, batch.body(), reply=f"{self._inbox}.{token}", headers=headers)
            except Exception as exc:  # closed, or the reconnect buffer is full
                self._waiting.pop(token, None)
                refused = f"not sent: {type(exc).__name__}: {exc}"
                futures.append(refused)
                continue
            futures.append(future)
        sent = [f for f in futures if not isinstance(f, str)]
        await self._await_acks(sent)
        self._waiting = {t: f for t, f in self._waiting.items() if not f.done()}
        return [
            self._outcome(env, f) for batch, f in zip(batches, futures, strict=True) for env in batch.records
        ]

    async def _await_acks(self, sent: list[asyncio.Future[bytes]]) -> None:
        """Wait while acks keep coming: a slow server is not a lost one (with an fsync per write, acks come
        in bursts seconds apart on a busy disk). Give up on the rest once none has arrived for
        `ack_timeout_s` (30 s by default: it only has to tell a dead server from a slow one)."""
        acked = sum(f.done() for f in sent)
        while acked < len(sent):
            before = acked
            # Acks come back in order: wait for the last outstanding one, then look at the progress made.
            await asyncio.wait([f for f in sent if not f.done()][-1:], timeout=self._ack_timeout_s)
            acked = sum(f.done() for f in sent)
            if acked == before:
                break
        for future in sent:
            if not future.done():
                future.cancel()

    def _outcome(self, env: RecordEnvelope, future: asyncio.Future[bytes] | str) -> PublishOutcome:
        if isinstance(future, str):
            return PublishOutcome(env.record_id, False, error=future)
        if future.cancelled():
            return PublishOutcome(
                env.record_id, False, error=f"no ack from the site stream for {self._ack_timeout_s} s"
            )
        exc = future.exception()
        if exc is not None:
            return PublishOutcome(env.record_id, False, error=f"no site stream answered: {type(exc).__name__}")
        reply = json.loads(future.result())
        if "error" in reply:
            error = reply["error"]
            return PublishOutcome(env.record_id, False, error=f"refused by the site stream: {error.get('description')}")
        return PublishOutcome(env.record_id, True, duplicate=bool(reply.get("duplicate")), seq=int(reply["seq"]))


class SyncEdgePublisher:
    """The edge publisher for threaded callers (the recorder): `publish(batch)` blocks until every envelope
    of the batch is acknowledged by the local JetStream, refused, or timed out."""

    def __init__(
        self,
        url: str,
        site: str,
        *,
        window: int = 4000,
        ack_timeout_s: float = 30.0,
        stream: SiteStreamConfig | None = None,
    ) -> None:
        self.link = Link(url, f"edge-{site}", inbox_prefix=site_inbox(site))
        try:
            self.link.run(ensure_site_stream(self.link.js(), site, stream))
            self._publisher = EdgePublisher(self.link.nc, site, window=window, ack_timeout_s=ack_timeout_s)
        except BaseException:
            self.link.close()
            raise
        self._timeout_s = ack_timeout_s

    def publish(self, envelopes: Sequence[RecordEnvelope]) -> list[PublishOutcome]:
        # The loop side gives up by itself when acks stop coming; this bound only guards a wedged loop thread.
        return self.link.run(self._publisher.publish(envelopes), 60 + self._timeout_s + len(envelopes) / 100)

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> SyncEdgePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

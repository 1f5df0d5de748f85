"""The centre's side of the record path: one stream that sources every site stream across domains, and a
durable consumer that hands batches to the register and acknowledges them only after the register committed.

Exactly once, in practice: the site stream dropped republished ids (message dedup); the consumer acks with a
double ack after the sink's transaction committed; a crash between commit and ack redelivers the batch, and
the sink, idempotent by record id (a unique constraint), keeps one copy.

Acks are explicit, one per message: every message of the batch is acked, and the last one with `ack_sync`
(the server's confirmation). One connection's acks reach the consumer in order, so that confirmation covers
the batch. Not AckAll: a consumer killed with messages delivered to its pending pulls leaves them unacked
until `ack_wait`, and the next process's ack-all would acknowledge them without their being written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError

from multisite.envelope import (
    CENTRE_STREAM,
    RECORDS_PREFIX,
    EnvelopeError,
    RecordEnvelope,
    check_site,
    site_api,
    site_stream,
)
from multisite.link import Link
from multisite.servers import deliver_prefix

log = logging.getLogger(__name__)
DURABLE = "register"


class RecordSink(Protocol):
    """Where the centre's records land (the register's record writer). `apply` commits the batch before it
    returns, and ignores a record whose id it already holds (redeliveries happen). It may raise to refuse
    the batch (the database is away): the consumer keeps the batch and retries."""

    def apply(self, envelopes: Sequence[RecordEnvelope]) -> None: ...


@dataclass(frozen=True)
class CentreStreamConfig:
    """max_age_s: how long the centre's copy stays in JetStream (the register is the system of record; the
    edge keeps its own copy longer). duplicate_window_s: the centre stream drops a sourced duplicate too."""

    name: str = CENTRE_STREAM
    max_age_s: float = 7 * 86_400.0
    duplicate_window_s: float = 3600.0


def _source(site: str) -> api.StreamSource:
    external = api.ExternalStream(api=site_api(check_site(site)), deliver=deliver_prefix(site))  # see leaf_permissions
    return api.StreamSource(name=site_stream(site), external=external)


async def ensure_centre_stream(
    js: JetStreamContext, sites: Sequence[str], config: CentreStreamConfig | None = None
) -> None:
    """Create the centre stream sourcing `sites`, or add the sites it does not source yet (idempotent;
    a source already there keeps its position)."""
    config = config or CentreStreamConfig()
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=config.name,
                sources=[_source(s) for s in sites],
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                max_age=config.max_age_s,
                duplicate_window=config.duplicate_window_s,
                deny_delete=True,
            )
        )
        return
    existing = list(info.config.sources or [])
    known = {s.name for s in existing}
    added = [_source(s) for s in sites if site_stream(s) not in known]
    if added:
        await js.update_stream(info.config.evolve(sources=existing + added))


@dataclass(frozen=True, slots=True)
class SourceState:
    """How far the centre is behind one site (a guard page shows it: sync lag is what PACS users cannot see).

    lag: the server's own figure, as of the source's last contact (it stays where it was while cut off).
    active_s: seconds since the centre last heard from that site's stream (None: never). behind: records the
    site's stream holds that the centre's has not sourced yet, asked of the site across the link now (None:
    the site does not answer). error: the server's complaint about the source, if any."""

    site: str
    lag: int
    active_s: float | None
    behind: int | None
    error: str = ""


def _origin_seq(headers: dict[str, str] | None) -> int:
    """The site-stream sequence of a sourced message (`Nats-Stream-Source: <stream:hash> <seq> ...`)."""
    tokens = (headers or {}).get("Nats-Stream-Source", "").split()
    return int(tokens[1]) if len(tokens) > 1 and tokens[1].isdigit() else 0


async def site_behind(nc: Client, site: str, stream: str = CENTRE_STREAM, timeout_s: float = 2.0) -> int | None:
    """Records site `site` holds that the centre stream has not sourced yet; None if the site cannot be asked."""
    try:
        remote = await nc.jetstream(domain=site, timeout=timeout_s).stream_info(site_stream(site))
    except Exception:  # cut off, or the leaf is restarting
        return None
    try:
        last = await nc.jetstream(timeout=timeout_s).get_last_msg(stream, f"{RECORDS_PREFIX}.{site}.>")
        position = _origin_seq(last.headers)
    except NotFoundError:
        position = 0
    return max(0, remote.state.last_seq - position)


async def source_states(nc: Client, stream: str = CENTRE_STREAM) -> list[SourceState]:
    info = await nc.jetstream(timeout=5).stream_info(stream)
    states = []
    for source in info.sources or []:
        site = source.name.removeprefix("SITE_")
        active = source.active if source.active is not None and source.active >= 0 else None
        error = (source.error or {}).get("description", "") if source.error else ""
        states.append(
            SourceState(
                site=site,
                lag=int(source.lag or 0),
                active_s=active / 1e9 if active is not None else None,
                behind=await site_behind(nc, site, stream),
                error=str(error),
            )
        )
    return states


class CentreConsumer:
    """The durable pull consumer feeding the sink. `run()` fetches the next batch while the sink commits
    the current one; a batch is acked (double ack) only after the sink returned.

    sites: consume only these sites' records (a partition, with its own durable name), so that several
    consumer processes share the centre's load; None: every site."""

    def __init__(
        self,
        js: JetStreamContext,
        sink: RecordSink,
        *,
        stream: str = CENTRE_STREAM,
        durable: str = DURABLE,
        batch: int = 2000,
        ack_wait_s: float = 30.0,
        fetch_wait_s: float = 0.5,
        sites: Sequence[str] | None = None,
    ) -> None:
        self._js = js
        self._filters = [f"{RECORDS_PREFIX}.{check_site(s)}.>" for s in sites] if sites else None
        self._sink = sink
        self._stream = stream
        self._durable = durable
        self._batch = batch
        self._ack_wait_s = ack_wait_s
        self._fetch_wait_s = fetch_wait_s
        self._sub: JetStreamContext.PullSubscription | None = None
        self.applied = 0  # envelopes handed to the sink and acknowledged (redeliveries included)
        self.malformed = 0

    async def setup(self) -> None:
        try:
            await self._js.consumer_info(self._stream, self._durable)
        except NotFoundError:
            await self._js.add_consumer(
                self._stream,
                api.ConsumerConfig(
                    durable_name=self._durable,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    ack_wait=self._ack_wait_s,
                    deliver_policy=api.DeliverPolicy.ALL,
                    max_ack_pending=4 * self._batch,
                    max_waiting=4,
                    filter_subjects=self._filters,
                ),
            )
        self._sub = await self._js.pull_subscribe_bind(self._durable, self._stream)

    async def fetch(self) -> list:  # list[nats Msg]
        assert self._sub is not None, "setup() first"
        try:
            return await self._sub.fetch(self._batch, timeout=self._fetch_wait_s)
        except TimeoutError:  # nats.errors.TimeoutError is one
            return []

    async def apply(self, msgs: list) -> int:
        """Hand a fetched batch to the sink (retrying while it refuses), then double-ack it."""
        if not msgs:
            return 0
        envelopes = []
        for msg in msgs:
            try:
                envelopes.append(RecordEnvelope.from_message(msg.subject, msg.headers, msg.data))
            except EnvelopeError as exc:  # kept in the centre stream, never handed on
                self.malformed += 1
                log.error("centre stream seq %s is not a record: %s", msg.metadata.sequence.stream, exc)
        delay = 0.05
        while True:
            try:
                await asyncio.to_thread(self._sink.apply, envelopes)
                break
            except Exception as exc:
                log.warning("register refused a batch of %d, retrying in %.2f s: %s", len(envelopes), delay, exc)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 2.0)
        for msg in msgs[:-1]:
            await msg.ack()
        await msgs[-1].ack_sync(timeout=10)
        self.applied += len(envelopes)
        return len(envelopes)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: a failed fetch or ack (the hub restarting) is logged and the loop goes on; what was
        not acknowledged comes back after `ack_wait` and the sink drops what it already holds."""
        next_batch = asyncio.ensure_future(self.fetch())
        try:
            while not stop.is_set():
                try:
                    msgs = await next_batch
                except Exception as exc:
                    log.warning("centre consumer fetch failed: %s", exc)
                    msgs = []
                    await asyncio.sleep(0.5)
                next_batch = asyncio.ensure_future(self.fetch())
                try:
                    await self.apply(msgs)
                except Exception as exc:
                    log.warning("centre consumer ack failed, the batch will be redelivered: %s", exc)
        finally:
            next_batch.cancel()

    async def pending(self) -> int:
        """Records in the centre stream not yet acknowledged by this consumer."""
        info = await self._js.consumer_info(self._stream, self._durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


class CentreIngest:
    """The centre's record path for threaded callers: the centre stream, the consumer running on its loop
    thread, and the figures a guard page and the tests need (source lag, pending)."""

    def __init__(
        self,
        url: str,
        sink: RecordSink,
        sites: Sequence[str],
        *,
        stream: CentreStreamConfig | None = None,
        durable: str = DURABLE,
        batch: int = 2000,
        ack_wait_s: float = 30.0,
        consume: Sequence[str] | None = None,
    ) -> None:
        """sites: those the centre stream sources (added if missing). consume: the partition this ingest
        writes (default all; give each partition its own `durable`)."""
        self.link = Link(url, "centre-ingest")
        self._stream = (stream or CentreStreamConfig()).name
        self._consume = list(consume) if consume else None
        self.consumer = CentreConsumer(
            self.link.js(),
            sink,
            stream=self._stream,
            durable=durable,
            batch=batch,
            ack_wait_s=ack_wait_s,
            sites=self._consume,
        )
        self._stop = asyncio.Event()
        try:
            self.link.run(ensure_centre_stream(self.link.js(), sites, stream))
            self.link.run(self.consumer.setup())
        except BaseException:
            self.link.close()
            raise
        self._task = self.link.loop.spawn(self.consumer.run(self._stop))

    def add_site(self, site: str) -> None:
        self.link.run(ensure_centre_stream(self.link.js(), [site], CentreStreamConfig(name=self._stream)))

    def sources(self) -> list[SourceState]:
        return self.link.run(source_states(self.link.nc, self._stream))

    def pending(self) -> int:
        return self.link.run(self.consumer.pending())

    def wait_drained(self, timeout_s: float = 30.0) -> bool:
        """Until no source lags and the consumer has nothing pending (tests, shutdown, the backlog bench)."""

        async def drained() -> bool:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while asyncio.get_running_loop().time() < deadline:
                states = [
                    s
                    for s in await source_states(self.link.nc, self._stream)
                    if self._consume is None or s.site in self._consume
                ]
                if all(s.behind == 0 for s in states) and await self.consumer.pending() == 0:
                    return True
                await asyncio.sleep(0.2)  # the consumer shares this loop: ask rarely
            return False

        return self.link.run(drained(), timeout_s + 10)

    def close(self) -> None:
        self.link.loop.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._task.result(15)
        except Exception as exc:
            log.debug("centre consumer ended: %s", exc)
        self.link.close()

    def __enter__(self) -> CentreIngest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

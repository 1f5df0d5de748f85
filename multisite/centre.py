"""The centre's side of the record path: one stream that sources every site stream across domains, and a
durable consumer that hands batches to the register and acknowledges them only after the register committed.

Exactly once, in practice: the site stream dropped republished ids (message dedup); the consumer acks with a
double ack after the sink's transaction committed; a crash between commit and ack redelivers the batch, and
the sink, idempotent by record id (a unique constraint), keeps one copy.

One AckAll per batch, on its last delivery, after the sink committed. An AckAll acknowledges every message
the consumer has pending up to that stream sequence, so it must never cover a message delivered to someone
else: a consumer killed with messages delivered to its pending pulls leaves them unacked, and the next
process's AckAll would acknowledge them without their being written. So each process makes its own consumer
for its partition (`CentreConsumer.setup`): it starts after the ack floor of the partition's older consumers
and deletes them, so what they delivered without an ack comes again to the new one. Within a process, the
AckAll is sent only if every delivery of its consumer reached it (consumer sequences without a gap, no
reconnect since the consumer was made); otherwise the batch stays unacknowledged and a new consumer starts
from the ack floor. One process per partition: a second one takes the partition over and the first stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext, api
from nats.js.errors import NotFoundError, ServiceUnavailableError

from multisite.envelope import (
    BATCH_RECORDS,
    CENTRE_STREAM,
    RECORDS_PREFIX,
    EnvelopeError,
    RecordEnvelope,
    check_site,
    message_records,
    site_api,
    site_stream,
)
from multisite.link import Link
from multisite.servers import deliver_prefix

log = logging.getLogger(__name__)
DURABLE = "register"
PARTITION_KEY = "custodian_partition"  # consumer metadata: the partition (durable name) a consumer serves


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
    active_s: seconds since the centre last heard from that site's stream (None: never). behind: messages the
    site's stream holds that the centre's has not sourced yet (each a batch of up to `BATCH_RECORDS` records),
    asked of the site across the link now (None: the site does not answer). error: the server's complaint about
    the source, if any."""

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
    """Messages (batches of records) site `site` holds that the centre stream has not sourced yet; None if the site
    cannot be asked."""
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


class ConsumerTakenOver(RuntimeError):
    """Another process started a consumer for this partition, which deleted this one's."""


class CentreConsumer:
    """The pull consumer feeding the sink. `run()` fetches the next batch while the sink commits the current
    one; a batch is acknowledged (one AckAll, double ack) only after the sink returned.

    partition: the durable name the caller gives (one per partition); each process makes its own consumer
    for it (`setup()`), so an AckAll only ever covers messages delivered to this process (see the module
    docstring). sites: consume only these sites' records (a partition), so that several consumer processes
    share the centre's load; None: every site. batch: records per register transaction, about: a pull asks for
    `batch` divided by the records per message of the last batch (edges send up to `BATCH_RECORDS` per message)."""

    def __init__(
        self,
        nc: Client,
        sink: RecordSink,
        *,
        stream: str = CENTRE_STREAM,
        durable: str = DURABLE,
        batch: int = 2000,
        ack_wait_s: float = 30.0,
        fetch_wait_s: float = 0.5,
        sites: Sequence[str] | None = None,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=5)
        self._filters = [f"{RECORDS_PREFIX}.{check_site(s)}.>" for s in sites] if sites else None
        self._sink = sink
        self._stream = stream
        self.partition = durable
        self.durable = ""  # this process's consumer, made by setup()
        self._batch = batch
        self._pull_size = max(1, batch // BATCH_RECORDS)  # messages per pull, until a batch shows their size
        self._ack_wait_s = ack_wait_s
        self._fetch_wait_s = fetch_wait_s
        self._sub: Subscription | None = None
        self._buffer: list[Msg] = []  # delivered to this consumer, not yet handed out by fetch()
        self._arrived = asyncio.Event()
        self._wake_after = 0  # fetch() waits for this many more deliveries (or a status) from its pull
        self._next_delivery = 1  # the consumer sequence the next delivery must have (none lost on the way)
        self._reconnects = 0
        self._taken_over = False
        self._unanswered = False
        self._replacing = asyncio.Lock()  # held by setup(): pending() never names a consumer being deleted
        self.applied = 0  # envelopes handed to the sink and acknowledged (redeliveries included)
        self.malformed = 0

    async def setup(self) -> None:
        """A new consumer for the partition, starting after the ack floor of the ones before it (a killed
        process's, or this process's own before a reconnect), which it then deletes. Whatever they had
        delivered without an ack comes again, and the sink drops what it already holds."""
        async with self._replacing:
            await self._replace_consumer()

    async def _replace_consumer(self) -> None:
        before = [c for c in await self._consumers() if self._serves_partition(c)]
        floor = min((self._floor(c) for c in before), default=0)
        name = f"{self.partition}-{uuid.uuid4().hex[:12]}"
        await self._js.add_consumer(
            self._stream,
            api.ConsumerConfig(
                durable_name=name,
                ack_policy=api.AckPolicy.ALL,
                ack_wait=self._ack_wait_s,
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE if floor else api.DeliverPolicy.ALL,
                opt_start_seq=floor + 1 if floor else None,
                max_ack_pending=4 * self._batch,
                max_waiting=4,
                filter_subjects=self._filters,
                metadata={PARTITION_KEY: self.partition},
            ),
        )
        # The new consumer's inbox first, then the switch with no await in it: a pull or a pending() names
        # the new consumer with its inbox, and what the old one still sends (its deliveries, the status
        # `Consumer Deleted` for a pull in flight) arrives on an inbox no longer ours and is dropped.
        subject = self._nc.new_inbox()
        inbox = await self._nc.subscribe(
            subject, cb=functools.partial(self._on_delivery, subject), pending_msgs_limit=0, pending_bytes_limit=0
        )
        replaced, self._sub = self._sub, inbox
        self.durable = name
        self._buffer = []
        self._next_delivery = 1
        self._reconnects = self._nc.stats["reconnects"]
        self._taken_over = False
        for old in before:
            with contextlib.suppress(NotFoundError):  # another process deleted it first
                await self._js.delete_consumer(self._stream, old.name)
        if replaced is not None:
            await replaced.unsubscribe()

    async def _consumers(self) -> list[api.ConsumerInfo]:
        found: list[api.ConsumerInfo] = []
        while True:
            page = await self._js.consumers_info(self._stream, offset=len(found) or None)
            found += page
            if len(page) < 256:
                return found

    def _floor(self, info: api.ConsumerInfo) -> int:
        """The stream sequence up to which `info` acknowledged everything of this partition; 0 if it filtered
        other subjects (it never saw some of ours: start from the beginning, the sink drops the copies)."""
        config = info.config or api.ConsumerConfig()
        theirs = config.filter_subjects or ([config.filter_subject] if config.filter_subject else [])
        if sorted(theirs) != sorted(self._filters or []):
            return 0
        return info.ack_floor.stream_seq if info.ack_floor else 0

    def _serves_partition(self, info: api.ConsumerInfo) -> bool:
        metadata = (info.config.metadata if info.config else None) or {}
        # By name: a consumer made before consumers were per process.
        return info.name == self.partition or metadata.get(PARTITION_KEY) == self.partition

    async def _on_delivery(self, inbox: str, msg: Msg) -> None:
        if self._sub is None or inbox != self._sub.subject:
            return  # sent by a consumer this process replaced: the new one delivers its records again
        if msg.reply:  # a message of the stream (its ack subject); a status (no reply) ends a pull
            self._buffer.append(msg)
            self._wake_after -= 1
            if self._wake_after > 0:
                return
        else:
            headers = msg.headers or {}
            self._taken_over |= "Consumer Deleted" in headers.get("Description", "")
            self._unanswered |= headers.get("Status") == "503"  # no such consumer, or the hub is starting
        self._arrived.set()

    async def _pull(self, no_wait: bool) -> None:
        """One pull request to this process's inbox: no_wait answers at once with what is there; otherwise
        the server holds the request up to `fetch_wait_s` and we wake on the first record."""
        request: dict[str, object] = {"batch": self._pull_size}
        if no_wait:
            request["no_wait"] = True
        else:
            request["expires"] = int(self._fetch_wait_s * 1e9)
        self._wake_after = self._pull_size if no_wait else 1
        self._unanswered = False
        self._arrived.clear()
        assert self._sub is not None, "setup() first"
        await self._nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self.durable}",
            json.dumps(request).encode(),
            reply=self._sub.subject,
        )
        with contextlib.suppress(TimeoutError):  # nothing came: fetch() returns what there is
            await asyncio.wait_for(self._arrived.wait(), self._fetch_wait_s + 1.0)

    async def fetch(self) -> list[Msg]:
        """Up to `batch` delivered messages, in delivery order ([] if none came within `fetch_wait_s`)."""
        if not self._buffer:
            await self._pull(no_wait=True)
        if not self._buffer:
            await self._pull(no_wait=False)
        if self._unanswered and not self._buffer:
            try:
                await self._js.consumer_info(self._stream, self.durable)
            except NotFoundError:
                self._taken_over = True
            else:
                raise RuntimeError(f"no answer to a pull from consumer {self.durable}")
        if self._taken_over:
            raise ConsumerTakenOver(f"consumer {self.durable} of partition {self.partition} was deleted")
        taken, self._buffer = self._buffer[: self._pull_size], self._buffer[self._pull_size :]
        return taken

    async def apply(self, msgs: list[Msg]) -> int:
        """Hand a fetched batch to the sink (retrying while it refuses), then acknowledge it."""
        if not msgs:
            return 0
        envelopes = []
        for msg in msgs:
            try:
                envelopes += message_records(msg.subject, msg.headers, msg.data)
            except EnvelopeError as exc:  # kept in the centre stream, never handed on
                self.malformed += 1
                log.error("centre stream seq %s is not a record: %s", msg.metadata.sequence.stream, exc)
        self._pull_size = max(1, self._batch * len(msgs) // max(1, len(envelopes)))
        delay = 0.05
        while True:
            try:
                await asyncio.to_thread(self._sink.apply, envelopes)
                break
            except Exception as exc:
                log.warning("register refused a batch of %d, retrying in %.2f s: %s", len(envelopes), delay, exc)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 2.0)
        await self._ack(msgs)
        self.applied += len(envelopes)
        return len(envelopes)

    async def _ack(self, msgs: list[Msg]) -> None:
        """One AckAll on the batch's last delivery, if every delivery of this consumer so far reached this
        process (consumer sequences without a gap, no reconnect since setup). Otherwise no ack at all and a
        new consumer from the ack floor: the unacknowledged messages come again."""
        if msgs[0].metadata.consumer != self.durable:
            return  # fetched before this process replaced its consumer: the new one delivers them again
        first, last = msgs[0].metadata.sequence.consumer, msgs[-1].metadata.sequence.consumer
        reconnected = self._nc.stats["reconnects"] != self._reconnects
        if first != self._next_delivery or last - first + 1 != len(msgs) or reconnected:
            log.warning(
                "centre consumer %s: deliveries %d..%d after %d (reconnected: %s); starting a new consumer",
                self.durable, first, last, self._next_delivery - 1, reconnected,
            )
            await self.setup()
            return
        await msgs[-1].ack_sync(timeout=10)
        self._next_delivery = last + 1

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: a failed fetch or ack (the hub restarting) is logged and the loop goes on; what was
        not acknowledged comes back (after `ack_wait`, or to the next consumer) and the sink drops what it
        already holds. Ends when another process took the partition over."""
        next_batch = asyncio.ensure_future(self.fetch())
        try:
            while not stop.is_set():
                try:
                    msgs = await next_batch
                except ConsumerTakenOver as exc:
                    log.error("%s: another centre consumer serves this partition now; stopping", exc)
                    return
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
        async with self._replacing:
            info = await self._js.consumer_info(self._stream, self.durable)
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
            self.link.nc,
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

    @property
    def consuming(self) -> bool:
        """False once the consumer stopped (closed, or another process took its partition over)."""
        return not self._task.done()

    def wait_drained(self, timeout_s: float = 30.0) -> bool:
        """Until no source lags and the consumer has nothing pending (tests, shutdown, the backlog bench)."""

        async def drained() -> bool:
            deadline = asyncio.get_running_loop().time() + timeout_s
            while asyncio.get_running_loop().time() < deadline:
                try:
                    states = [
                        s
                        for s in await source_states(self.link.nc, self._stream)
                        if self._consume is None or s.site in self._consume
                    ]
                    if all(s.behind == 0 for s in states) and await self.consumer.pending() == 0:
                        return True
                except (NatsTimeoutError, ServiceUnavailableError) as exc:  # the hub restarting: ask again
                    log.info("centre not answering yet: %s", exc)
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

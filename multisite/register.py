"""The register, from the centre to the edges: compiled snapshots, changes that must apply at once, and the
proof of how recent the edge's knowledge is.

Centre (`CentreRegister`): each site has its own buckets, so that the hub lets a site's leaf read only its own
(`servers.leaf_permissions`): its compiled snapshots (which hold its people's password hashes) go into the Object
Store bucket `register_snapshots_<site>` as `<site>/<version>`; its KV bucket `register_<site>` holds
`head.<site>` (the current version, its compiled-at time, size and SHA-256), the changes that must apply at once
(`change.<scope>.<kind>.<subject>`, scope the site or `all`: a revoked badge, a new approval; an `all` change is
put into every site's bucket) and `beat`, the centre's clock, put every second into every site's bucket (in the
same stream as the site's changes, so the order below holds).

Edge (`EdgeRegister`): the leaf server keeps a mirror of its site's KV stream in the site's own domain
(same bucket name, so the KV API reads it locally), and the edge keeps the snapshot it decides from in a file
written atomically. Both outlive a restart with the centre away: the edge starts and decides from them.

A mirror copies in order, so once the edge has seen a beat stamped T it has every change the centre put
before T. `unknown_for_s` (now minus the last beat) is therefore the window in which a revocation made at
the centre may not be known at the edge; the engine refuses exits when it exceeds the site's limit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.kv import KeyValue

from multisite.envelope import KIND_RE, check_site, register_bucket, site_api, site_inbox, snapshot_bucket
from multisite.link import Link
from multisite.servers import CENTRE_DOMAIN, deliver_prefix
from multisite.sourcing import ORIGIN_ASK_S, ensure_copy

log = logging.getLogger(__name__)
T = TypeVar("T")
BEAT = "beat"
ALL = "all"
SUBJECT_TOKEN_MAX = 120
QUIET_S = 5  # seconds without a beat before the edge starts its watch again (the centre beats every second)


def now_us() -> int:
    return time.time_ns() // 1000


class RegisterError(RuntimeError):
    """A snapshot that cannot be fetched or does not match its head; a change that cannot be named."""


@dataclass(frozen=True, slots=True)
class SnapshotHead:
    """Which snapshot a site should decide from. version: increasing (the register's journal position);
    compiled_at_us: the register's state it reflects (centre clock)."""

    site: str
    version: int
    compiled_at_us: int
    size: int
    sha256: str

    @property
    def object_name(self) -> str:
        return f"{self.site}/{self.version}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    head: SnapshotHead
    blob: bytes


@dataclass(frozen=True, slots=True)
class RegisterChange:
    """A change that must apply at once, before the next snapshot: kind e.g. "badge_revoked" or
    "approval_granted"; subject the badge number or approval id; scope a site or "all". It states a fact,
    so applying it twice changes nothing; at_us (centre clock) orders it against snapshots: a snapshot
    compiled at or after at_us already contains it."""

    scope: str
    kind: str
    subject: str
    at_us: int
    body: bytes = b""

    @property
    def key(self) -> str:
        return f"change.{self.scope}.{self.kind}.{self.subject}"

    def encode(self) -> bytes:
        fields = asdict(self)
        fields["body"] = base64.b64encode(self.body).decode()
        return json.dumps(fields).encode()

    @classmethod
    def decode(cls, data: bytes) -> RegisterChange:
        fields = json.loads(data)
        fields["body"] = base64.b64decode(fields["body"])
        return cls(**fields)

    def check(self) -> RegisterChange:
        if self.scope != ALL:
            check_site(self.scope)
        if not KIND_RE.match(self.kind) or "." in self.kind:
            raise RegisterError(f"change kind {self.kind!r}: one lower-case token")
        if not self.subject or len(self.subject) > SUBJECT_TOKEN_MAX or not all(
            c.isalnum() or c in "-_=" for c in self.subject
        ):
            raise RegisterError(f"change subject {self.subject!r}: letters, digits, '-', '_', '='")
        return self


@dataclass(frozen=True, slots=True)
class SnapshotStatus:
    """What the edge decides from, and how far it can trust it (seconds, edge clock minus centre stamps).

    version / compiled_at_us: the snapshot in use (0 / 0: none yet). age_s: since it was compiled.
    synced_at_us: the centre's last beat the edge has seen (0: never). unknown_for_s: since that beat: the
    window in which a change made at the centre may be unknown here (inf: never synced). newest_version:
    the newest head the edge has heard of; above `version` while its snapshot is still being fetched."""

    version: int
    compiled_at_us: int
    age_s: float
    synced_at_us: int
    unknown_for_s: float
    newest_version: int


# ---- centre ----
class RegisterPublisher:
    """Centre side, async: puts snapshots, heads, changes and beats, each into its site's buckets. The sites are
    those given, and any site a snapshot or change is published for (its buckets are made then)."""

    def __init__(self, js: JetStreamContext, clock: Callable[[], int] = now_us, sites: Iterable[str] = ()) -> None:
        self._js = js
        self._clock = clock
        self._sites = [check_site(s) for s in sites]
        self._kv: dict[str, KeyValue] = {}
        self._all: dict[str, RegisterChange] = {}  # the `all` changes put so far, for a site's bucket made later

    async def setup(self) -> None:
        for site in self._sites:
            await self._site_kv(site)

    async def _site_kv(self, site: str) -> KeyValue:
        """The site's KV bucket, and its snapshot bucket, made if missing. A bucket made now gets the `all` changes
        put so far, then a beat: its edge never sees a beat before changes it does not have, nor waits for one."""
        kv = self._kv.get(check_site(site))
        if kv is None:
            try:
                kv = await self._js.key_value(register_bucket(site))
            except BucketNotFoundError:
                kv = await self._js.create_key_value(api.KeyValueConfig(bucket=register_bucket(site), history=1))
                for change in list(self._all.values()):
                    await kv.put(change.key, change.encode())
                await kv.put(BEAT, str(self._clock()).encode())
            try:
                await self._js.object_store(snapshot_bucket(site))
            except (BucketNotFoundError, NotFoundError):
                await self._js.create_object_store(snapshot_bucket(site))
            self._kv[site] = kv
        return kv

    async def publish_snapshot(self, site: str, version: int, compiled_at_us: int, blob: bytes) -> SnapshotHead:
        """Store the snapshot, then point the site's head at it (an edge never sees a head without its
        object). Versions must increase; edges ignore a head that is not newer than what they hold."""
        head = SnapshotHead(check_site(site), version, compiled_at_us, len(blob), hashlib.sha256(blob).hexdigest())
        kv = await self._site_kv(site)
        store = await self._js.object_store(snapshot_bucket(site))
        await store.put(head.object_name, blob)
        await kv.put(f"head.{site}", json.dumps(asdict(head)).encode())
        return head

    async def put_change(self, change: RegisterChange) -> None:
        """Into its site's bucket; a change for `all` into every site's."""
        change.check()
        if change.scope == ALL:
            self._all[change.key] = change
        sites = list(self._kv) if change.scope == ALL else [change.scope]
        for site in sites:
            await (await self._site_kv(site)).put(change.key, change.encode())

    async def beat(self) -> int:
        at = self._clock()
        for kv in list(self._kv.values()):
            await kv.put(BEAT, str(at).encode())
        return at


class CentreRegister:
    """The register's publishing side for threaded callers, beating every `beat_s` on its loop thread."""

    def __init__(self, url: str, *, sites: Iterable[str] = (), beat_s: float = 1.0,
                 clock: Callable[[], int] = now_us) -> None:
        self.link = Link(url, "centre-register")
        self._publisher = RegisterPublisher(self.link.js(), clock, sites)
        self._beat_s = beat_s
        try:
            self.link.run(self._publisher.setup())
        except BaseException:
            self.link.close()
            raise
        self._beating = self.link.loop.spawn(self._beat_forever()) if beat_s > 0 else None

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self._publisher.beat()
            except Exception as exc:  # the hub restarting: the edges' unknown window grows, which is the truth
                log.warning("register beat failed: %s", exc)
            await asyncio.sleep(self._beat_s)

    def publish_snapshot(self, site: str, version: int, compiled_at_us: int, blob: bytes) -> SnapshotHead:
        return self.link.run(self._publisher.publish_snapshot(site, version, compiled_at_us, blob))

    def put_change(self, change: RegisterChange) -> None:
        self.link.run(self._publisher.put_change(change))

    def beat(self) -> int:
        return self.link.run(self._publisher.beat())

    def close(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
        self.link.close()

    def __enter__(self) -> CentreRegister:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- edge ----
async def ensure_register_mirror(nc: Client, site: str, centre_domain: str = CENTRE_DOMAIN) -> bool:
    """The site's register KV stream mirrored into the local domain under the same name (nats-py's KeyValueConfig
    has no mirror field, so the stream is made directly), once the centre's stream answers (see `sourcing`);
    False while it does not (ask again later)."""
    stream = f"KV_{register_bucket(site)}"
    config = api.StreamConfig(
        name=stream,
        mirror=api.StreamSource(name=stream, external=api.ExternalStream(api=site_api(centre_domain),
                                                                        deliver=deliver_prefix(site))),
        storage=api.StorageType.FILE,
        max_msgs_per_subject=1,
        allow_rollup_hdrs=True,
        deny_delete=True,
        discard=api.DiscardPolicy.OLD,
    )
    centre = nc.jetstream(domain=centre_domain, timeout=ORIGIN_ASK_S)
    return await ensure_copy(nc.jetstream(timeout=5), centre, stream, config)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotCache:
    """The snapshot the edge decides from, on disk: `snapshot.bin` then `snapshot.json` (its head), each
    replaced atomically; a blob that does not match its head's SHA-256 is not used."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._blob = directory / "snapshot.bin"
        self._head = directory / "snapshot.json"

    def load(self) -> Snapshot | None:
        try:
            head = SnapshotHead(**json.loads(self._head.read_text(encoding="utf-8")))
            blob = self._blob.read_bytes()
        except (OSError, ValueError, TypeError):
            return None
        if hashlib.sha256(blob).hexdigest() != head.sha256:
            log.error("snapshot cache in %s does not match its head: not used", self.directory)
            return None
        return Snapshot(head, blob)

    def store(self, snapshot: Snapshot) -> None:
        _write_atomically(self._blob, snapshot.blob)
        _write_atomically(self._head, json.dumps(asdict(snapshot.head)).encode())


class RegisterFollower:
    """Edge side, async: follows the local mirror, fetches new snapshots from the centre's Object Store
    (across the leaf link), keeps them in the cache, and calls back on the loop thread."""

    def __init__(
        self,
        nc: Client,
        site: str,
        cache: SnapshotCache,
        *,
        centre_domain: str = CENTRE_DOMAIN,
        on_snapshot: Callable[[Snapshot], None] | None = None,
        on_change: Callable[[RegisterChange], None] | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.site = check_site(site)
        self._nc = nc
        self._local = nc.jetstream(timeout=5)
        self._centre = nc.jetstream(domain=centre_domain, timeout=10)
        self._centre_domain = centre_domain
        self._cache = cache
        self._on_snapshot = on_snapshot or (lambda s: None)
        self._on_change = on_change or (lambda c: None)
        self._clock = clock
        self.snapshot: Snapshot | None = cache.load()
        self.changes: dict[str, RegisterChange] = {}
        self.synced_at_us = 0
        self.newest_head: SnapshotHead | None = self.snapshot.head if self.snapshot else None
        self.initial_done = asyncio.Event()  # the mirror's current content has been read once
        self.mirrored = False  # the local mirror is made (an edge that never reached the centre waits for it)

    async def setup(self) -> None:
        self.mirrored = await ensure_register_mirror(self._nc, self.site, self._centre_domain)
        if self.snapshot is not None:
            self._on_snapshot(self.snapshot)

    def status(self) -> SnapshotStatus:
        now = self._clock()
        head = self.snapshot.head if self.snapshot else None
        return SnapshotStatus(
            version=head.version if head else 0,
            compiled_at_us=head.compiled_at_us if head else 0,
            age_s=(now - head.compiled_at_us) / 1e6 if head else float("inf"),
            synced_at_us=self.synced_at_us,
            unknown_for_s=(now - self.synced_at_us) / 1e6 if self.synced_at_us else float("inf"),
            newest_version=self.newest_head.version if self.newest_head else 0,
        )

    def pending_changes(self) -> list[RegisterChange]:
        """Changes the current snapshot does not contain yet (all of them when there is no snapshot)."""
        since = self.snapshot.head.compiled_at_us if self.snapshot else -1
        return sorted((c for c in self.changes.values() if c.at_us >= since), key=lambda c: c.at_us)

    async def run(self) -> None:
        """Watch the mirror for ever; a watch that fails or goes quiet for QUIET_S (the leaf restarting) is started
        again, and what it re-reads is applied idempotently. The mirror is made first, once the centre answers."""
        while not self.mirrored:
            self.initial_done.set()  # no mirror yet: nothing to read, and what the edge knows is what it has
            try:
                self.mirrored = await ensure_register_mirror(self._nc, self.site, self._centre_domain)
            except Exception as exc:  # the leaf restarting
                log.warning("register mirror at %s not made yet: %s", self.site, exc)
            if not self.mirrored:
                await asyncio.sleep(0.5)
        while True:
            try:
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("register watch at %s restarting: %s", self.site, exc)
                await asyncio.sleep(0.5)

    async def _watch(self) -> None:
        kv = await self._local.key_value(register_bucket(self.site))
        watcher = await kv.watch(">")
        quiet = 0
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=1.0)
                    quiet = 0
                except TimeoutError:
                    await self._retry_fetch()
                    quiet += 1
                    if quiet == QUIET_S:  # no beat: cut off, or the watch was lost with a restarted leaf
                        return
                    continue
                if entry is None:
                    self.initial_done.set()
                    continue
                await self._apply(entry.key, entry.value or b"", entry.operation)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def _apply(self, key: str, value: bytes, operation: str | None) -> None:
        if operation in ("DEL", "PURGE"):
            self.changes.pop(key, None)
            return
        if key == BEAT:
            self.synced_at_us = max(self.synced_at_us, int(value))
            await self._retry_fetch()  # a head whose object could not be fetched yet (the link dropped between)
        elif key == f"head.{self.site}":
            head = SnapshotHead(**json.loads(value))
            if self.newest_head is None or head.version > self.newest_head.version:
                self.newest_head = head
            await self._retry_fetch()
        elif key.startswith((f"change.{self.site}.", f"change.{ALL}.")):
            change = RegisterChange.decode(value)
            if self.changes.get(key) != change:
                self.changes[key] = change
                self._on_change(change)

    async def _retry_fetch(self) -> None:
        head = self.newest_head
        if head is None or (self.snapshot is not None and self.snapshot.head.version >= head.version):
            return
        try:
            snapshot = await self.fetch(head)
        except Exception as exc:  # the link went down between head and object: the next beat or timeout retries
            log.warning("snapshot %s not fetched yet: %s", head.object_name, exc)
            return
        self._cache.store(snapshot)
        self.snapshot = snapshot
        self._on_snapshot(snapshot)

    async def fetch(self, head: SnapshotHead) -> Snapshot:
        try:
            store = await self._centre.object_store(snapshot_bucket(self.site))
            result = await store.get(head.object_name)
        except ObjectNotFoundError as exc:
            raise RegisterError(f"snapshot {head.object_name} is not in the centre's store") from exc
        blob = bytes(result.data or b"")
        if hashlib.sha256(blob).hexdigest() != head.sha256:
            raise RegisterError(f"snapshot {head.object_name} does not match its head's SHA-256")
        return Snapshot(replace(head), blob)

    async def value(self, key: str) -> bytes | None:
        """A key of the local mirror (tests, diagnostics)."""
        kv = await self._local.key_value(register_bucket(self.site))
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        return entry.value


class EdgeRegister:
    """The edge's register for threaded callers. Callbacks run on the loop thread: keep them short (swap a
    snapshot into the engine under its lock, apply a change)."""

    def __init__(
        self,
        url: str,
        site: str,
        cache_dir: Path,
        *,
        centre_domain: str = CENTRE_DOMAIN,
        on_snapshot: Callable[[Snapshot], None] | None = None,
        on_change: Callable[[RegisterChange], None] | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.link = Link(url, f"edge-register-{site}", inbox_prefix=site_inbox(site))
        self.follower = RegisterFollower(
            self.link.nc,
            site,
            SnapshotCache(cache_dir),
            centre_domain=centre_domain,
            on_snapshot=on_snapshot,
            on_change=on_change,
            clock=clock,
        )
        try:
            self.link.run(self.follower.setup())
        except BaseException:
            self.link.close()
            raise
        self._running = self.link.loop.spawn(self.follower.run())

    @property
    def snapshot(self) -> Snapshot | None:
        return self.follower.snapshot

    def status(self) -> SnapshotStatus:
        return self.link.run(_call(self.follower.status))

    def pending_changes(self) -> list[RegisterChange]:
        return self.link.run(_call(self.follower.pending_changes))

    def changes(self) -> list[RegisterChange]:
        """Every change the edge knows of, in the order the centre made them."""
        return self.link.run(_call(lambda: sorted(self.follower.changes.values(), key=lambda c: c.at_us)))

    def wait_initial(self, timeout_s: float = 10.0) -> bool:
        """Until the mirror's current content (as the leaf holds it) has been read once."""

        async def wait() -> bool:
            try:
                await asyncio.wait_for(self.follower.initial_done.wait(), timeout_s)
                return True
            except TimeoutError:
                return False

        return self.link.run(wait(), timeout_s + 5)

    def close(self) -> None:
        self._running.cancel()
        self.link.close()

    def __enter__(self) -> EdgeRegister:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _call(fn: Callable[[], T]) -> T:
    return fn()

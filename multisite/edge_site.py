"""`custodian edge SITE.toml`: a site's runtime (drivers, engine, controllers) beside its own leaf
nats-server, deciding from the last register snapshot the centre sent, whether the centre is there or not.

Records: the recorder makes each accepted record durable in its local log (one fdatasync per tick) before a
door acts, as on a single site; the `LogShipper` then publishes the log to the site stream on the leaf with
`Nats-Msg-Id` = the record id, and a record counts as delivered once the leaf acknowledged it. The local log
stays the durable-before-strike step (see the notes: an in-process fdatasync is faster than a JetStream
round trip with fsync, and a door keeps deciding while the leaf server restarts).

Register: the centre publishes the register's rows (`replica`) as snapshots; the edge keeps the newest in
its snapshot cache and loads it into its local register (SQLite), from which the engine is compiled. The
local register also takes the edge's own records (approval uses, movements), so between snapshots and
during a cut the engine and the local register agree. A snapshot is loaded only once it holds every record
with effects this edge accepted, else it would give back an approval use made here.

Age: the edge's knowledge is as old as the loaded snapshot, or, while that is the newest the centre has,
as old as the centre's last beat the edge heard. Past `snapshot_max_age_s` exits are restricted (no item
may leave, reason `snapshot_too_old`), an alarm is raised and recorded; a fresh snapshot lifts it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus, LiveKind, Severity
from controllers.control import AlarmConflict, OverrideOutcome, UnknownAlarm
from controllers.recorder import node_identity
from controllers.records import AlarmRaised, DeviceHealthChanged
from custodian.wiring import RunningSite, start_site
from multisite.commands import (
    ALARM_ACK,
    ALARM_RESOLVE,
    RESOLVE_NOTE_MIN,
    Command,
    CommandOutcome,
    EdgeCommands,
    EdgeOverrides,
    OverrideRequest,
)
from multisite.edge import SyncEdgePublisher
from multisite.envelope import check_site
from multisite.register import EdgeRegister, Snapshot, now_us
from multisite.replica import RegisterReplica, ReplicaError, load_replica
from multisite.servers import CENTRE_DOMAIN, LEAF_PASSWORD_ENV, LeafLogin, LinkTls, NatsServer, kept_ports
from multisite.shipping import SHIPPER, LogShipper
from registry import db
from registry.errors import NotFound
from registry.services import lookup

log = logging.getLogger(__name__)
AGE_ALARM = "snapshot_too_old"


@dataclass(frozen=True)
class EdgeOptions:
    """site: the site's code (its JetStream domain, part of record ids). hub: host:port of the centre's leaf
    listener (or of a link in between). snapshot_max_age_s: the site's limit on how old its knowledge of the
    register may be before exits are restricted. nats_port: the leaf's client port (0: chosen once, kept)."""

    site: str
    state: Path
    hub: str
    snapshot_max_age_s: float = 300.0
    simulate: bool = False
    backend: str = "numba"
    nats_port: int = 0
    centre_domain: str = CENTRE_DOMAIN
    first_snapshot_wait_s: float = 600.0
    leaf_password: str = ""  # its sign-in at the hub (the centre's leaf-logins.json); "": $CUSTODIAN_LEAF_PASSWORD
    link_tls: LinkTls | None = None  # the leaf link over mutual TLS: the site's client certificate, the hub's CA


class EdgeError(RuntimeError):
    """The edge cannot start: it has never received a register snapshot and the centre did not send one."""


class EdgeSite:
    def __init__(self, options: EdgeOptions) -> None:
        self.options = options
        self.site = check_site(options.site)
        host, _, hub_port = options.hub.rpartition(":")
        if not hub_port.isdigit() or not 0 < int(hub_port) < 65536:
            raise EdgeError(f"hub {options.hub!r}: expected HOST:PORT of the centre's leaf-node listener")
        if host not in ("127.0.0.1", "localhost", ""):
            raise EdgeError(f"hub {options.hub}: this build dials a hub on loopback only")
        options.state.mkdir(parents=True, exist_ok=True)
        ports = kept_ports(options.state / "nats-ports.json", {"port": options.nats_port, "http": 0})
        password = options.leaf_password or os.environ.get(LEAF_PASSWORD_ENV, "")
        self.leaf = NatsServer(
            f"leaf-{self.site}", options.state / "nats", self.site, remote_port=int(hub_port),
            sync_always=True, port=ports["port"], http_port=ports["http"],
            leaf_login=LeafLogin(self.site, password) if password else None, leaf_tls=options.link_tls,
        )
        self.bus = LiveBus()
        self.db_engine = db.make_engine(f"sqlite:///{(options.state / 'register.db').resolve()}")
        self.factory: sessionmaker[Session] = db.session_factory(self.db_engine)
        self.identity = node_identity(options.state / "spool", self.site)
        self._version_path = options.state / "register-version.json"
        self.loaded = self._read_loaded()  # (version, compiled_at_us) of the snapshot in the local register
        self._pending: RegisterReplica | None = None
        self._unapplied_since_us = 0  # compiled-at of the oldest snapshot received and not loaded yet
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.restricted = False
        self.linked: bool | None = None  # the leaf's link to the hub, as last seen (None: not looked yet)
        self.running: RunningSite | None = None
        self.register: EdgeRegister | None = None
        self.publisher: SyncEdgePublisher | None = None
        self.shipper: LogShipper | None = None
        self.commands: EdgeCommands | None = None  # acknowledgements from the centre's guards
        self.overrides: EdgeOverrides | None = None  # overrides from the centre's guards, live only
        self._threads: list[threading.Thread] = []
        self.deferred = 0  # snapshots that waited for the centre to hold this edge's own records

    # ---- lifecycle ----
    def start(self) -> EdgeSite:
        db.upgrade(self.db_engine)
        self.leaf.start()
        try:
            self.publisher = SyncEdgePublisher(self.leaf.url, self.site, ack_timeout_s=5.0)
            self.register = EdgeRegister(
                self.leaf.url, self.site, self.options.state / "snapshot",
                centre_domain=self.options.centre_domain, on_snapshot=self._on_snapshot,
            )
            if self.loaded[0] == 0:
                self._first_snapshot()
            self.running = start_site(
                self.factory, self.bus, self.options.state, simulate=self.options.simulate,
                backend=self.options.backend, record_consumers=(SHIPPER,),
            )
            self._check_age()  # before the first card: a start on an old snapshot restricts at once
            recorder = self.running.runtime.recorder
            self.shipper = LogShipper(recorder.log.cursor(SHIPPER), self.identity, self.publisher, log=recorder.log)
            self.shipper.start()
            self.commands = EdgeCommands(self.leaf.url, self.site, self._command,
                                         centre_domain=self.options.centre_domain)
            self.overrides = EdgeOverrides(self.leaf.url, self.site, self._override)
            for target, name in ((self._apply_loop, "edge-snapshots"), (self._age_loop, "edge-age")):
                thread = threading.Thread(target=target, name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
            self._wake.set()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> int:
        """Stop deciding, ship what the leaf takes, stop. Returns the records not yet in the site stream
        (kept in the local log; the next start ships them)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(10)
        try:
            for guard_link in (self.overrides, self.commands):  # no centre command reaches a stopping site
                if guard_link is not None:
                    guard_link.close()
            if self.running is not None:
                self.running.stop()
            left = self.shipper.stop() if self.shipper is not None else 0
            for closing in (self.register, self.publisher):
                if closing is not None:
                    closing.close()
        finally:  # whatever failed above, the leaf server does not outlive the edge
            self.leaf.stop()
            self.db_engine.dispose()
        return left

    def _first_snapshot(self) -> None:
        """Never had a register: nothing to decide from (failing open is not an option), so wait for it."""
        deadline = time.monotonic() + self.options.first_snapshot_wait_s
        log.warning("%s has no register snapshot yet: waiting for the centre", self.site)
        while self.loaded[0] == 0:
            if time.monotonic() > deadline or self._stop.is_set():
                raise EdgeError(f"{self.site}: no register snapshot from the centre within "
                                f"{self.options.first_snapshot_wait_s:g} s, and none kept locally")
            self._load_pending(before_start=True)
            time.sleep(0.05)

    # ---- the centre's guards ----
    def _command(self, command: Command, redelivered: bool) -> CommandOutcome:
        """An acknowledgement or a resolution from a guard at the centre, taken by this site's book as a local one
        and by its rules: the sender must be an active guard in this site's register, a resolution needs a note
        and an acknowledged alarm. Applying one twice is refused as already done, so a redelivery changes
        nothing."""
        assert self.running is not None
        if command.kind not in (ALARM_ACK, ALARM_RESOLVE):
            return CommandOutcome(False, f"this edge takes no {command.kind} command")
        try:
            body = json.loads(command.body)
            alarm_id, note = int(body["alarm_id"]), str(body.get("note", "")).strip()
        except (ValueError, TypeError, KeyError) as exc:
            return CommandOutcome(False, f"unreadable {command.kind} command: {exc}")
        if not self._is_guard(command.issued_by):
            return CommandOutcome(False, f"{command.issued_by} is not an active guard in {self.site}'s register")
        runtime = self.running.runtime
        try:
            if command.kind == ALARM_ACK:
                alarm = runtime.acknowledge(alarm_id, command.issued_by, note)
                return CommandOutcome(True, f"alarm {alarm.alarm_id} acknowledged by {alarm.acknowledged_by} at the "
                                            "centre")
            if len(note) < RESOLVE_NOTE_MIN:
                return CommandOutcome(False, f"resolving alarm {alarm_id} needs a note saying what was done")
            alarm = runtime.resolve(alarm_id, command.issued_by, note)
        except (UnknownAlarm, AlarmConflict) as exc:
            return CommandOutcome(False, str(exc))
        return CommandOutcome(True, f"alarm {alarm.alarm_id} resolved by {alarm.resolved_by} at the centre")

    def _is_guard(self, username: str) -> bool:
        """Fail closed: a register that cannot be read, or a person it does not hold, is not a guard."""
        try:
            with self.factory() as session:
                person = lookup.person(session, username)
                return person.status == "active" and "guard" in person.role_names
        except (NotFound, DBAPIError):
            return False

    def _override(self, request: OverrideRequest) -> OverrideOutcome:
        """An override from a guard at the centre: the same password check and portal queue as a local one."""
        assert self.running is not None
        return self.running.runtime.override(
            request.portal, request.username, request.password, request.reason, alarm_id=request.alarm_id
        )

    # ---- snapshots ----
    def _read_loaded(self) -> tuple[int, int]:
        try:
            found = json.loads(self._version_path.read_text())
            return int(found["version"]), int(found["compiled_at_us"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0

    def _on_snapshot(self, snapshot: Snapshot) -> None:
        """On the register's loop thread: decode and hand over (loading takes longer than a callback may)."""
        if snapshot.head.version <= self.loaded[0]:
            return
        try:
            replica = RegisterReplica.decode(snapshot.blob)
        except ReplicaError as exc:
            log.error("snapshot %s not used: %s", snapshot.head.object_name, exc)
            return
        if replica.site != self.site:
            log.error("snapshot %s is for site %s, not %s: not used", snapshot.head.object_name, replica.site,
                      self.site)
            return
        with self._lock:
            if self._pending is None or replica.version > self._pending.version:
                self._pending = replica
            self._unapplied_since_us = self._unapplied_since_us or replica.compiled_at_us
        self._wake.set()

    def _apply_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._load_pending()
            except Exception:
                log.exception("snapshot not applied; keeping the current register")

    def _load_pending(self, *, before_start: bool = False) -> bool:
        with self._lock:
            replica = self._pending
        if replica is None or replica.version <= self.loaded[0]:
            return False
        if before_start:
            load_replica(self.factory, replica)
        else:
            assert self.running is not None
            runtime = self.running.runtime
            with runtime.portals.engine_lock:  # no door accepts a record with effects meanwhile
                if replica.applied_for(self.site, self.identity.node) < runtime.recorder.last_effect_seq:
                    self.deferred += 1
                    return False  # the next snapshot, after the centre wrote them, will do
                if not runtime.recorder.flush(2.0):
                    return False
                load_replica(self.factory, replica)
            while not runtime.reload(wait_s=2.0) and not self._stop.is_set():
                time.sleep(0.05)
        self._set_loaded(replica)
        with self._lock:
            if self._pending is replica:
                self._pending = None
                self._unapplied_since_us = 0
            else:  # a newer one came meanwhile: the register is known up to when that one was compiled
                self._unapplied_since_us = self._pending.compiled_at_us if self._pending else 0
        return True

    def _set_loaded(self, replica: RegisterReplica) -> None:
        self.loaded = (replica.version, replica.compiled_at_us)
        tmp = self._version_path.with_suffix(".tmp")
        with tmp.open("w") as f:
            f.write(json.dumps({"version": replica.version, "compiled_at_us": replica.compiled_at_us}))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self._version_path)

    # ---- age ----
    def knowledge_age_s(self) -> float:
        """How long a change made at the centre may be unknown to the engine here: since the oldest snapshot
        received and not loaded yet (the register is known up to just before it), else since the newest head
        heard of and not fetched, else since the centre's last beat (the mirror is in order: a beat stamped T
        means every head put before T has been seen)."""
        assert self.register is not None
        status = self.register.status()
        version, compiled = self.loaded
        if version == 0:
            return float("inf")
        now = now_us()
        with self._lock:
            unapplied = self._unapplied_since_us
        if unapplied:
            return (now - unapplied) / 1e6
        newest = self.register.follower.newest_head
        if newest is not None and newest.version > version:
            return (now - newest.compiled_at_us) / 1e6
        if status.synced_at_us >= compiled:
            return status.unknown_for_s
        return (now - compiled) / 1e6

    def _age_loop(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self._check_age()
                self._check_link()
            except Exception:
                log.exception("snapshot age check failed")

    def _check_link(self) -> None:
        """The guards see when the site is cut off from the centre, and how far behind the centre is."""
        assert self.running is not None and self.shipper is not None
        try:
            up = self.leaf.leaf_connections() > 0
        except OSError:
            up = False
        if up == self.linked:
            return
        self.linked = up
        backlog = self.shipper.backlog()
        detail = (f"link to the centre up; {backlog} records to ship" if up else
                  "LINK TO THE CENTRE DOWN: doors decide from the local register; records are kept at the edge")
        self.running.runtime.recorder.accept(
            [DeviceHealthChanged(device="centre-link", health="online" if up else "offline", reason=detail)]
        )
        self.bus.publish(LiveKind.HEALTH, Severity.INFO if up else Severity.WARNING, now_us(), "centre-link",
                         "centre link up" if up else "centre link down", (("detail", detail),))

    def _check_age(self) -> None:
        assert self.running is not None
        try:
            age = self.knowledge_age_s()
        except Exception as exc:  # the register's loop cannot answer: the age is unknown, so too old
            log.error("register status unavailable (%s): treating the snapshot as too old", exc)
            age = float("inf")
        restrict = age > self.options.snapshot_max_age_s
        if restrict == self.restricted:
            return
        self.running.runtime.engine.exits_restricted = restrict  # the door first: fail closed at once
        now = now_us()
        limit = self.options.snapshot_max_age_s
        recorder = self.running.runtime.recorder
        if restrict:
            detail = f"register snapshot {age:.0f} s old, limit {limit:g} s: items may not leave"
            recorder.accept([AlarmRaised(alarm=AGE_ALARM, source="site", detail=detail, time_us=now)])
            self.bus.publish(LiveKind.ALARM, Severity.CRITICAL, now, "register", "register snapshot too old",
                             (("detail", detail),))
        else:
            detail = f"register snapshot fresh again ({age:.1f} s): exits decided normally"
            recorder.accept([DeviceHealthChanged(device="register-snapshot", health="online", reason=detail)])
            self.bus.publish(LiveKind.HEALTH, Severity.INFO, now, "register", "register snapshot fresh",
                             (("detail", detail),))
        self.restricted = restrict  # last, so whoever sees it can also see the alarm and its record

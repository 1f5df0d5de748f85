"""`custodian centre`: the register of every site (PostgreSQL), the web pages over it, the hub nats-server,
the record path in (every site stream sourced into the centre stream, a durable consumer writing each
record into the register exactly once) and the register path out (a snapshot per site whenever the
register changes, and a beat every second).

Snapshots: a change to the register (any writer: the pages, the CLI, records from the edges) is seen within
`poll_s` and every site gets a new snapshot at most every `min_interval_s`; records written from an edge
also cause one (at most every `applied_interval_s`), so an edge that waits for a snapshot holding its own
records gets one even when they changed no topic of the register.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus, LiveKind, Severity
from controllers.outbox import Frame
from controllers.recorder import Identity
from controllers.records import (
    AlarmAcknowledged,
    AlarmRaised,
    AlarmResolved,
    ItemBroughtIn,
    ItemCrossed,
    PersonMoved,
)
from custodian.web import WebServer, serve_register
from multisite.centre import CentreIngest, SourceState
from multisite.centre_desk import SitesDesk
from multisite.commands import CentreCommands, CommandResult
from multisite.crosssite import CloneWatch, PlaceWatch, Presence, TagSighting, TwoPlaces
from multisite.envelope import check_site, site_stream
from multisite.register import CentreRegister, now_us
from multisite.replica import RegisterReplica, compile_replica
from multisite.servers import CENTRE_DOMAIN, LinkTls, NatsServer, kept_leaf_logins, kept_ports
from multisite.shipping import RegisterSink
from registry import changes, db, journal
from registry.models import Item, Person, PresenceEntry, Transfer, Venue
from registry.services import site_files
from registry.sitefile import SiteFileError, load

log = logging.getLogger(__name__)
ACTOR = "site-loader"
PLACE_KINDS = frozenset({ItemCrossed.KIND, ItemBroughtIn.KIND, PersonMoved.KIND})  # where things and people are
HEARD_MARGIN_US = 2_000_000  # a record accepted at an edge reaches the centre's stream within this when linked


@dataclass(frozen=True)
class CentreSiteFile:
    """A site the centre serves: its code (JetStream domain, record ids) and the devices it has."""

    code: str
    path: Path
    devices: frozenset[str]
    venues: frozenset[str] = frozenset()
    people: frozenset[str] = frozenset()  # usernames: its guards' password hashes go in its snapshots


def site_code(path: Path) -> str:
    """The site's code in record ids and stream names: its `[site] code`, else its name, as a slug."""
    from custodian.run import _site_name

    return check_site(_site_name(path)[:32].strip("-"))


def read_site_file(path: Path) -> CentreSiteFile:
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SiteFileError(f"{path}: {exc}") from exc
    names = frozenset(str(d.get("name", "")) for d in tables.get("devices", []))
    venues = frozenset(str(v.get("code", "")) for v in tables.get("venues", []))
    people = frozenset(str(p.get("username", "")) for p in tables.get("people", []))
    return CentreSiteFile(site_code(path), path, names, venues, people)


@dataclass(frozen=True)
class CentreOptions:
    db_url: str
    site_files: tuple[Path, ...]
    state: Path
    nats_port: int = 0
    leaf_port: int = 0
    web_port: int | None = None
    beat_s: float = 1.0
    poll_s: float = 0.1
    min_interval_s: float = 0.2
    applied_interval_s: float = 1.0
    site_distances_m: tuple[tuple[str, str, float], ...] = ()  # (site, site, metres): pairs checked for clones
    max_speed_m_per_s: float = 50.0  # door to door between sites, faster means a cloned tag
    link_tls: LinkTls | None = None  # leaf links over mutual TLS: the hub's certificate, the CA of the sites'


@dataclass
class SnapshotStats:
    published: int = 0
    last_version: int = 0
    last_at: float = 0.0
    seconds: list[float] = field(default_factory=list)  # time to compile and publish, per round


class CentreSite:
    def __init__(self, options: CentreOptions) -> None:
        self.options = options
        self.sites = {s.code: s for s in (read_site_file(p) for p in options.site_files)}
        if len(self.sites) != len(options.site_files):
            raise SiteFileError("two site files have the same site code")
        options.state.mkdir(parents=True, exist_ok=True)
        ports = kept_ports(
            options.state / "nats-ports.json", {"port": options.nats_port, "http": 0, "leaf": options.leaf_port}
        )
        self.leaf_logins = kept_leaf_logins(options.state / "leaf-logins.json", sorted(self.sites))
        self.hub = NatsServer(
            "hub", options.state / "nats", CENTRE_DOMAIN, leaf_port=ports["leaf"], port=ports["port"],
            http_port=ports["http"], leaf_logins=tuple(self.leaf_logins.values()), leaf_tls=options.link_tls,
        )
        self.db_engine = db.make_engine(options.db_url)
        self.factory: sessionmaker[Session] = db.session_factory(self.db_engine)
        self.bus = LiveBus()
        self.sink: RegisterSink | None = None
        self.ingest: CentreIngest | None = None
        self.register: CentreRegister | None = None
        self.commands: CentreCommands | None = None
        self.desk: SitesDesk | None = None
        self.web: WebServer | None = None
        self.stats = SnapshotStats()
        self.clones = CloneWatch(
            {frozenset((a, b)): metres for a, b, metres in options.site_distances_m}, options.max_speed_m_per_s
        )
        self.places = PlaceWatch()  # items and people by the site they are recorded at (set at start)
        self._places_lock = threading.Lock()  # records' thread and the site watcher's
        self.sourced: set[str] = set()
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self.site_states: dict[str, SourceState] = {}  # per site: how far the centre is behind (guard pages)

    @property
    def hub_leaf(self) -> str:
        return f"127.0.0.1:{self.hub.leaf_port}"

    def leaf_password(self, site: str) -> str:
        """What site `site`'s edge signs its leaf node in with (`EdgeOptions.leaf_password`)."""
        return self.leaf_logins[site].password

    def start(self) -> CentreSite:
        db.upgrade(self.db_engine)
        for message in self._load_site_files():
            log.warning("%s", message)
        self.places = PlaceWatch(self._places_now())
        self.hub.start()
        try:
            self.sink = RegisterSink(self.factory, on_written=self._live, on_result=self._command_result)
            self.register = CentreRegister(self.hub.url, sites=sorted(self.sites), beat_s=self.options.beat_s)
            self._publish()  # before the edges ask: an edge that never had a register waits for this
            self.ingest = CentreIngest(self.hub.url, self.sink, [])
            self.commands = CentreCommands(self.hub.url)
            for code in self.sites:
                self.commands.hello(code)
            self.desk = SitesDesk(self.factory, self.commands, frozenset(self.sites))
            self._thread = threading.Thread(target=self._snapshots, name="centre-snapshots", daemon=True)
            self._thread.start()
            self._watcher = threading.Thread(target=self._watch_sites, name="centre-sites", daemon=True)
            self._watcher.start()
            if self.options.web_port is not None:
                self.web = serve_register(self.factory, self.options.web_port, self.options.state, bus=self.bus,
                                          control=None, desk=self.desk)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        for thread in (self._thread, self._watcher):
            if thread is not None:
                thread.join(10)
        try:
            if self.web is not None:
                self.web.stop()
            for closing in (self.ingest, self.commands, self.register):
                if closing is not None:
                    closing.close()
        finally:  # a client that cannot close in time must not leave the hub running
            self.hub.stop()
            self.db_engine.dispose()

    def _load_site_files(self) -> list[str]:
        """Every site file into the register: whole into an empty register, else their configuration only
        (people, items and approvals are live state at the centre, as on a single site)."""
        with db.transaction(self.factory) as session:
            empty = site_files.register_is_empty(session)
        problems = []
        for site in self.sites.values():
            try:
                with db.transaction(self.factory) as session:
                    load(session, ACTOR, site.path, configuration_only=not empty)
                    mode = site_files.CONFIGURATION if not empty else site_files.FULL
                    site_files.loaded(session, ACTOR, site.path, site_files.digest(site.path), mode)
            except SiteFileError as exc:
                if empty:
                    raise
                problems.append(f"{site.path} not applied ({exc}); the register is used as it is")
        return problems

    def _watch_sites(self) -> None:
        """Sources each site once its stream exists; each site's link and backlog as the centre sees it, a
        site cut off or back being a live event here."""
        reachable: dict[str, bool] = {}
        while not self._stop.wait(0.5 if len(self.sourced) < len(self.sites) else 2.0):
            assert self.ingest is not None
            if len(self.sourced) < len(self.sites):
                self._source_new_sites()
            try:
                states = self.ingest.sources()
            except Exception as exc:
                log.warning("site states unavailable: %s", exc)
                continue
            self.site_states = {s.site: s for s in states}
            for state in states:  # a site with nothing left to send is heard up to now (less what is in flight)
                if state.behind == 0:
                    self._heard(state.site, now_us() - HEARD_MARGIN_US)
            for state in states:
                up = state.behind is not None
                if reachable.get(state.site, True) == up:
                    reachable[state.site] = up
                    continue
                reachable[state.site] = up
                heard = f"last heard {state.active_s:.0f} s ago" if state.active_s is not None else "never heard"
                detail = f"{state.behind} batches to drain" if up else f"{heard}; its records wait at the edge"
                self.bus.publish(LiveKind.HEALTH, Severity.INFO if up else Severity.WARNING, now_us(), state.site,
                                 f"{state.site}: {'link back' if up else 'CUT OFF'}", (("detail", detail),))

    def _source_new_sites(self) -> None:
        """Source a site's stream once it exists: a source added before its stream waits out the server's
        retry interval (seconds) after the stream appears; one added after starts at once."""
        assert self.ingest is not None
        for code in sorted(set(self.sites) - self.sourced):
            try:
                remote = self.ingest.link.nc.jetstream(domain=code, timeout=1.0)
                self.ingest.link.run(remote.stream_info(site_stream(code)), 3)
            except Exception:  # the edge has not been up yet, or is cut off: asked again in a second
                continue
            self.ingest.add_site(code)
            self.sourced.add(code)
            log.info("centre stream sources %s", code)

    def _live(self, identity: Identity, frames: Sequence[Frame]) -> None:
        """Every site's alarms on the centre's live bus, as they reach the register (the guard pages here);
        records with effects make a snapshot at once (the edge that made them waits for one holding them)."""
        if any(f.has_effects for f in frames):
            self._poke.set()
        newest = 0
        for frame in frames:
            try:
                fields = json.loads(frame.payload)
                newest = max(newest, int(fields.get("time_us") or 0))
                if frame.kind in PLACE_KINDS:
                    self._check_place(identity.site, frame.kind, fields)
                if frame.kind == ItemCrossed.KIND:
                    self._check_clone(identity, fields)
                elif frame.kind == AlarmRaised.KIND:
                    self._show_alarm(identity, json.loads(frame.payload))
                elif frame.kind in (AlarmAcknowledged.KIND, AlarmResolved.KIND):
                    self._show_ack(identity, frame.kind, json.loads(frame.payload))
            except Exception:  # the record is in the register; only its live view or check failed
                log.exception("centre could not check or show record %s/%s/%s", identity.site, identity.node,
                              frame.seq)
        if newest:  # records come in order per site: the site is heard up to its newest here
            self._heard(identity.site, newest)

    def _command_result(self, result: CommandResult) -> None:
        if self.desk is not None:
            self.desk.command_settled(result)

    # ---- one place at a time ----
    def _places_now(self) -> dict[str, str]:
        """Where the register has each item and person now, by site (through the site files' venues)."""
        site_of = {venue: site.code for site in self.sites.values() for venue in site.venues}
        with self.factory() as session:
            venues = {vid: site_of.get(code) for vid, code in session.execute(select(Venue.id, Venue.code))}
            items = session.execute(select(Item.id, Item.venue_id).where(Item.status == "active"))
            people = session.execute(select(PresenceEntry.person_id, PresenceEntry.venue_id))
            found = {f"item:{i}": venues.get(v) for i, v in items} | {f"person:{p}": venues.get(v) for p, v in people}
        return {key: site for key, site in found.items() if site is not None}

    def _check_place(self, site: str, kind: str, fields: dict[str, object]) -> None:
        """An item or a person recorded arriving at `site` while the centre has it at another site."""
        at = int(fields["time_us"])  # type: ignore[call-overload]
        if kind == PersonMoved.KIND:
            event = Presence(f"person:{fields['person_id']}", site, at, fields["to_venue_id"] is not None)
        else:
            arriving = kind == ItemBroughtIn.KIND or fields.get("to_venue_id") is not None
            event = Presence(f"item:{fields['item_id']}", site, at, arriving)
        with self._places_lock:
            found = self.places.see(event, self._shipped)
        self._report_places(found)

    def _heard(self, site: str, at_us: int) -> None:
        with self._places_lock:
            found = self.places.heard(site, at_us, self._shipped)
        self._report_places(found)

    def _shipped(self, key: str) -> bool:
        """A shipment in transit covers the item (its arrival elsewhere is expected)."""
        kind, _, ident = key.partition(":")
        if kind != "item":
            return False
        with self.factory() as session:
            moving = select(Transfer.id).where(Transfer.state == "in_transit",
                                               Transfer.items.any(Item.id == int(ident)))
            return session.execute(moving.limit(1)).first() is not None

    def _report_places(self, found: list[TwoPlaces]) -> None:
        """Journaled at the centre and shown on its guard stations."""
        for two in found:
            kind, _, ident = two.key.partition(":")
            with db.transaction(self.factory) as session:
                if kind == "item":
                    row = session.get(Item, int(ident))
                    name = f"{row.register_number}/{row.copy_number}" if row else two.key
                    action, title = "alarm.item_in_two_places", "item recorded at two sites"
                else:
                    person = session.get(Person, int(ident))
                    name = person.username if person else two.key
                    action, title = "alarm.presence_across_sites", "person recorded at two sites"
                journal.append(session, "centre", action, f"{kind}:{name}",
                               {"sites": list(two.sites), "at_us": two.at_us})
            detail = f"{name} recorded at {' and '.join(two.sites)} at once (no departure or shipment between)"
            self.bus.publish(LiveKind.ALARM, Severity.CRITICAL, now_us(), "centre", title,
                             ((kind, name), ("sites", ", ".join(two.sites)), ("detail", detail)))

    def _check_clone(self, identity: Identity, fields: dict[str, object]) -> None:
        """The same EPC at two sites too far apart for the time between: journaled and alarmed here."""
        sighting = TagSighting(str(fields["epc"]), identity.site, int(fields["time_us"]))  # type: ignore[call-overload]
        for suspect in self.clones.see(sighting):
            detail = (f"{suspect.epc} at {suspect.first.site} then {suspect.second.site}: {suspect.distance_m:.0f} m "
                      f"in {suspect.seconds:.0f} s")
            with db.transaction(self.factory) as session:
                journal.append(session, "centre", "alarm.possible_clone_across_sites", f"item:{fields.get('item')}",
                               {"epc": suspect.epc, "first": [suspect.first.site, suspect.first.at_us],
                                "second": [suspect.second.site, suspect.second.at_us],
                                "speed_m_per_s": round(suspect.speed_m_per_s, 1)})
            self.bus.publish(LiveKind.ALARM, Severity.CRITICAL, now_us(), "centre",
                             "possible clone across sites", (("item", str(fields.get("item"))), ("detail", detail)))

    def _show_alarm(self, identity: Identity, fields: dict[str, object]) -> None:
        self.bus.publish(
            LiveKind.ALARM, Severity.CRITICAL, int(fields.get("time_us") or now_us()), identity.site,  # type: ignore[call-overload]
            f"{identity.site}: {str(fields.get('alarm', 'alarm')).replace('_', ' ')}",
            (("site", identity.site), ("source", str(fields.get("source", ""))),
             ("detail", str(fields.get("detail", ""))), ("record", str(fields.get("record", "")))),
        )

    def _show_ack(self, identity: Identity, kind: str, fields: dict[str, object]) -> None:
        """A site's alarm acknowledged or resolved (by its guards or the centre's): every station refreshes."""
        done = "acknowledged" if kind == AlarmAcknowledged.KIND else "resolved"
        alarm_id = int(fields["alarm_id"])  # type: ignore[call-overload]
        self.bus.publish(LiveKind.ACK, Severity.INFO, int(fields.get("time_us") or now_us()), identity.site,  # type: ignore[call-overload]
                         f"{identity.site}: alarm {alarm_id} {done} by {fields.get('user')}",
                         (("site", identity.site), ("alarm", str(alarm_id))), alarm_id=alarm_id)

    # ---- snapshots ----
    def poke(self) -> None:
        """Publish snapshots now (a change made in this process)."""
        self._poke.set()

    def _snapshots(self) -> None:
        seen = -1
        applied_seen: dict[str, int] = {}
        while not self._stop.is_set():
            poked = self._poke.wait(self.options.poll_s)
            self._poke.clear()
            if self._stop.is_set():
                return
            try:
                with self.factory() as session:
                    position = changes.latest(session)
                assert self.sink is not None
                applied = self.sink.applied_now()
                since = time.monotonic() - self.stats.last_at
                due = (poked or position != seen) and since >= self.options.min_interval_s
                due |= applied != applied_seen and since >= self.options.applied_interval_s
                if due:
                    self._publish(applied)
                    seen, applied_seen = position, applied
            except Exception:
                log.exception("snapshot round failed; trying again")
                self._stop.wait(1.0)

    def replica(
        self, session: Session, code: str, version: int, compiled_at_us: int, applied: dict[str, int]
    ) -> RegisterReplica:
        """The snapshot for site `code`: its devices, its guards' password hashes, everything else shared."""
        site = self.sites[code]
        return compile_replica(session, code, site.devices, version=version, compiled_at_us=compiled_at_us,
                               applied=applied, people=site.people)

    def _publish(self, applied: dict[str, int] | None = None) -> int:
        """A snapshot for every site, from one consistent read of the register; returns its version."""
        assert self.register is not None
        started = time.monotonic()
        applied = dict(applied if applied is not None else (self.sink.applied_now() if self.sink else {}))
        version = max(self.stats.last_version + 1, now_us())  # increasing across restarts too
        with self.factory() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            compiled_at = now_us()
            blobs = {code: self.replica(session, code, version, compiled_at, applied).encode() for code in self.sites}
        for code, blob in blobs.items():
            self.register.publish_snapshot(code, version, compiled_at, blob)
        self.stats.published += 1
        self.stats.last_version = version
        self.stats.last_at = time.monotonic()
        self.stats.seconds = [*self.stats.seconds[-99:], self.stats.last_at - started]
        return version

"""Running a site until stopped (`custodian run`) and the demo (`custodian demo`).

SIGTERM and Ctrl-C stop the site cleanly: devices stop being read, queued events are decided, accepted
records are delivered to the register (what the register cannot take stays in the local log for the next
start, and the stop message says how many), then the process exits. A kill -9 or a power loss needs no
more than starting again: the local log is recovered and delivered, and the site file is not re-applied
over the live state (see `prepare_register`).
"""

from __future__ import annotations

import faulthandler
import gc
import json
import logging
import re
import shutil
import signal
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from controllers.anchoring import AnchorSettings, AnchorWriter
from controllers.bus import LiveBus
from controllers.recorder import node_identity
from custodian.demo import Traffic, summary
from custodian.web import DEMO_PASSWORD, WebServer, serve_in_thread, set_demo_passwords
from custodian.wiring import RunningSite, start_site
from registry import db
from registry.services import site_files
from registry.sitefile import SiteFileError, load, site_time_zone

ACTOR = "site-loader"
# A stop still under way after this long prints every thread's stack to stderr (and goes on): a driver that does
# not let go shows where it waits, in the operator's log or a test's failure, instead of a silent hang.
SLOW_STOP_S = 20.0


class StopSignal:
    """Set by SIGTERM or SIGINT. Python runs a signal handler in the main thread, but the kernel may deliver the
    signal to any thread: the handler then waits until the main thread next runs Python code, and a main thread
    blocked in an untimed `Event.wait()` never does (a site that ignored SIGTERM for good, 1 start in ~80). So
    `wait` sleeps in short steps, and the handler only sets a flag: it may run while the main thread holds any
    lock, and takes none."""

    POLL_S = 0.1

    def __init__(self) -> None:
        self._requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handler)

    def _handler(self, _signum: int, _frame: object) -> None:
        self._requested = True

    def is_set(self) -> bool:
        return self._requested

    def wait(self, timeout_s: float | None = None) -> bool:
        """Whether the stop was asked for within `timeout_s` (None: wait until it is)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._requested:
            left = self.POLL_S if deadline is None else min(self.POLL_S, deadline - time.monotonic())
            if left <= 0:
                return False
            time.sleep(left)
        return True


@contextmanager
def _reporting_a_slow_stop() -> Iterator[None]:
    faulthandler.dump_traceback_later(SLOW_STOP_S, exit=False)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def _stop_site(server: WebServer | None, site: RunningSite, writer: AnchorWriter, engine: Engine) -> None:
    """Pages first (no new requests), then devices and engine, the anchor writer, the database."""
    with _reporting_a_slow_stop():
        if server is not None:
            server.stop()
        site.stop()
        writer.stop()
        engine.dispose()


def prepare_register(factory: sessionmaker[Session], site_file: Path) -> str:
    """What `run` does with the site file at each start; returns what it did, in a sentence.

    - an empty register gets the whole file (venues, portals, devices, people, items, approvals);
    - afterwards the file is applied again only when its SHA-256 differs from the last one applied, and
      then only its configuration (venues, portals, devices), through the same loader and rules; people,
      items and approvals are live state (where items are, custody, approval uses), changed through the
      services and never reset from the file;
    - a changed file the register refuses is not applied: the site runs on the register as it is, and the
      refusal is printed (raises SiteFileError only when the register is empty: there is no site to run).
    """
    digest = site_files.digest(site_file)
    with db.transaction(factory) as session:
        if site_files.register_is_empty(session):
            load(session, ACTOR, site_file)
            site_files.loaded(session, ACTOR, site_file, digest, site_files.FULL)
            return f"{site_file}: loaded into the empty register"
        last = site_files.last_loaded(session)
        if last is not None and last.sha256 == digest:
            return f"{site_file}: unchanged since it was applied; the register is used as it is"
    try:
        with db.transaction(factory) as session:
            result = load(session, ACTOR, site_file, configuration_only=True)
            site_files.loaded(session, ACTOR, site_file, digest, site_files.CONFIGURATION)
    except SiteFileError as exc:
        return f"warning: {site_file} changed but was not applied ({exc}); the site runs on the register as it is"
    except DBAPIError:
        raise
    except Exception as exc:  # a loader failure must not keep a site from restarting
        reason = f"{type(exc).__name__}: {exc}"
        return f"warning: {site_file} changed but could not be read ({reason}); the site runs on the register as it is"
    changed = sum(result.created.values())
    return (
        f"{site_file}: changed; configuration applied ({changed} venue, portal or device rows changed); "
        "people, items and approvals are kept as the register has them"
    )


def _site_name(site_file: Path) -> str:
    """The site's name in record ids: its `[site] code`, else its name, as a slug."""
    try:
        table = tomllib.loads(site_file.read_text(encoding="utf-8")).get("site", {})
        name = str(table.get("code") or table.get("name") or "site")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        name = "site"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "site"


def _time_zone(site_file: Path) -> str:
    """The site file's time zone; a file that does not check runs on the fallback, as on the register as it is."""
    try:
        return site_time_zone(site_file)
    except SiteFileError as exc:
        typer.echo(f"warning: {exc}; times are shown in {site_time_zone()}", err=True)
        return site_time_zone()


def run_site(
    url: str | None,
    site_file: Path,
    state: Path,
    *,
    simulate: bool,
    port: int,
    backend: str,
    tls: tuple[Path, Path] | None = None,
    anchoring: AnchorSettings | None = None,
) -> None:
    stop = StopSignal()  # first: a SIGTERM while starting still ends in a clean stop
    state.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        factory = db.session_factory(engine)
        typer.echo(prepare_register(factory, site_file))
    except SiteFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except DBAPIError as exc:
        typer.echo(
            f"error: the register is unreachable ({type(exc.orig or exc).__name__}); records accepted earlier stay "
            f"in {state / 'spool'} and are delivered at the next start",
            err=True,
        )
        raise typer.Exit(1) from None
    node_identity(state / "spool", _site_name(site_file))  # where start_site keeps the recorder's log
    bus = LiveBus()
    site = start_site(factory, bus, state, simulate=simulate, backend=backend, time_zone=_time_zone(site_file))
    anchoring = anchoring or AnchorSettings(state / "anchors")
    writer = AnchorWriter(factory, bus, anchoring).start()
    server = serve_in_thread(site, factory, port, state, tls=tls, anchors_dir=anchoring.directory)
    devices = "simulated devices" if simulate else "real devices"
    # The start-up heap (engine, app, register caches) lives as long as the process: frozen, the collector stops
    # walking it at every full collection (a third of the recorder's delivery cost, bench/durability.py).
    gc.collect()
    gc.freeze()
    typer.echo(f"site running ({devices}) at {server.url}; SIGTERM or Ctrl-C stops it")
    typer.echo(f"journal anchors every {anchoring.interval_s:g} s in {anchoring.directory}")
    try:
        stop.wait()
    finally:
        _stop_site(server, site, writer, engine)
    if writer.last is not None:
        typer.echo(f"journal anchored at {writer.last.describe()} in {anchoring.directory}")
    recorder = site.runtime.recorder
    left = recorder.backlog()
    if left:
        typer.echo(
            f"stopped: {recorder.written} records written to the register by this run; {left} accepted records "
            f"are kept in the local log ({recorder.directory}), not yet in the register: the next start delivers them"
        )
    else:
        typer.echo(f"stopped cleanly: {recorder.written} records written to the register; every accepted one is in it")


def run_demo(
    *,
    state: Path,
    site_file: Path,
    headless: bool,
    duration: float,
    backend: str,
    port: int = 8000,
    tls: tuple[Path, Path] | None = None,
    anchoring: AnchorSettings | None = None,
) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if state.exists():
        shutil.rmtree(state)  # every demo starts from a fresh register
    state.mkdir(parents=True)
    url = f"sqlite:///{state.resolve() / 'custodian.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        load(session, "site-loader", site_file)
    started = time.monotonic()
    bus = LiveBus()
    typer.echo("starting simulators (OSDP panels on ptys, LLRP readers on loopback, Modbus machines) ...")
    site = start_site(factory, bus, state, simulate=True, backend=backend, time_zone=_time_zone(site_file))
    anchoring = anchoring or AnchorSettings(state / "anchors")
    writer = AnchorWriter(factory, bus, anchoring).start()
    server = None
    if not headless:
        set_demo_passwords(factory)
        server = serve_in_thread(site, factory, port, state, tls=tls, anchors_dir=anchoring.directory, demo=True)
        typer.echo(
            f"web pages: {server.url}/guard  (accounts: gus guard, otto operator, wendy witness, "
            f"admin, audrey auditor, paul approver; password: {DEMO_PASSWORD})"
        )
    stop = StopSignal()
    traffic = Traffic(site, log=typer.echo)
    try:
        if not site.wait_ready():
            typer.echo("warning: not every device came online; the traffic runs anyway", err=True)
        traffic.run()
        remaining = duration - (time.monotonic() - started) if duration else None
        if remaining is None:
            if headless:
                pass
            else:
                typer.echo("demo traffic done; the site keeps running until Ctrl-C")
                stop.wait()
        elif remaining > 0:
            stop.wait(remaining)
    finally:
        _stop_site(server, site, writer, engine)
    typer.echo(json.dumps(summary(site, traffic.scenarios, time.monotonic() - started), sort_keys=True))

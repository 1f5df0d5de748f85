"""Running a site until stopped (`custodian run`) and the demo (`custodian demo`).

SIGTERM and Ctrl-C stop the site cleanly: devices stop being read, queued events are decided, decisions
are written to the register, then the process exits.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
import time
from pathlib import Path

import typer

from controllers.bus import LiveBus
from custodian.demo import Traffic, summary
from custodian.web import DEMO_PASSWORD, serve_in_thread, set_demo_passwords
from custodian.wiring import start_site
from registry import db
from registry.sitefile import load


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    return stop


def run_site(
    url: str | None,
    site_file: Path,
    state: Path,
    *,
    simulate: bool,
    port: int,
    backend: str,
    tls: tuple[Path, Path] | None = None,
) -> None:
    state.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(url)
    db.upgrade(engine)
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        load(session, "site-loader", site_file)
    bus = LiveBus()
    site = start_site(factory, bus, state, simulate=simulate, backend=backend)
    server = serve_in_thread(site, factory, port, state, tls=tls)
    typer.echo(f"site running ({'simulated devices' if simulate else 'real devices'}); SIGTERM or Ctrl-C stops it")
    stop = _stop_event()
    try:
        stop.wait()
    finally:
        if server is not None:
            server.stop()
        site.stop()
        engine.dispose()
    typer.echo(
        f"stopped cleanly: {site.runtime.recorder.written} records written, "
        f"{site.runtime.recorder.pending()} left in the spool"
    )


def run_demo(
    *,
    state: Path,
    site_file: Path,
    headless: bool,
    duration: float,
    backend: str,
    port: int = 8000,
    tls: tuple[Path, Path] | None = None,
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
    site = start_site(factory, bus, state, simulate=True, backend=backend)
    server = None
    if not headless:
        set_demo_passwords(factory)
        server = serve_in_thread(site, factory, port, state, tls=tls)
        typer.echo(
            f"web pages: {server.url}/guard  (accounts: gus guard, otto operator, wendy witness, "
            f"admin, audrey auditor, paul approver; password: {DEMO_PASSWORD})"
        )
    stop = _stop_event()
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
        if server is not None:
            server.stop()
        site.stop()
        engine.dispose()
    typer.echo(json.dumps(summary(site, traffic.scenarios, time.monotonic() - started), sort_keys=True))

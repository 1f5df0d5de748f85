"""The `custodian edge`, `custodian centre` and `custodian demo --sites N` commands: start, report, stop on
SIGTERM or Ctrl-C (what is not yet shipped or written stays on disk for the next start)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import typer
from sqlalchemy import func, select

from custodian.run import StopSignal
from custodian.web import DEMO_PASSWORD, serve_in_thread, set_demo_passwords
from multisite.centre_site import CentreOptions, CentreSite, site_code
from multisite.demo_sites import SiteTraffic, demo_sites
from multisite.edge_site import EdgeError, EdgeOptions, EdgeSite
from multisite.envelope import EnvelopeError
from multisite.servers import LinkTls
from registry.models import AcceptedRecord
from registry.sitefile import SiteFileError


def run_edge(
    site_file: Path, hub: str, state: Path, *, simulate: bool, backend: str, snapshot_max_age_s: float,
    nats_port: int, port: int | None, link_tls: LinkTls | None = None,
) -> None:
    stop = StopSignal()
    try:
        edge = EdgeSite(EdgeOptions(site_code(site_file), state, hub, snapshot_max_age_s=snapshot_max_age_s,
                                    simulate=simulate, backend=backend, nats_port=nats_port, link_tls=link_tls))
        over = " over mutual TLS" if link_tls else ""
        typer.echo(f"edge {edge.site}: leaf nats-server on {edge.leaf.url}, dialling the hub at {hub}{over}")
        edge.start()
    except (EdgeError, EnvelopeError, SiteFileError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    web = serve_in_thread(edge.running, edge.factory, port, state) if port is not None and edge.running else None
    typer.echo(f"edge {edge.site} deciding from register snapshot {edge.loaded[0]}; SIGTERM or Ctrl-C stops it")
    try:
        stop.wait()
    finally:
        if web is not None:
            web.stop()
        left = edge.stop()
    typer.echo(f"stopped: {left} accepted records not yet in the site stream (kept in {state / 'spool'})"
               if left else "stopped cleanly: every accepted record is in the site stream")


def run_centre(
    site_files: list[Path], url: str, state: Path, *, nats_port: int, leaf_port: int, port: int | None,
    distances: tuple[tuple[str, str, float], ...] = (), link_tls: LinkTls | None = None,
) -> None:
    stop = StopSignal()
    centre = CentreSite(CentreOptions(url, tuple(site_files), state, nats_port=nats_port, leaf_port=leaf_port,
                                      web_port=port, site_distances_m=distances, link_tls=link_tls))
    centre.start()
    over = " over mutual TLS" if link_tls else ""
    typer.echo(f"centre: hub on port {centre.hub.port}, leaf nodes dial {centre.hub_leaf}{over}; sites "
               f"{', '.join(centre.sites)}; each edge's leaf password is in {state / 'leaf-logins.json'} (give it "
               "to that edge as CUSTODIAN_LEAF_PASSWORD)")
    if centre.web is not None:
        typer.echo(f"web pages: {centre.web.url}")
    try:
        stop.wait()
    finally:
        centre.stop()


def run_sites_demo(
    *, count: int, state: Path, url: str | None, headless: bool, duration: float, backend: str, port: int
) -> None:
    """A hub, `count` leaf servers, `count` edges with simulated doors and people, and the centre."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if state.exists():
        shutil.rmtree(state)  # every demo starts from fresh registers
    state.mkdir(parents=True)
    sites = demo_sites(count)
    files = [s.write(state / "site-files") for s in sites]
    db_url = url or f"sqlite:///{(state / 'centre.db').resolve()}"
    stop = StopSignal()
    started = time.monotonic()
    centre = CentreSite(CentreOptions(db_url, tuple(files), state / "centre", web_port=None if headless else port))
    edges: list[EdgeSite] = []
    try:
        centre.start()
        if not headless:
            set_demo_passwords(centre.factory)
            centre.poke()
        typer.echo(f"centre up: hub on port {centre.hub.port}; register {db_url}")
        if centre.web is not None:
            typer.echo(f"centre pages: {centre.web.url}  (accounts site-a-gus, site-a-paul, ...; "
                       f"password: {DEMO_PASSWORD})")
        for site in sites:
            edge = EdgeSite(EdgeOptions(site.code, state / site.code, centre.hub_leaf, simulate=True,
                                        backend=backend, leaf_password=centre.leaf_password(site.code)))
            edges.append(edge.start())
            typer.echo(f"edge {site.code} up: leaf {edge.leaf.url}, deciding from snapshot {edge.loaded[0]}")
        for edge in edges:
            assert edge.running is not None
            edge.running.wait_ready()
        rounds = 0
        while not stop.is_set() and (not duration or time.monotonic() - started < duration):
            for site, edge in zip(sites, edges, strict=True):
                assert edge.running is not None
                traffic = SiteTraffic(site, edge.running)
                bob = traffic.exit_attempt("bob", (1,))
                carol = traffic.exit_attempt("carol", (2,))
                typer.echo(f"{site.code}: bob with his approved briefing: {'out' if bob else 'REFUSED'}; "
                           f"carol with the disk, no approval: {'OUT (wrong!)' if carol else 'refused'}")
            rounds += 1
            stop.wait(2.0)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_in_register(centre, e) < _accepted(e) for e in edges):
            time.sleep(0.2)
        summary = {
            "seconds": round(time.monotonic() - started, 1),
            "rounds": rounds,
            "sites": {
                e.site: {"accepted": _accepted(e), "in_centre_register": _in_register(centre, e),
                         "decisions": e.running.runtime.portals.decisions if e.running else 0}
                for e in edges
            },
            "snapshots_published": centre.stats.published,
        }
    finally:
        for edge in edges:
            edge.stop()
        centre.stop()
    typer.echo(json.dumps(summary, sort_keys=True))


def _accepted(edge: EdgeSite) -> int:
    return edge.running.runtime.recorder.log.next_seq - 1 if edge.running else 0


def _in_register(centre: CentreSite, edge: EdgeSite) -> int:
    with centre.factory() as session:
        return int(session.execute(
            select(func.count()).select_from(AcceptedRecord).where(
                AcceptedRecord.site == edge.site, AcceptedRecord.node == edge.identity.node)
        ).scalar_one())

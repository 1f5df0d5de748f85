"""The `custodian` command. Errors the user can fix print one line naming the rule and exit with 2."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import anchors, db, journal, passwords
from registry.errors import RegistryError
from registry.levels import Level
from registry.models import Approval, Incident, Item, JournalEntry, Person, Portal, Venue
from registry.services import approvals, lookup, people
from registry.sitefile import SiteFileError, export, load

if TYPE_CHECKING:
    from controllers.anchoring import AnchorSettings
    from firmware_bridge.kinds import Device
    from multisite.servers import LinkTls

app = typer.Typer(help="Custodian: physical control of classified media.", no_args_is_help=True)
site_app = typer.Typer(help="Load and export the declarative site file.", no_args_is_help=True)
journal_app = typer.Typer(help="The tamper-evident journal.", no_args_is_help=True)
items_app = typer.Typer(help="Items in the register.", no_args_is_help=True)
people_app = typer.Typer(help="People, badges and departures.", no_args_is_help=True)
approvals_app = typer.Typer(help="Requests and approvals.", no_args_is_help=True)
app.add_typer(site_app, name="site")
app.add_typer(journal_app, name="journal")
app.add_typer(items_app, name="items")
app.add_typer(people_app, name="people")
app.add_typer(approvals_app, name="approvals")

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: $CUSTODIAN_DB or sqlite:///custodian.db)")
]
ActorOption = Annotated[str, typer.Option("--as", help="Username recorded in the journal as the actor")]


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def unit_of_work(url: str | None) -> Iterator[Session]:
    """Open the register (creating or migrating the schema) and run one transaction."""
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        with db.transaction(db.session_factory(engine)) as session:
            yield session
    except (RegistryError, SiteFileError) as exc:
        fail(str(exc))
    finally:
        engine.dispose()


def echo_rows(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@app.command()
def init(
    url: DbOption = None,
    admin: Annotated[str, typer.Option(help="Username of the first administrator")] = "admin",
    name: Annotated[str, typer.Option(help="Full name of the first administrator")] = "Administrator",
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the administrator's password")
    ] = "CUSTODIAN_ADMIN_PASSWORD",
) -> None:
    """Create (or migrate) the database and the first administrator."""
    with unit_of_work(url) as session:
        if session.execute(select(Person.id).limit(1)).first() is not None:
            typer.echo("register already initialised; schema is current")
            return
        person = people.create(
            session,
            "system",
            people.PersonData(username=admin, name=name, clearance=Level.SECRET, roles=("administrator",)),
        )
        secret = os.environ.get(password_env)
        if secret:
            people.set_password_hash(session, "system", person, passwords.hash_password(secret))
            typer.echo(f"created administrator {admin} with the password from ${password_env}")
        else:
            typer.echo(f"created administrator {admin}; set a password with ${password_env} to log in")


@site_app.command("load")
def site_load(file: Path, url: DbOption = None, actor: ActorOption = "site-loader") -> None:
    """Load a site file. Loading the same file again changes nothing."""
    if not file.is_file():
        fail(f"{file}: no such file")
    with unit_of_work(url) as session:
        result = load(session, actor, file)
    created = ", ".join(f"{k} {v}" for k, v in result.created.items() if v) or "nothing"
    typer.echo(f"loaded {file}: created/updated {created}")


@site_app.command("export")
def site_export(
    url: DbOption = None,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
) -> None:
    """Write the register's site as a site file (no secrets)."""
    with unit_of_work(url) as session:
        text = export(session)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


@journal_app.command("verify")
def journal_verify(
    url: DbOption = None,
    anchor: Annotated[
        list[Path] | None,
        typer.Option(help="An anchor file (from `journal anchor`) or a folder of them; repeat for several"),
    ] = None,
) -> None:
    """Exit 0 on an intact chain that still holds every anchor given; exit 1 naming why otherwise."""
    with unit_of_work(url) as session:
        given = [a for path in anchor or () for a in anchors.read(path)]
        result = anchors.verify(session, given)
    if result.ok:
        held = f"; holds {len(given)} anchor(s), newest at sequence {max(a.seq for a in given)}" if given else ""
        typer.echo(f"journal intact: {result.entries} entries, head {result.head_hash}{held}")
        return
    typer.echo(f"journal BROKEN at sequence {result.first_bad_seq}: {result.problem}", err=True)
    raise typer.Exit(1)


@journal_app.command("anchor")
def journal_anchor(
    url: DbOption = None,
    out: Annotated[Path | None, typer.Option(help="Write the anchor here instead of stdout")] = None,
) -> None:
    """Write the journal's head (sequence, hash, time) as an anchor to keep outside the database.

    A broken chain is never anchored (exit 1)."""
    with unit_of_work(url) as session:
        result = journal.verify(session)
        taken = anchors.take(session)
    if not result.ok:
        typer.echo(f"journal BROKEN at sequence {result.first_bad_seq}: {result.problem}; not anchored", err=True)
        raise typer.Exit(1)
    if out is None:
        sys.stdout.write(taken.to_json())
        return
    try:
        anchors.write_atomically(out, taken.to_json())
    except OSError as exc:
        fail(f"{out}: {exc.strerror or exc}")
    typer.echo(f"anchored the journal at {taken.describe()} in {out}")


@items_app.command("list")
def items_list(
    url: DbOption = None,
    venue: Annotated[str | None, typer.Option(help="Only items in this venue")] = None,
    status: Annotated[str | None, typer.Option(help="Only items with this status")] = None,
) -> None:
    """List registered items."""
    with unit_of_work(url) as session:
        query = select(Item).order_by(Item.register_number, Item.copy_number)
        if venue:
            query = query.where(Item.venue_id == lookup.venue(session, venue).id)
        if status:
            query = query.where(Item.status == status)
        rows = [
            (
                f"{i.register_number}/{i.copy_number}",
                Level(i.level).label,
                i.kind,
                i.status,
                i.venue.code if i.venue else "-",
                i.custodian.username if i.custodian else "-",
                "LABEL OUT OF DATE" if i.label_out_of_date else "",
                i.title,
            )
            for i in session.execute(query).scalars()
        ]
    echo_rows(rows, ("item", "level", "kind", "status", "venue", "custody", "label", "title"))


@items_app.command("review")
def items_review(
    url: DbOption = None,
    on: Annotated[str | None, typer.Option(help="Review date YYYY-MM-DD (default today)")] = None,
) -> None:
    """Items whose secrecy period has ended: for a classifier to declassify or extend."""
    day = dt.date.fromisoformat(on) if on else dt.date.today()
    from registry.services.items import declassification_review

    with unit_of_work(url) as session:
        rows = [
            (f"{i.register_number}/{i.copy_number}", Level(i.level).label, i.title)
            for i in declassification_review(session, day)
        ]
    echo_rows(rows, ("item", "level", "title"))


@people_app.command("list")
def people_list(url: DbOption = None) -> None:
    """List people with their clearance, roles and status."""
    with unit_of_work(url) as session:
        rows = [
            (
                p.username,
                p.name,
                Level(p.clearance).label,
                ",".join(sorted(p.role_names)),
                p.status,
                ",".join(b.number for b in p.badges),
            )
            for p in session.execute(select(Person).order_by(Person.username)).scalars()
        ]
    echo_rows(rows, ("username", "name", "clearance", "roles", "status", "badges"))


@people_app.command("depart")
def people_depart(
    username: str,
    url: DbOption = None,
    actor: ActorOption = "admin",
    separation_until: Annotated[str | None, typer.Option(help="End of the separation period")] = None,
) -> None:
    """Sign a person off (Art. 53). Refused, listing the items, while anything is in their custody."""
    until = dt.date.fromisoformat(separation_until) if separation_until else None
    with unit_of_work(url) as session:
        person = lookup.person(session, username)
        held = people.departure_checklist(session, person)
        if held:
            typer.echo(f"{username} must first return:", err=True)
            for item in held:
                typer.echo(f"  {item.register_number}/{item.copy_number}  {item.title}", err=True)
        people.sign_off(session, actor, person, until)
    typer.echo(f"{username} signed off; badges revoked")


def _decide(ref: str, url: str | None, actor: str, action: Callable[..., Approval], note: str) -> None:
    with unit_of_work(url) as session:
        approval = action(session, actor, lookup.approval(session, ref), note)
        typer.echo(f"{approval.ref}: {approval.state}")


@approvals_app.command("list")
def approvals_list(url: DbOption = None) -> None:
    """List approvals and their state."""
    with unit_of_work(url) as session:
        rows = [
            (
                a.ref,
                a.kind,
                a.state,
                a.requester.username,
                ",".join(i.register_number for i in a.items),
                str(a.uses_left),
                a.valid_until.date().isoformat(),
            )
            for a in session.execute(select(Approval).order_by(Approval.ref)).scalars()
        ]
    echo_rows(rows, ("ref", "kind", "state", "requester", "items", "uses left", "until"))


@approvals_app.command("request")
def approvals_request(
    ref: str,
    actor: ActorOption,
    kind: Annotated[str, typer.Option(help="carry_out, transfer, reproduce, destroy, abroad or declassify")],
    item: Annotated[list[str], typer.Option(help="Register number or EPC; repeat for several")],
    until: Annotated[str, typer.Option(help="End of the window, ISO date-time with offset")],
    url: DbOption = None,
    person: Annotated[list[str] | None, typer.Option(help="Username allowed; repeat for several")] = None,
    portal: Annotated[str | None, typer.Option(help="Only through this portal")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start of the window (default now)")] = None,
    uses: Annotated[int, typer.Option(help="How many times it may be used")] = 1,
    reason: Annotated[str, typer.Option(help="Why")] = "",
    consent: Annotated[str | None, typer.Option(help="Originating unit's consent (top-secret copies)")] = None,
) -> None:
    """Request an approval; someone else must approve it."""
    try:
        begins = dt.datetime.fromisoformat(start) if start else dt.datetime.now(dt.UTC)
        ends = dt.datetime.fromisoformat(until)
    except ValueError as exc:
        fail(f"--from/--until: {exc}")
    if begins.tzinfo is None or ends.tzinfo is None:
        fail("--from/--until need a time zone offset, e.g. 2026-12-01T18:00:00+00:00")
    request = approvals.ApprovalRequest(
        ref=ref,
        kind=kind,
        items=tuple(item),
        people=tuple(person or ()),
        portal=portal,
        valid_from=begins,
        valid_until=ends,
        uses=uses,
        reason=reason,
        originator_consent=consent,
    )
    with unit_of_work(url) as session:
        approval = approvals.request(session, actor, request)
        typer.echo(f"{approval.ref}: {approval.state}; it needs an approver other than {actor}")


@approvals_app.command("approve")
def approvals_approve(ref: str, actor: ActorOption, url: DbOption = None, note: str = "") -> None:
    """Approve a request (never by its requester)."""
    _decide(ref, url, actor, approvals.approve, note)


@approvals_app.command("refuse")
def approvals_refuse(
    ref: str, actor: ActorOption, note: Annotated[str, typer.Option(help="Why")], url: DbOption = None
) -> None:
    """Refuse a request, with a reason."""
    _decide(ref, url, actor, approvals.refuse, note)


@app.command()
def status(url: DbOption = None) -> None:
    """Print a summary of the site in the register."""
    with unit_of_work(url) as session:
        count = lambda model: session.execute(select(func.count()).select_from(model)).scalar_one()  # noqa: E731
        typer.echo(
            f"venues {count(Venue)}  portals {count(Portal)}  people {count(Person)}  items {count(Item)}  "
            f"approvals {count(Approval)}  incidents {count(Incident)}  journal entries {count(JournalEntry)}"
        )
        result = journal.verify(session)
        typer.echo("journal: intact" if result.ok else f"journal: BROKEN at {result.first_bad_seq}")


EXAMPLE_SITE = Path(__file__).resolve().parents[1] / "examples" / "site.toml"
TlsCertOption = Annotated[
    Path | None, typer.Option(help="PEM certificate (chain) file: serve HTTPS, and mark cookies Secure")
]
TlsKeyOption = Annotated[Path | None, typer.Option(help="PEM private key file of --tls-cert")]
AnchorDirOption = Annotated[
    Path | None,
    typer.Option(help="Folder for periodic journal anchors, best on another disk or share (default: STATE/anchors)"),
]
AnchorEveryOption = Annotated[float, typer.Option(help="Seconds between journal anchors", min=0.1)]


def _anchoring(directory: Path | None, every: float, state: Path) -> AnchorSettings:
    from controllers.anchoring import AnchorSettings

    return AnchorSettings(directory or state / "anchors", every)


def _tls(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """Checked before anything starts, so a bad certificate stops nothing half-way."""
    from custodian.web import tls_files

    try:
        return tls_files(cert, key)
    except ValueError as exc:
        fail(str(exc))
        raise  # not reached: fail() exits


@app.command()
def demo(
    headless: Annotated[bool, typer.Option(help="No web server; print a JSON summary at the end")] = False,
    duration: Annotated[float, typer.Option(help="Seconds to run (0: until Ctrl-C)")] = 0.0,
    state: Annotated[Path, typer.Option(help="Folder for the demo database, spool and certificates")] = Path(
        "custodian-demo"
    ),
    site_file: Annotated[Path, typer.Option("--site", help="Site file to load")] = EXAMPLE_SITE,
    backend: Annotated[str, typer.Option(help="Tracking backend: numba or reference")] = "numba",
    port: Annotated[int, typer.Option(help="Port of the web pages")] = 8000,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    sites: Annotated[
        int, typer.Option(help="N > 0: a NATS hub and N leaf servers on loopback, N edges, the centre")
    ] = 0,
    url: Annotated[
        str | None, typer.Option("--db", help="With --sites: the centre's register (default: SQLite in --state)")
    ] = None,
    anchor_dir: AnchorDirOption = None,
    anchor_every: AnchorEveryOption = 300.0,
) -> None:
    """A whole simulated site on SQLite: simulators, controllers, traffic, web pages; prints what happened."""
    from custodian.run import run_demo

    if sites:
        from multisite.run import run_sites_demo

        run_sites_demo(count=sites, state=state, url=url, headless=headless, duration=duration, backend=backend,
                       port=port)
        return
    tls = _tls(tls_cert, tls_key)
    run_demo(
        state=state, site_file=site_file, headless=headless, duration=duration, backend=backend, port=port, tls=tls,
        anchoring=_anchoring(anchor_dir, anchor_every, state),
    )


@app.command()
def run(
    site_file: Path,
    url: DbOption = None,
    simulate: Annotated[bool, typer.Option(help="Start a simulator for every device first")] = False,
    state: Annotated[Path, typer.Option(help="Folder for the spool and certificates")] = Path("custodian-state"),
    port: Annotated[int, typer.Option(help="Port of the web pages and API")] = 8000,
    backend: Annotated[str, typer.Option(help="Tracking backend: numba or reference")] = "numba",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    anchor_dir: AnchorDirOption = None,
    anchor_every: AnchorEveryOption = 300.0,
) -> None:
    """Run a site (real or simulated devices) until SIGTERM or Ctrl-C; nothing queued is lost on stop."""
    from custodian.run import run_site

    if not site_file.is_file():
        fail(f"{site_file}: no such file")
    tls = _tls(tls_cert, tls_key)
    run_site(
        url, site_file, state, simulate=simulate, port=port, backend=backend, tls=tls,
        anchoring=_anchoring(anchor_dir, anchor_every, state),
    )


LinkCertOption = Annotated[Path | None, typer.Option(help="Leaf link TLS: this end's certificate (PEM)")]
LinkKeyOption = Annotated[Path | None, typer.Option(help="Leaf link TLS: this end's private key (PEM)")]
LinkCaOption = Annotated[Path | None, typer.Option(help="Leaf link TLS: the CA that signed the other end (PEM)")]


def _link_tls(cert: Path | None, key: Path | None, ca: Path | None) -> LinkTls | None:
    """Checked before anything starts: all three files or none."""
    from multisite.servers import LinkTls

    try:
        return LinkTls.from_options(cert, key, ca)
    except ValueError as exc:
        fail(str(exc))
        raise  # not reached: fail() exits


@app.command()
def edge(
    site_file: Path,
    hub: Annotated[str, typer.Option(help="host:port of the centre's leaf-node listener")],
    state: Annotated[Path, typer.Option(help="Folder for the leaf server, local register and log")] = Path(
        "custodian-edge"
    ),
    simulate: Annotated[bool, typer.Option(help="Start a simulator for every device first")] = False,
    backend: Annotated[str, typer.Option(help="Tracking backend: numba or reference")] = "numba",
    snapshot_max_age: Annotated[
        float, typer.Option(help="Seconds the register may be unknown before items may not leave")
    ] = 300.0,
    nats_port: Annotated[int, typer.Option(help="Client port of the leaf server (0: chosen once, kept)")] = 0,
    port: Annotated[int | None, typer.Option(help="Port of the site's web pages (none by default)")] = None,
    link_cert: LinkCertOption = None,
    link_key: LinkKeyOption = None,
    link_ca: LinkCaOption = None,
) -> None:
    """Run a site at the edge: its devices and doors, deciding from the centre's last register snapshot. Its leaf
    server signs in at the hub with $CUSTODIAN_LEAF_PASSWORD (the site's entry in the centre's leaf-logins.json);
    with --link-cert/--link-key/--link-ca the link is mutual TLS (the site's client certificate, the hub's CA)."""
    from multisite.run import run_edge

    if not site_file.is_file():
        fail(f"{site_file}: no such file")
    run_edge(site_file, hub, state, simulate=simulate, backend=backend, snapshot_max_age_s=snapshot_max_age,
             nats_port=nats_port, port=port, link_tls=_link_tls(link_cert, link_key, link_ca))


@app.command()
def centre(
    site: Annotated[list[Path], typer.Option(help="A site file the centre serves; repeat for several")],
    url: DbOption = None,
    state: Annotated[Path, typer.Option(help="Folder for the hub server")] = Path("custodian-centre"),
    nats_port: Annotated[int, typer.Option(help="Client port of the hub (0: chosen once, kept)")] = 0,
    leaf_port: Annotated[int, typer.Option(help="Port the edges' leaf servers dial (0: chosen once, kept)")] = 0,
    port: Annotated[int | None, typer.Option(help="Port of the web pages")] = 8000,
    site_distance: Annotated[
        list[str] | None, typer.Option(help="SITE,SITE,METRES between two sites (clone check); repeat")
    ] = None,
    link_cert: LinkCertOption = None,
    link_key: LinkKeyOption = None,
    link_ca: LinkCaOption = None,
) -> None:
    """Run the centre: every site's register (PostgreSQL by --db), records in from the edges, snapshots out. Each
    site's leaf password is made once into STATE/leaf-logins.json: give it to that edge. With --link-cert/--link-key/
    --link-ca the leaf links are mutual TLS (the hub's certificate; the CA that signs the sites' certificates)."""
    from multisite.run import run_centre

    for path in site:
        if not path.is_file():
            fail(f"{path}: no such file")
    distances = []
    for text in site_distance or ():
        a, _, rest = text.partition(",")
        b, _, metres = rest.partition(",")
        try:
            distances.append((a, b, float(metres)))
        except ValueError:
            fail(f"--site-distance {text!r}: expected SITE,SITE,METRES")
    from registry import db

    link_tls = _link_tls(link_cert, link_key, link_ca)
    run_centre(site, db.database_url(url), state, nats_port=nats_port, leaf_port=leaf_port, port=port,
               distances=tuple(distances), link_tls=link_tls)


devices_app = typer.Typer(help="Device simulators and probes for the devices a site file names.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")


def _site_devices(site_file: Path) -> list[Device[Any]]:
    """The site file's devices, each parsed by its kind (a bad table stops here, naming the field)."""
    import tomllib

    from firmware_bridge.errors import BridgeError
    from firmware_bridge.kinds import device_from_table

    if not site_file.is_file():
        fail(f"{site_file}: no such file")
    try:
        tables = tomllib.loads(site_file.read_text(encoding="utf-8")).get("devices", [])
    except tomllib.TOMLDecodeError as exc:
        fail(f"{site_file}: {exc}")
    devices = []
    for table in tables:
        try:
            device = device_from_table(table)
        except BridgeError as exc:
            fail(f"{site_file}: {exc}")
        variable = getattr(device.settings, "scbk_env", "")
        if device.kind == "osdp_panel" and not (variable and os.environ.get(variable)):
            typer.echo(f"{device.name}: ${variable or 'scbk_env'} is not set, the panel uses install mode", err=True)
        devices.append(device)
    return devices


@devices_app.command("simulate")
def devices_simulate(site_file: Path) -> None:
    """Start a simulator for every device the site file names (pty or loopback); run until Ctrl-C."""
    from firmware_bridge.errors import BridgeError
    from firmware_bridge.site import SimulationOptions, start_simulators

    devices = _site_devices(site_file)
    try:
        handle = start_simulators(devices, SimulationOptions(fixed_endpoints=True, fresh_keys=False, traffic=True))
    except (BridgeError, OSError) as exc:
        fail(f"{site_file}: {exc}")
    with handle:
        for name, endpoint in sorted(handle.endpoints.items()):
            typer.echo(f"{name:24} {endpoint}")
        typer.echo("simulators running; Ctrl-C stops them")
        from custodian.run import StopSignal

        StopSignal().wait()


@devices_app.command("probe")
def devices_probe(site_file: Path, timeout: float = 3.0) -> None:
    """Connect to each device once and print its identity and health; exit 1 if any is offline."""
    from firmware_bridge.site import probe

    results = probe(_site_devices(site_file), timeout_s=timeout)
    echo_rows(
        [(r.name, r.kind, str(r.health or "not probed"), r.identity, r.detail) for r in results],
        ("device", "kind", "health", "identity", "detail"),
    )
    if any(str(r.health) == "offline" for r in results):
        raise typer.Exit(1)

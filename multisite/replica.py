"""The register snapshot the centre publishes to an edge: the register's rows, ids kept, that the edge loads
into its own local register (SQLite) and decides from.

Rows, not the engine's compiled arrays: the edge's runtime (engine, portal wiring, names, destruction
stations) is built from a register by the same code as a single site, and records made at the edge carry
register ids (items, portals, approvals) that must mean the same rows at the centre. So the edge's register
is a copy of the centre's with the same primary keys, replaced whole at each snapshot.

Local tables are never sent nor replaced: the edge's own journal chain, its exactly-once ledger, sign-in
sessions and change signals. Devices (and their antennas) are sent to the site that has them only.
Password hashes go only where a password is checked: at an edge, a guard's override at its doors and the
sign-in at its own pages of those who work there (guards, destruction operators and witnesses). A site's
snapshot carries the hashes of the people of its site file who hold one of those roles in the register now,
and no one else's: a stolen edge disk gives no offline guessing of anyone else's password (everyone else
signs in at the centre).
`applied` is the centre's ledger position per node (site/node -> highest seq written): the edge swaps a
snapshot in only once it contains every record with register effects the edge accepted (see `edge_site`),
or the swap would undo what the engine did (an approval use would be given back).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, delete, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from registry.models import Base, Person, PersonRole

FORMAT = 1
# The edge's own: never overwritten from the centre (new tables are replicated unless named here).
LOCAL_TABLES = frozenset(
    {
        "journal",
        "accepted_records",
        "dead_letters",
        "register_changes",
        "site_file_loads",
        "auth_sessions",
        "login_failures",
        # The site's own alarm book: its ids are the site's (not unique across sites), its state the site's
        # guards'. The centre holds every site's alarm records in its journal; see the notes.
        "alarms",
    }
)
DEVICE_TABLES = ("devices", "antennas")  # filtered by the site's device names
EDGE_ROLES = frozenset({"guard", "destruction_operator", "witness"})  # whose passwords an edge checks


class ReplicaError(ValueError):
    """A snapshot blob that cannot be read (format, compression, JSON)."""


@dataclass(frozen=True)
class RegisterReplica:
    """site: whom it was compiled for; version: the centre's register change position; applied: site/node ->
    highest record seq the centre's register holds; tables: name -> (columns, rows)."""

    site: str
    version: int
    compiled_at_us: int
    applied: dict[str, int]
    tables: dict[str, tuple[tuple[str, ...], list[list[Any]]]] = field(repr=False)

    def applied_for(self, site: str, node: str) -> int:
        return self.applied.get(f"{site}/{node}", 0)

    def encode(self) -> bytes:
        doc = {
            "format": FORMAT,
            "site": self.site,
            "version": self.version,
            "compiled_at_us": self.compiled_at_us,
            "applied": self.applied,
            "tables": {name: {"columns": list(cols), "rows": rows} for name, (cols, rows) in self.tables.items()},
        }
        return zlib.compress(json.dumps(doc, default=_encode_value, separators=(",", ":")).encode(), 6)

    @classmethod
    def decode(cls, blob: bytes) -> RegisterReplica:
        try:
            doc = json.loads(zlib.decompress(blob), object_hook=_decode_value)
            if doc.get("format") != FORMAT:
                raise ReplicaError(f"snapshot format {doc.get('format')!r}, this edge reads {FORMAT}")
            tables = {n: (tuple(t["columns"]), t["rows"]) for n, t in doc["tables"].items()}
            return cls(doc["site"], int(doc["version"]), int(doc["compiled_at_us"]), dict(doc["applied"]), tables)
        except (zlib.error, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, ReplicaError):
                raise
            raise ReplicaError(f"snapshot blob unreadable: {type(exc).__name__}: {exc}") from exc


def _encode_value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$d": value.isoformat()}
    if isinstance(value, bytes | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    raise TypeError(f"cannot put a {type(value).__name__} in a snapshot")


def _decode_value(obj: dict[str, Any]) -> object:
    if len(obj) == 1:
        ((tag, value),) = obj.items()
        if tag == "$dt":
            return dt.datetime.fromisoformat(value)
        if tag == "$d":
            return dt.date.fromisoformat(value)
        if tag == "$b":
            return base64.b64decode(value)
        if tag == "$n":
            return Decimal(value)
    return obj


def replicated_tables() -> list[Table]:
    """The register's tables a snapshot carries, parents before children."""
    return [t for t in Base.metadata.sorted_tables if t.name not in LOCAL_TABLES]


def compile_replica(
    session: Session,
    site: str,
    devices: Iterable[str],
    *,
    version: int,
    compiled_at_us: int,
    applied: dict[str, int],
    people: Iterable[str] = (),
) -> RegisterReplica:
    """The register as `session` sees it (run it in one repeatable-read transaction), for `site`, whose
    devices are named `devices` and whose people (usernames) are `people`. applied: the ledger position per
    node as known before the transaction began (a lower bound of what the rows contain: an edge may wait for a
    later snapshot, never load one that lacks its records)."""
    wanted = set(devices)
    workers = set(
        session.execute(
            select(Person.id).join(PersonRole).where(PersonRole.role.in_(EDGE_ROLES), Person.username.in_(set(people)))
        ).scalars()
    )
    tables: dict[str, tuple[tuple[str, ...], list[list[Any]]]] = {}
    device_ids: set[int] = set()
    for table in replicated_tables():
        columns = tuple(c.name for c in table.columns)
        rows = [list(r) for r in session.execute(select(table).order_by(*table.primary_key.columns))]
        if table.name == "devices":
            index = columns.index("name")
            rows = [r for r in rows if r[index] in wanted]
            device_ids = {r[columns.index("id")] for r in rows}
        elif table.name == "antennas":
            rows = [r for r in rows if r[columns.index("device_id")] in device_ids]
        elif table.name == "people":
            key, secret = columns.index("id"), columns.index("password_hash")
            for row in rows:
                if row[key] not in workers:
                    row[secret] = None
        tables[table.name] = (columns, rows)
    return RegisterReplica(site, version, compiled_at_us, dict(applied), tables)


def load_replica(factory: sessionmaker[Session], replica: RegisterReplica) -> int:
    """Replace the local register's replicated rows by the snapshot's, in one transaction; returns the rows
    written. Columns the local schema lacks are dropped, columns the snapshot lacks take their defaults."""
    local = replicated_tables()
    written = 0
    with factory() as session, session.begin():
        session.info["origin"] = "replica"
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("PRAGMA defer_foreign_keys=ON"))  # checked at commit, on the whole new state
        for table in reversed(local):
            session.execute(delete(table))
        for table in local:
            if table.name not in replica.tables:
                continue
            columns, rows = replica.tables[table.name]
            keep = [k for k, name in enumerate(columns) if name in table.columns]
            if rows:
                names = [columns[k] for k in keep]
                session.execute(insert(table), [dict(zip(names, (r[k] for k in keep), strict=True)) for r in rows])
                written += len(rows)
    return written

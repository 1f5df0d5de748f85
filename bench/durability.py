"""Durability: events accepted per second by the recorder, each written to the hash-chained journal in
batched, committed transactions (SQLite with synchronous=FULL, and PostgreSQL), after the local spool is
fsynced. Reference in the same run: the same rows inserted plainly (no chain, no spool) in one transaction.
Usage: python bench/durability.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controllers.recorder import Record, Recorder
from registry import db
from registry.models import JournalEntry

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def recorder_rate(engine: Engine, events: int, spool: Path) -> float:
    recorder = Recorder(db.session_factory(engine), spool).start()
    started = time.perf_counter()
    for n in range(events):
        recorder.submit(Record("bench", "movement.crossed", f"item:{n}", {"n": n, "portal": "main-exit"}))
    assert recorder.flush(600), "recorder did not drain"
    elapsed = time.perf_counter() - started
    recorder.stop()
    return events / elapsed


def plain_rate(engine: Engine, events: int) -> float:
    rows = [
        {
            "seq": 10_000_000 + n,
            "at": "",
            "actor": "bench",
            "action": "plain",
            "subject": str(n),
            "payload": "{}",
            "prev_hash": "",
            "hash": "",
        }
        for n in range(events)
    ]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(JournalEntry), rows)
    return events / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    events = 20_000 if args.quick else 100_000
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = db.make_engine(f"sqlite:///{tmp}/bench.db")
        db.upgrade(sqlite)
        figures["sqlite_events_per_s"] = recorder_rate(sqlite, events, Path(tmp) / "spool1")
        figures["sqlite_plain_insert_per_s"] = plain_rate(sqlite, events)
        sqlite.dispose()
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = db.make_engine(PG)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            pg = db.make_engine(PG, connect_args={"options": f"-csearch_path={schema}"})
            db.upgrade(pg)
            figures["postgresql_events_per_s"] = recorder_rate(pg, events, Path(tmp) / "spool2")
            figures["postgresql_plain_insert_per_s"] = plain_rate(pg, events)
            pg.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    figures["sqlite_vs_plain"] = figures["sqlite_events_per_s"] / figures["sqlite_plain_insert_per_s"]
    figures["postgresql_vs_plain"] = figures["postgresql_events_per_s"] / figures["postgresql_plain_insert_per_s"]
    for key, value in figures.items():
        print(f"{key:34} {value:14.2f}")
    print("target: >= 50k events/s batched (benchmarks.md)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

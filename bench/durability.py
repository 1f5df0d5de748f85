"""Durability: events accepted per second, each durable in the local log (fdatasync'd) and then delivered to
the register exactly once (hash-chained journal entry + ledger row, committed; SQLite with synchronous=FULL,
and PostgreSQL), end to end. Reference in the same run: the same journal rows bulk-inserted plainly in one
transaction (executemany on SQLite, COPY on PostgreSQL), with no chain, no ledger and no local log.

Also: the durable-before-strike cost (one decision accepted into the local log, the wait a door has before
it is released), and crossings, which carry a register effect (the item moves), end to end.
Usage: python bench/durability.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controllers.recorder import Recorder
from controllers.records import ExitDecision, ItemCrossed, RecordId
from registry import db, journal
from registry.models import JournalEntry
from registry.sitefile import load

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SITE = Path(__file__).resolve().parents[1] / "examples" / "site.toml"
ACCEPT_BATCH = 500  # records per accept, as a busy tick hands them over: one fdatasync each


def decision(n: int) -> ExitDecision:
    return ExitDecision(
        portal="main-exit", person="carol", allow=False, badge="20004", items=(f"S-2026-{n % 1000:03d}/1",),
        reasons=("approval_missing",), approvals=(), time_us=1_790_000_000_000_000 + n,
    )


def end_to_end(engine: Engine, records: list, log_dir: Path) -> tuple[float, float, float]:
    """(events/s accepted and delivered, events/s accepted into the local log alone, this process's CPU
    microseconds per event: a figure a busy machine does not distort)."""
    recorder = Recorder(db.session_factory(engine), log_dir).start()
    # As `custodian run` after start-up: what lives for the whole run (here also the bench's own input records,
    # which a site does not keep) is frozen, so the collector does not walk it at every full collection.
    gc.collect()
    gc.freeze()
    try:
        cpu = time.process_time()
        started = time.perf_counter()
        for i in range(0, len(records), ACCEPT_BATCH):
            recorder.accept(records[i : i + ACCEPT_BATCH])
        accept_s = time.perf_counter() - started
        assert recorder.flush(600), "recorder did not drain"
        elapsed = time.perf_counter() - started
        cpu_us = (time.process_time() - cpu) / len(records) * 1e6
    finally:
        gc.unfreeze()
    assert recorder.stop() == 0
    return len(records) / elapsed, len(records) / accept_s, cpu_us


def durable_before_strike_us(log_dir: Path, engine: Engine, samples: int) -> list[float]:
    """Time to accept one exit decision into the local log (the door waits for this), microseconds."""
    recorder = Recorder(db.session_factory(engine), log_dir).start()
    times = []
    for n in range(samples):
        t = time.perf_counter_ns()
        recorder.accept([decision(n)])
        times.append((time.perf_counter_ns() - t) / 1000)
    recorder.flush(60)
    recorder.stop()
    return times


def plain_rate(engine: Engine, events: int, run: int) -> float:
    """The same journal rows, bulk-inserted with no chain, ledger or local log."""
    payload = journal.canonical_json(decision(0).payload(RecordId("bench", "node", 1)))
    rows = [
        {"seq": 10_000_000 * (run + 1) + n, "at": "2026-11-23T00:00:00.000000+00:00", "actor": "carol",
         "action": "exit.decision", "subject": "portal:main-exit", "payload": payload, "prev_hash": "0" * 64,
         "hash": "0" * 64}
        for n in range(events)
    ]
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            columns = ", ".join(rows[0])
            with cursor.copy(f"COPY journal ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row.values()))
    else:
        with engine.begin() as conn:
            conn.execute(insert(JournalEntry), rows)
    return events / (time.perf_counter() - started)


def crossings(engine: Engine, events: int, log_dir: Path) -> float:
    """Crossings end to end: each moves its item in the register (through the movement service)."""
    factory = db.session_factory(engine)
    with db.transaction(factory) as session:
        load(session, "bench", SITE)
    with factory() as session:
        ids = dict(session.execute(text("SELECT id, epc FROM items")).all())
        venues = [v for (v,) in session.execute(text("SELECT id FROM venues WHERE ceiling >= 3")).all()]
    records = [
        ItemCrossed(item_id=item_id, item=str(item_id), epc=ids[item_id], portal="archive-door",
                    from_venue="archive", to_venue="corridor", to_venue_id=venues[n % len(venues)],
                    direction="exit", time_us=n, emergency_release=False)
        for n in range(events) for item_id in [list(ids)[n % len(ids)]]
    ]
    return end_to_end(engine, records, log_dir)[0]


def measure(engine: Engine, events: int, tmp: Path, name: str, figures: dict[str, float]) -> None:
    db.upgrade(engine)
    records = [decision(n) for n in range(events)]
    rates = [end_to_end(engine, records, tmp / f"{name}-log{k}") for k in range(3)]
    figures[f"{name}_events_per_s"] = statistics.median(r[0] for r in rates)
    figures[f"{name}_accept_only_per_s"] = statistics.median(r[1] for r in rates)
    figures[f"{name}_cpu_us_per_event"] = statistics.median(r[2] for r in rates)
    figures[f"{name}_plain_insert_per_s"] = statistics.median(plain_rate(engine, events, k) for k in range(3))
    figures[f"{name}_vs_plain"] = figures[f"{name}_events_per_s"] / figures[f"{name}_plain_insert_per_s"]
    figures[f"{name}_crossings_per_s"] = crossings(engine, max(events // 10, 1000), tmp / f"{name}-crossings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    events = 20_000 if args.quick else 100_000
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sqlite = db.make_engine(f"sqlite:///{tmp}/bench.db")
        measure(sqlite, events, tmp, "sqlite", figures)
        strike = durable_before_strike_us(tmp / "strike-log", sqlite, 300 if args.quick else 2000)
        sqlite.dispose()
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = db.make_engine(PG)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            pg = db.make_engine(PG, connect_args={"options": f"-csearch_path={schema}"})
            measure(pg, events, tmp, "postgresql", figures)
            pg.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    strike.sort()
    figures["durable_before_strike_p50_us"] = strike[len(strike) // 2]
    figures["durable_before_strike_p99_us"] = strike[min(len(strike) - 1, round(0.99 * (len(strike) - 1)))]
    for key, value in figures.items():
        print(f"{key:36} {value:14.2f}")
    print("target: >= 50k events/s end to end on both backends (benchmarks.md); durable-before-strike a small share")
    print("        of the wire path (card -> strike is 130-450 ms, bench/exit_latency.py)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

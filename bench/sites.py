"""Many sites: records from the edges through JetStream (leaf node -> sourced centre stream -> durable consumer)
into PostgreSQL at the centre, against the same rows bulk-loaded with COPY in the same run; edge-to-register
lag while connected; time to drain a backlog after a partition; the edge's publish rate with and without
an fsync per write; what a door waits for per tick (local log against a JetStream ack); the product's
centre write into the register (journal + ledger).
Usage: python bench/sites.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multisite import servers
from multisite.centre import CentreIngest
from multisite.edge import SyncEdgePublisher
from multisite.envelope import RecordEnvelope
from multisite.pgsink import PostgresSink

PG = "postgresql://postgres@127.0.0.1:5432/test"
SITES = ("site-a", "site-b")
BODY = b'{"portal":"main-exit","item":"S-2026-001/1","decision":"allow","reasons":["4.2","4.8"]}'


def envelopes(site: str, start: int, count: int, at_us: int = 1_700_000_000_000_000) -> list[RecordEnvelope]:
    return [RecordEnvelope(f"{site}:n1:{seq}", site, "decision", at_us, BODY) for seq in range(start, start + count)]


def publish_all(url: str, site: str, total: int, batch: int = 5000) -> float:
    """Accepted records per second at one edge."""
    with SyncEdgePublisher(url, site) as publisher:
        started = time.perf_counter()
        for start in range(0, total, batch):
            outcomes = publisher.publish(envelopes(site, start, min(batch, total - start)))
            assert all(o.accepted for o in outcomes), "bench publish refused"
        return total / (time.perf_counter() - started)


def edge_rate(workdir: Path, sync_always: bool, total: int) -> float:
    server = servers.NatsServer("edge-rate", workdir, "edge", sync_always=sync_always).start()
    try:
        return publish_all(server.url, "edge", total)
    finally:
        server.stop()


def tick_latency_ms(workdir: Path, ticks: int = 200, per_tick: int = 10) -> tuple[float, float, float, float]:
    """What a door waits for before it acts, per tick of `per_tick` records: the recorder's local log
    (write + fdatasync, in process) against a JetStream publish to an fsyncing leaf (request, store, fsync,
    ack). Returns (local p50, local p99, jetstream p50, jetstream p99) in ms."""
    from controllers.outbox import Entry, LocalLog

    local = LocalLog(workdir / "log", "bench", "n1")
    local.open()
    entry = Entry(0, "decision", "system", "exit.decision", "portal:main-exit", BODY.decode())
    local_ms = []
    for _ in range(ticks):
        started = time.perf_counter()
        local.append(lambda first: [entry] * per_tick)
        local_ms.append((time.perf_counter() - started) * 1e3)
    local.close()
    server = servers.NatsServer("edge-tick", workdir / "leaf", "edge", sync_always=True).start()
    js_ms = []
    try:
        with SyncEdgePublisher(server.url, "edge") as publisher:
            for tick in range(ticks):
                started = time.perf_counter()
                assert all(o.accepted for o in publisher.publish(envelopes("edge", tick * per_tick, per_tick)))
                js_ms.append((time.perf_counter() - started) * 1e3)
    finally:
        server.stop()

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))]

    return pct(local_ms, 0.5), pct(local_ms, 0.99), pct(js_ms, 0.5), pct(js_ms, 0.99)


def register_sink_rate(total: int) -> float:
    """The product's centre write: records into the register (journal entry, ledger row) by RegisterSink."""
    from controllers.outbox import Frame
    from controllers.recorder import Identity
    from multisite.shipping import RegisterSink, frame_envelope
    from registry import db

    schema = f"bench_reg_{uuid.uuid4().hex[:8]}"
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    engine = db.make_engine(f"{url}?options=-csearch_path%3D{schema}")
    try:
        db.upgrade(engine)
        sink = RegisterSink(db.session_factory(engine))
        node = Identity("site-a", "n1")
        body = BODY.decode()
        rows = [
            frame_envelope(node, Frame(seq, 0, "decision", "system", "exit.decision", "portal:x", body, 0, 0), 0)
            for seq in range(1, total + 1)
        ]
        started = time.perf_counter()
        for start in range(0, total, 2000):
            sink.apply(rows[start : start + 2000])
        return total / (time.perf_counter() - started)
    finally:
        engine.dispose()
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def copy_rate(schema: str, rows: list[RecordEnvelope]) -> float:
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{schema}".copied (record_id text PRIMARY KEY, site text NOT NULL, kind text NOT NULL,'
            " at_us bigint NOT NULL, body bytea NOT NULL)"
        )
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(
            f'COPY "{schema}".copied (record_id, site, kind, at_us, body) FROM STDIN'
        ) as copy:
            for e in rows:
                copy.write_row((e.record_id, e.site, e.kind, e.at_us, e.body))
        return len(rows) / (time.perf_counter() - started)


def upsert_rate(schema: str, rows: list[RecordEnvelope], batch: int = 5000) -> float:
    """The centre's own write alone: PostgresSink.apply (INSERT ... ON CONFLICT DO NOTHING) in batches."""
    sink = PostgresSink(PG, schema, "upserted")
    try:
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            sink.apply(rows[start : start + batch])
        return len(rows) / (time.perf_counter() - started)
    finally:
        sink.close()


def lag_percentiles(schema: str, since_us: int) -> tuple[float, float, int]:
    with psycopg.connect(PG) as conn:
        row = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.99) WITHIN GROUP"
            " (ORDER BY lag), count(*) FROM (SELECT extract(epoch FROM written_at) * 1e6 - at_us AS lag"
            f' FROM "{schema}".site_records WHERE at_us >= %s) AS t',
            (since_us,),
        ).fetchone()
    assert row is not None
    return float(row[0]) / 1e3, float(row[1]) / 1e3, int(row[2])


def paced_publisher(url: str, site: str, start: int, rate: int, seconds: float) -> None:
    """`rate` records per second in batches every 20 ms, each stamped with the time it was handed over."""
    per_tick = max(1, rate // 50)
    with SyncEdgePublisher(url, site) as publisher:
        seq, began = start, time.monotonic()
        while time.monotonic() - began < seconds:
            now_us = time.time_ns() // 1000
            batch = envelopes(site, seq, per_tick, at_us=now_us)
            assert all(o.accepted for o in publisher.publish(batch))
            seq += per_tick
            time.sleep(max(0.0, began + (seq - start) / rate - time.monotonic()))


def consume(hub_url: str, schema: str, partition: list[str], name: str, ready, stop) -> None:
    """One centre consumer process writing `partition`'s records (the centre's unit of scale-out)."""
    sink = PostgresSink(PG, schema)
    with CentreIngest(hub_url, sink, list(SITES), durable=name, consume=partition, batch=5000):
        ready.release()
        stop.wait()
    sink.close()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_rows(sink: PostgresSink, rows: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while sink.count() < rows:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {sink.count()} of {rows} rows reached the register")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--consumers", type=int, default=len(SITES), help="centre consumer processes (1 or 2)")
    args = parser.parse_args()
    backlog = 50_000 if args.quick else 500_000  # per site; two sites
    lag_rate, lag_s = (1000, 5.0) if args.quick else (2000, 20.0)
    edge_total = 5_000 if args.quick else 20_000

    schema = f"bench_sites_{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-sites-"))
    hub = servers.hub(workdir / "hub").start()
    links = {s: servers.LinkProxy(hub.leaf_port) for s in SITES}  # type: ignore[arg-type]
    # fsync off at the bench's leaves so the backlog fills fast; the edge's fsync cost is measured apart.
    leaves = {s: servers.leaf(workdir / s, s, links[s].port, sync_always=False).start() for s in SITES}
    hub.wait_leaf_connections(len(SITES))
    for s in SITES:  # the site streams before the centre's sources, which otherwise retry for ~10 s
        with SyncEdgePublisher(leaves[s].url, s):
            pass
    sink = PostgresSink(PG, schema)
    results: dict[str, float] = {}
    context = multiprocessing.get_context("spawn")
    stop, ready = context.Event(), context.Semaphore(0)
    partitions = [list(SITES)] if args.consumers == 1 else [[site] for site in SITES]
    consumers = [
        context.Process(target=consume, args=(hub.url, schema, part, f"bench-{n}", ready, stop))
        for n, part in enumerate(partitions)
    ]
    try:
        for process in consumers:
            process.start()
        for _ in consumers:
            assert ready.acquire(timeout=60), "a consumer did not start"
        # Warm-up: one record per site through the whole path, so every source is running before timing.
        for s in SITES:
            with SyncEdgePublisher(leaves[s].url, s) as publisher:
                assert all(o.accepted for o in publisher.publish(envelopes(s, 20_000_000, 1)))
        wait_rows(sink, len(SITES), 60)
        # 1. Lag while connected: paced edges, written_at - at_us in the register.
        since = time.time_ns() // 1000
        threads = [
            threading.Thread(target=paced_publisher, args=(leaves[s].url, s, 10_000_000, lag_rate, lag_s))
            for s in SITES
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lag_total = len(SITES) * (lag_rate // 50) * round(lag_s * 50)
        wait_rows(sink, int(lag_total * 0.9), 120)
        time.sleep(1.0)
        results["lag_p50_ms"], results["lag_p99_ms"], lag_rows = lag_percentiles(schema, since)

        # 2. A partition: both sites cut, a backlog accepted at each edge, then healed and drained.
        for s in SITES:
            links[s].cut()
        hub.wait_leaf_connections(0)
        before = sink.count()
        fill_started = time.perf_counter()
        rates = [publish_all(leaves[s].url, s, backlog) for s in SITES]
        results["edge_fill_s"] = time.perf_counter() - fill_started
        results["edge_publish_per_s_no_fsync"] = sum(rates) / len(rates)
        server_pids = [server.process.pid for server in (hub, *leaves.values()) if server.process]
        servers_cpu = sum(cpu_s(pid) for pid in server_pids)
        healed = time.perf_counter()
        for s in SITES:
            links[s].heal()
        wait_rows(sink, before + backlog * len(SITES), 900)
        results["drain_s"] = time.perf_counter() - healed
        results["pipeline_per_s"] = backlog * len(SITES) / results["drain_s"]
        servers_cpu = sum(cpu_s(pid) for pid in server_pids) - servers_cpu
        stop.set()
        for process in consumers:
            process.join(30)
        # CPU per record is what a quiet machine's rate follows from (the consumers' include the lag phase).
        consumers_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        drained_total = sink.count()
        results["consumer_cpu_us_per_record"] = (consumers_cpu.ru_utime + consumers_cpu.ru_stime) / drained_total * 1e6
        results["nats_servers_cpu_us_per_record"] = servers_cpu / (backlog * len(SITES)) * 1e6

        # 3. The reference: the same rows bulk-loaded with COPY into PostgreSQL.
        rows = [e for s in SITES for e in envelopes(s, 0, backlog)]
        results["copy_per_s"] = copy_rate(schema, rows)
        results["sink_upsert_per_s"] = upsert_rate(schema, rows)
        del rows
        # 4. One edge's accepted records per second, fsync per write (the default) and without.
        results["edge_publish_per_s_fsync"] = edge_rate(workdir / "edge-fsync", True, edge_total)
        # 5. What a door waits for per tick: the local log, or a JetStream ack from an fsyncing leaf.
        (results["tick_local_log_p50_ms"], results["tick_local_log_p99_ms"], results["tick_jetstream_p50_ms"],
         results["tick_jetstream_p99_ms"]) = tick_latency_ms(workdir / "ticks")
        # 6. The product's centre write into the register (journal + ledger), alone.
        results["register_sink_per_s"] = register_sink_rate(5_000 if args.quick else 50_000)
    finally:
        stop.set()
        for process in consumers:
            process.join(30)
            if process.is_alive():
                process.kill()
        sink.close()
        for s in SITES:
            leaves[s].stop()
            links[s].close()
        hub.stop()
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    total = backlog * len(SITES)
    print(f"{'figure':58} {'value':>12}")
    pipeline = f"edges -> JetStream -> PostgreSQL, records/s ({len(partitions)} consumers)"
    print(f"{pipeline:58} {results['pipeline_per_s']:>12,.0f}")
    print(f"{'COPY of the same rows, records/s (reference)':58} {results['copy_per_s']:>12,.0f}")
    print(f"{'PostgresSink.apply alone (COPY + INSERT ON CONFLICT), rec/s':58} {results['sink_upsert_per_s']:>12,.0f}")
    print(f"{'  pipeline / COPY':58} {results['pipeline_per_s'] / results['copy_per_s']:>12.2f}")
    print(f"{f'drain of a {total:,}-record backlog after the partition, s':58} {results['drain_s']:>12.2f}")
    print(f"{f'edge-to-register lag p50 / p99, ms ({lag_rows:,} records)':58} "
          f"{results['lag_p50_ms']:>5.1f} / {results['lag_p99_ms']:.1f}")
    print(f"{'centre consumers, CPU us per record':58} {results['consumer_cpu_us_per_record']:>12.1f}")
    print(f"{'nats-server hub + leaves during the drain, CPU us per record':58} "
          f"{results['nats_servers_cpu_us_per_record']:>12.1f}")
    fsync = results["edge_publish_per_s_fsync"]
    print(f"{'one edge, accepted records/s, fsync per write (default)':58} {fsync:>12,.0f}")
    print(f"{'one edge, accepted records/s, no fsync':58} {results['edge_publish_per_s_no_fsync']:>12,.0f}")
    print(f"{'one tick of 10 records durable: local log p50 / p99, ms':58} "
          f"{results['tick_local_log_p50_ms']:>5.2f} / {results['tick_local_log_p99_ms']:.2f}")
    print(f"{'one tick of 10 records durable: JetStream ack p50 / p99, ms':58} "
          f"{results['tick_jetstream_p50_ms']:>5.2f} / {results['tick_jetstream_p99_ms']:.2f}")
    print(f"{'RegisterSink into the register (journal + ledger), rec/s':58} {results['register_sink_per_s']:>12,.0f}")
    rounded = {k: round(v, 3) for k, v in results.items()}
    summary = {"bench": "sites", "quick": args.quick, "consumers": len(partitions), "backlog_records": total, **rounded}
    if args.json:
        args.json.write_text(json.dumps(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

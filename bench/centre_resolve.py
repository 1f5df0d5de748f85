"""A guard resolves an alarm at the centre's station: the time from the POST until the owning edge's book has it
resolved, and until another centre station's book shows it (real hub and leaf, one edge with its simulated door,
the centre's web server over HTTP). With --load, the edge records alarms at that rate meanwhile.
Usage: python bench/centre_resolve.py [--alarms N] [--load RECORDS_PER_S] [--db URL] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controllers.records import AlarmRaised
from multisite.centre_site import CentreOptions, CentreSite
from multisite.demo_sites import demo_sites
from multisite.edge_site import EdgeOptions, EdgeSite
from registry import db
from registry.passwords import hash_password
from registry.services import lookup, people

PASSWORD = "bench-guard-2026"


def station(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = client.post("/api/token", data={"username": username, "password": PASSWORD}).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def shown(client: httpx.Client) -> dict[int, str]:
    return {a["id"]: a["state"] for a in client.get("/api/centre/alarms").json() if a["site"] == "site-a"}


def wait(predicate, timeout_s: float = 30.0, every_s: float = 0.005) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError("not seen in time")
        time.sleep(every_s)
    return time.monotonic()


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=30)
    parser.add_argument("--load", type=float, default=500.0, help="alarm records per second at the edge meanwhile")
    parser.add_argument("--db")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = min(args.alarms, 10) if args.quick else args.alarms
    root = Path(tempfile.mkdtemp(prefix="bench-centre-resolve-"))
    demo = demo_sites(1)[0]
    url = args.db or f"sqlite:///{root / 'centre.db'}"
    centre = CentreSite(CentreOptions(url, (demo.write(root / "files"),), root / "centre", web_port=0)).start()
    edge = EdgeSite(EdgeOptions(demo.code, root / demo.code, centre.hub_leaf, simulate=True, backend="reference",
                                leaf_password=centre.leaf_password(demo.code)))
    stop = threading.Event()
    at_edge: list[float] = []
    at_other: list[float] = []
    answered: list[float] = []
    try:
        edge.start()
        assert edge.running is not None and centre.web is not None
        edge.running.wait_ready()
        with db.transaction(centre.factory) as session:
            people.set_password_hash(session, "bench", lookup.person(session, "site-a-gus"), hash_password(PASSWORD))
        book = edge.running.runtime.alarms_book
        ids = [book.raise_alarm("tamper", time.time_ns() // 1000, f"site-a-panel-{n}").alarm_id for n in range(count)]
        one, two = station(centre.web.url, "site-a-gus"), station(centre.web.url, "site-a-gus")  # two stations
        wait(lambda: set(ids) <= set(shown(two)), 60, 0.1)
        for n in ids:
            assert one.post(f"/api/centre/sites/site-a/alarms/{n}/ack", json={}).status_code == 200
        wait(lambda: all(shown(two).get(n) == "acknowledged" for n in ids), 60, 0.1)
        recorder = edge.running.runtime.recorder

        def load() -> None:
            n = 0
            while not stop.wait(0.02):
                batch = max(1, int(args.load * 0.02))
                recorder.accept([AlarmRaised(alarm="bench_load", source="site", detail=f"n {n + k}", time_us=n + k)
                                 for k in range(batch)])
                n += batch

        loader = threading.Thread(target=load, daemon=True)
        if args.load > 0:
            loader.start()
        with ThreadPoolExecutor(1) as guard:  # the POST answers once the edge confirmed: watch both meanwhile
            for n in ids:
                sent = time.monotonic()
                answer = guard.submit(one.post, f"/api/centre/sites/site-a/alarms/{n}/resolve",
                                      json={"note": "bench: closed"})
                at_edge.append(wait(lambda n=n: book.get(n).state == "resolved") - sent)
                at_other.append(wait(lambda n=n: n not in shown(two), every_s=0.02) - sent)
                answered.append(wait(answer.done) - sent)
                assert answer.result().status_code == 200
        one.close()
        two.close()
    finally:
        stop.set()
        edge.stop()
        centre.stop()
    rows = [("at the owning edge's book", at_edge), ("at another centre station", at_other),
            ("the POST answered", answered)]
    print(f"resolution from a centre station, {count} alarms, edge load {args.load:g} records/s "
          f"(from the POST; it answers once the edge's record is back, at most 3 s)")
    print(f"{'where':30} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for name, values in rows:
        print(f"{name:30} {statistics.median(values) * 1e3:8.1f} {pct(values, 0.9) * 1e3:8.1f} "
              f"{max(values) * 1e3:8.1f}")
    print(json.dumps({"alarms": count, "load_records_per_s": args.load,
                      "edge_p50_ms": round(statistics.median(at_edge) * 1e3, 1),
                      "edge_p90_ms": round(pct(at_edge, 0.9) * 1e3, 1),
                      "other_station_p50_ms": round(statistics.median(at_other) * 1e3, 1),
                      "other_station_p90_ms": round(pct(at_other, 0.9) * 1e3, 1),
                      "answered_p50_ms": round(statistics.median(answered) * 1e3, 1)}))


if __name__ == "__main__":
    main()

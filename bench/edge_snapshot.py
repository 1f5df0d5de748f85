"""A register change at the centre to a connected edge's engine: the time from the centre's commit until the
edge's engine decides with it (centre on SQLite or --db, one edge with its simulated door, real hub and leaf).
Usage: python bench/edge_snapshot.py [--changes N] [--db URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multisite.centre_site import CentreOptions, CentreSite
from multisite.demo_sites import demo_sites
from multisite.edge_site import EdgeOptions, EdgeSite
from registry import db
from registry.services import approvals, lookup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--db")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-edge-snapshot-"))
    demo = demo_sites(1)[0]
    url = args.db or f"sqlite:///{root / 'centre.db'}"
    centre = CentreSite(CentreOptions(url, (demo.write(root / "files"),), root / "centre")).start()
    edge = EdgeSite(EdgeOptions(demo.code, root / demo.code, centre.hub_leaf, simulate=True, backend="reference",
                                leaf_password=centre.leaf_password(demo.code)))
    latencies = []
    try:
        edge.start()
        assert edge.running is not None
        for n in range(args.changes):
            now = dt.datetime.now(dt.UTC)
            with db.transaction(centre.factory) as session:
                ref = f"A-{demo.code}-{1000 + n}"
                request = approvals.ApprovalRequest(
                    ref=ref, kind="carry_out", items=(f"S-{demo.code}-002",), people=(f"{demo.code}-carol",),
                    portal=None, valid_from=now, valid_until=now + dt.timedelta(days=1), uses=1, reason="bench",
                )
                approvals.request(session, f"{demo.code}-carol", request)
                approval = approvals.approve(session, f"{demo.code}-paul", lookup.approval(session, ref), "ok")
            committed = time.perf_counter()
            while approval.id not in {int(a) for a in edge.running.runtime.engine.snapshot.appr_ids}:
                if time.perf_counter() - committed > 30:
                    raise SystemExit(f"change {n} did not reach the edge in 30 s")
                time.sleep(0.005)
            latencies.append(time.perf_counter() - committed)
            time.sleep(0.3)
    finally:
        edge.stop()
        centre.stop()
    ordered = sorted(latencies)
    summary = {
        "bench": "edge_snapshot",
        "changes": len(latencies),
        "p50_s": round(statistics.median(ordered), 3),
        "max_s": round(ordered[-1], 3),
        "publish_s_median": round(statistics.median(centre.stats.seconds), 4) if centre.stats.seconds else None,
    }
    print(f"register change at the centre -> edge engine: p50 {summary['p50_s']} s, max {summary['max_s']} s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

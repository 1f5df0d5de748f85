"""A site cut off from the centre keeps accepting records and deciding from its snapshot; after healing, the
register holds every record exactly once and the edge has what the centre changed meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from multisite.centre import CentreIngest
from multisite.edge import SyncEdgePublisher
from multisite.pgsink import PostgresSink
from multisite.register import CentreRegister, EdgeRegister, RegisterChange, now_us
from tests.multisite.conftest import LONG, accepted, records, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N, M = (20_000, 50_000) if LONG else (1_500, 2_500)


def test_partition_loses_nothing_and_doubles_nothing(topology, pg, tmp_path: Path) -> None:
    top = topology("site-a", "site-b")
    # The edges first: a source whose site stream does not exist yet waits out the server's retry (~10 s).
    pub_a = SyncEdgePublisher(top.leaves["site-a"].url, "site-a")
    pub_b = SyncEdgePublisher(top.leaves["site-b"].url, "site-b")
    sink = PostgresSink(pg.dsn, pg.schema)
    ingest = CentreIngest(top.hub.url, sink, ["site-a", "site-b"])
    register = CentreRegister(top.hub.url, beat_s=0.2)
    register.publish_snapshot("site-a", 1, now_us(), b"register v1")
    register.put_change(RegisterChange("site-a", "approval_granted", "A1", now_us()))
    edge = EdgeRegister(top.leaves["site-a"].url, "site-a", tmp_path / "cache-a")
    try:
        # Connected: N records from site-a and some from site-b reach the register.
        before = records("site-a", "n1", 0, N)
        assert accepted(pub_a.publish(before))
        assert accepted(pub_b.publish(records("site-b", "n1", 0, 500)), duplicate=None)
        assert ingest.wait_drained(30)
        assert sink.count() == N + 500
        wait_until(lambda: edge.snapshot is not None and edge.pending_changes() != [], what="v1 and A1 at the edge")

        # Cut site-a's link only; the hub stays up for site-b.
        top.cut("site-a")
        during = records("site-a", "n1", N, M)
        outcomes = pub_a.publish(during)
        assert accepted(outcomes), "the edge accepts locally while cut off"
        assert accepted(pub_b.publish(records("site-b", "n1", 500, 500)), duplicate=None), "site-b unaffected"

        # The register changes at the centre meanwhile: a new snapshot and a revocation.
        revoked_at = now_us()
        register.put_change(RegisterChange("all", "badge_revoked", "B42", revoked_at))
        register.publish_snapshot("site-a", 2, now_us(), b"register v2")
        time.sleep(0.5)
        # The edge still decides from v1 and does not know of the revocation: that is the documented window.
        assert edge.snapshot is not None and edge.snapshot.head.version == 1
        assert all(c.subject != "B42" for c in edge.changes())
        status = edge.status()
        assert status.unknown_for_s >= 0.5 and status.synced_at_us < revoked_at
        lagging = {s.site: s for s in ingest.sources()}
        assert lagging["site-a"].active_s is not None and lagging["site-a"].active_s >= 0.5

        top.heal("site-a")
        assert ingest.wait_drained(60)
        assert sorted(pg.ids()) == sorted(
            [e.record_id for e in before + during]
            + [e.record_id for e in records("site-b", "n1", 0, 1000)]
        ), "exactly N + M from site-a (and site-b's), no duplicates"
        assert sink.count() == N + M + 1000

        wait_until(lambda: edge.snapshot is not None and edge.snapshot.head.version == 2, what="v2 at the edge")
        assert edge.snapshot.blob == b"register v2"
        assert any(c.subject == "B42" for c in edge.changes()), "the revocation reached the edge"
        assert all(c.subject != "B42" for c in edge.pending_changes()), "and v2, compiled after it, contains it"
        wait_until(lambda: edge.status().synced_at_us > revoked_at, what="a beat after the revocation")

        # Republished records come back as duplicates (the same records, the same batches: the outbox replays
        # them so); cut another way they are stored again and the register drops them. One copy of each.
        assert accepted(pub_a.publish(before), duplicate=True)
        assert accepted(pub_a.publish(during), duplicate=True)
        assert accepted(pub_a.publish(before[:5] + during[-5:]), duplicate=None)
        assert ingest.wait_drained(10)
        assert sink.count() == N + M + 1000
    finally:
        edge.close()
        pub_a.close()
        pub_b.close()
        register.close()
        ingest.close()
        sink.close()


def test_partitioned_consumers_each_write_their_own_sites(topology, pg) -> None:
    top = topology("site-a", "site-b")
    publishers = {site: SyncEdgePublisher(top.leaves[site].url, site) for site in ("site-a", "site-b")}
    sinks = {site: PostgresSink(pg.dsn, pg.schema) for site in ("site-a", "site-b")}
    ingests = {
        site: CentreIngest(top.hub.url, sink, ["site-a", "site-b"], durable=f"part-{site}", consume=[site])
        for site, sink in sinks.items()
    }
    try:
        for site, count in (("site-a", 700), ("site-b", 300)):
            assert accepted(publishers[site].publish(records(site, "n1", 0, count)), duplicate=None)
        for ingest in ingests.values():
            assert ingest.wait_drained(30)
        assert (sinks["site-a"].inserted, sinks["site-b"].inserted) == (700, 300)
        assert len(set(pg.ids())) == 1000
    finally:
        for ingest in ingests.values():
            ingest.close()
        for sink in sinks.values():
            sink.close()
        for publisher in publishers.values():
            publisher.close()

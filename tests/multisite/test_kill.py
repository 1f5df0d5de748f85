"""Durability claims proven by killing the real processes: the edge (leaf server and publisher) during a cut,
and the centre's consumer between the register's commit and its ack."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multisite.centre import CentreIngest
from multisite.edge import SyncEdgePublisher
from multisite.envelope import message_records, site_stream
from multisite.link import Link
from multisite.pgsink import PostgresSink
from multisite.register import CentreRegister, EdgeRegister, RegisterChange, now_us
from tests.multisite.conftest import LONG, accepted, records, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 40_000 if LONG else 4_000


def _spawn(tmp_path: Path, name: str, *args: object) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.multisite.procs", *map(str, args)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_edge_killed_during_cut_restarts_from_its_store_and_loses_nothing(topology, pg, tmp_path: Path) -> None:
    top = topology("site-a")
    leaf = top.leaves["site-a"]
    SyncEdgePublisher(leaf.url, "site-a").close()  # the site stream exists before the centre sources it
    sink = PostgresSink(pg.dsn, pg.schema)
    ingest = CentreIngest(top.hub.url, sink, ["site-a"])
    register = CentreRegister(top.hub.url, beat_s=0.2)
    try:
        register.publish_snapshot("site-a", 7, now_us(), b"register v7")
        register.put_change(RegisterChange("site-a", "approval_granted", "A7", now_us()))
        with EdgeRegister(leaf.url, "site-a", tmp_path / "cache") as edge:
            wait_until(lambda: edge.snapshot is not None and edge.changes(), what="v7 and A7 at the edge")

        top.cut("site-a")
        accepted = tmp_path / "accepted.txt"
        publisher = _spawn(tmp_path, "publisher-1", "publish", leaf.url, "site-a", "n1", 0, TOTAL, 100, accepted)
        wait_until(lambda: len(_lines(accepted)) >= TOTAL // 4, 60, "a quarter accepted")
        leaf.kill()  # kill -9 the leaf server and the publisher, at the same moment
        _kill9(publisher)
        accepted_before = set(_lines(accepted))
        assert 0 < len(accepted_before) < TOTAL

        # Restart with the centre still unreachable: the register comes from the edge's own store.
        leaf.start()
        with EdgeRegister(leaf.url, "site-a", tmp_path / "cache") as edge:
            assert edge.snapshot is not None and edge.snapshot.blob == b"register v7"
            assert edge.wait_initial()
            assert [c.subject for c in edge.changes()] == ["A7"]
            assert edge.status().synced_at_us > 0 and edge.status().unknown_for_s > 0

        # The recorder's outbox replays everything not confirmed (here: all of it, the worst case).
        again = tmp_path / "accepted-again.txt"
        publisher = _spawn(tmp_path, "publisher-2", "publish", leaf.url, "site-a", "n1", 0, TOTAL, 500, again)
        assert publisher.wait(120) == 0
        assert len(set(_lines(again))) == TOTAL
        duplicates = int((tmp_path / "publisher-2.log").read_text().split()[-1])
        assert duplicates >= len(accepted_before), "every record stored before the kill comes back as a duplicate"
        with Link(leaf.url, "check") as link:
            stream = site_stream("site-a")
            last = link.run(link.js().stream_info(stream)).state.last_seq
            msgs = [link.run(link.js().get_msg(stream, seq)) for seq in range(1, last + 1)]
        stored = [e.record_id for m in msgs for e in message_records(m.subject, m.headers, m.data)]
        assert len(msgs) < len(stored), "records travel several to a message"
        assert sorted(stored) == sorted(e.record_id for e in records("site-a", "n1", 0, TOTAL)), (
            "the site stream holds each record once across kill -9 (a republished batch is a duplicate)"
        )

        top.heal("site-a")
        assert ingest.wait_drained(90)
        ids = pg.ids()
        assert len(ids) == len(set(ids)) == TOTAL
        assert accepted_before <= set(ids), "nothing the edge had accepted before the kill is lost"
    finally:
        register.close()
        ingest.close()
        sink.close()


def _consumer(
    tmp_path: Path, top, pg, marker: Path, pause: bool | str, batch: int = 500, ack_wait_s: float = 3.0
) -> subprocess.Popen[bytes]:
    pause = pause if isinstance(pause, str) else str(int(pause))
    return _spawn(
        tmp_path, "consumer", "consume", top.hub.url, pg.dsn, pg.schema, "site-a", batch, marker, pause, ack_wait_s
    )


def test_centre_consumer_killed_mid_batch_loses_and_doubles_nothing(topology, pg, tmp_path: Path) -> None:
    top = topology("site-a")
    with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:
        assert accepted(publisher.publish(records("site-a", "n1", 0, TOTAL)), duplicate=None)

    # Killed after the register committed its first batch, before the ack.
    marker = tmp_path / "marker.txt"
    consumer = _consumer(tmp_path, top, pg, marker, pause=True)
    try:
        wait_until(lambda: any(line.startswith("committed") for line in _lines(marker)), 60, "first commit")
    finally:
        _kill9(consumer)
    first = int(next(line for line in _lines(marker) if line.startswith("committed")).split()[1])
    assert len(pg.ids()) == first, "committed, not acknowledged"

    # Killed at random moments while draining, restarted each time.
    rng = random.Random(16)
    for run in range(6 if LONG else 3):
        consumer = _consumer(tmp_path, top, pg, marker, pause=False, batch=200)
        try:
            wait_until(lambda n=run: _lines(marker).count("started") == n + 2, 60, "consumer start")
            time.sleep(rng.uniform(0.05, 0.4))
        finally:
            _kill9(consumer)

    sink = PostgresSink(pg.dsn, pg.schema)
    with CentreIngest(top.hub.url, sink, ["site-a"]) as ingest:
        assert ingest.wait_drained(60)
    sink.close()
    ids = pg.ids()
    assert sorted(ids) == sorted(e.record_id for e in records("site-a", "n1", 0, TOTAL))
    assert sink.ignored > 0 or len(_lines(marker)) > 2, "a committed but unacknowledged batch came back"


def test_records_delivered_to_a_killed_consumer_are_written_by_the_next_one(topology, pg, tmp_path: Path) -> None:
    """Killed with batches delivered (one in its sink, one fetched ahead) and none written: the next consumer's
    AckAll must not acknowledge them unwritten. Its ack_wait is ten minutes, so no redelivery rescues them."""
    top = topology("site-a")
    with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:
        assert accepted(publisher.publish(records("site-a", "n1", 0, TOTAL)), duplicate=None)
    marker = tmp_path / "marker.txt"
    consumer = _consumer(tmp_path, top, pg, marker, pause="before", ack_wait_s=600)
    try:
        wait_until(lambda: any(line.startswith("delivered") for line in _lines(marker)), 60, "a batch in the sink")
        time.sleep(0.5)  # the batch fetched ahead arrives too
    finally:
        _kill9(consumer)
    assert pg.ids() == [], "delivered, not written"

    sink = PostgresSink(pg.dsn, pg.schema)
    with CentreIngest(top.hub.url, sink, ["site-a"]) as ingest:
        assert ingest.wait_drained(60)
    sink.close()
    ids = pg.ids()
    assert sorted(ids) == sorted(e.record_id for e in records("site-a", "n1", 0, TOTAL)), "none lost, none doubled"


class SlowSink(PostgresSink):
    """The product's sink, taking its time per batch so that the hub dies in the middle of the drain."""

    def apply(self, envelopes) -> None:
        time.sleep(0.02)
        super().apply(envelopes)


def test_hub_killed_while_the_centre_consumer_drains_loses_and_doubles_nothing(topology, pg) -> None:
    """The consumer's connection drops and comes back: the batch in hand is not acknowledged (an AckAll after
    a reconnect could cover deliveries lost on the way), a new consumer starts from the ack floor."""
    top = topology("site-a")
    with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:
        assert accepted(publisher.publish(records("site-a", "n1", 0, TOTAL)), duplicate=None)
    sink = SlowSink(pg.dsn, pg.schema)
    ingest = CentreIngest(top.hub.url, sink, ["site-a"], batch=200)
    try:
        wait_until(lambda: sink.inserted >= TOTAL // 4, 60, "a quarter written")
        top.hub.kill()
        top.hub.start()
        assert ingest.wait_drained(90)
        assert ingest.consuming
    finally:
        ingest.close()
        sink.close()
    ids = pg.ids()
    assert sorted(ids) == sorted(e.record_id for e in records("site-a", "n1", 0, TOTAL)), "none lost, none doubled"

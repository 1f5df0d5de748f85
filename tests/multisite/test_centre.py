"""The centre's consumer when the register refuses: the batch is kept and retried, nothing lost or doubled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import psycopg
import pytest

from multisite.centre import CentreIngest
from multisite.edge import SyncEdgePublisher
from multisite.envelope import RecordEnvelope
from multisite.pgsink import PostgresSink
from tests.multisite.conftest import accepted, records, wait_until

pytestmark = [pytest.mark.postgres]


class FlakySink(PostgresSink):
    """The product's sink with its database going away for its first `failures` batches."""

    def __init__(self, dsn: str, schema: str, failures: int) -> None:
        super().__init__(dsn, schema)
        self.failures = failures
        self.refused = 0

    def apply(self, envelopes: Sequence[RecordEnvelope]) -> None:
        if self.refused < self.failures:
            self.refused += 1
            raise psycopg.OperationalError("connection refused (database away)")
        super().apply(envelopes)


def test_a_refused_batch_is_kept_and_retried(topology, pg) -> None:
    top = topology("site-a")
    with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:
        assert accepted(publisher.publish(records("site-a", "n1", 0, 1000)))
    sink = FlakySink(pg.dsn, pg.schema, failures=4)
    with CentreIngest(top.hub.url, sink, ["site-a"]) as ingest:
        assert ingest.wait_drained(30)
    sink.close()
    assert sink.refused == 4
    assert sorted(pg.ids()) == sorted(e.record_id for e in records("site-a", "n1", 0, 1000))


def test_a_second_consumer_of_a_partition_takes_it_over(topology, pg) -> None:
    """Each process makes its own consumer for its partition and deletes the older ones: the first process
    stops (it could otherwise ack-all what the second was handed), the second writes every record once."""
    top = topology("site-a")
    SyncEdgePublisher(top.leaves["site-a"].url, "site-a").close()
    first_sink, second_sink = PostgresSink(pg.dsn, pg.schema), PostgresSink(pg.dsn, pg.schema)
    with (
        CentreIngest(top.hub.url, first_sink, ["site-a"]) as first,
        CentreIngest(top.hub.url, second_sink, ["site-a"]) as second,
    ):
        wait_until(lambda: not first.consuming, 10, "the first consumer stopping")
        with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:
            assert accepted(publisher.publish(records("site-a", "n1", 0, 1000)))
        assert second.wait_drained(30)
        assert second.consuming and first_sink.inserted == 0
    first_sink.close()
    second_sink.close()
    assert sorted(pg.ids()) == sorted(e.record_id for e in records("site-a", "n1", 0, 1000))


def test_a_consumer_taking_over_a_partition_whose_sites_changed_misses_nothing(topology, pg) -> None:
    """A partition (durable name) first consuming site-a only, then both sites: the new consumer cannot start
    after the old one's ack floor (it never saw site-b's records), so it starts from the beginning."""
    top = topology("site-a", "site-b")
    for site in ("site-a", "site-b"):
        with SyncEdgePublisher(top.leaves[site].url, site) as publisher:
            assert accepted(publisher.publish(records(site, "n1", 0, 300)))
    sink = PostgresSink(pg.dsn, pg.schema)
    with CentreIngest(top.hub.url, sink, ["site-a", "site-b"], consume=["site-a"]) as ingest:
        assert ingest.wait_drained(30)
    with CentreIngest(top.hub.url, sink, ["site-a", "site-b"]) as ingest:
        assert ingest.wait_drained(30)
    sink.close()
    expected = [e.record_id for site in ("site-a", "site-b") for e in records(site, "n1", 0, 300)]
    assert sorted(pg.ids()) == sorted(expected)


def test_pending_asked_while_the_consumer_replaces_itself_names_a_live_consumer(topology, pg) -> None:
    """A reconnect makes the consumer replace itself (new consumer, old one deleted); a guard page or
    wait_drained asking for what is pending at that moment gets a figure, not `consumer not found`."""
    top = topology("site-a")
    with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:
        assert accepted(publisher.publish(records("site-a", "n1", 0, 1000)))
    sink = PostgresSink(pg.dsn, pg.schema)
    with CentreIngest(top.hub.url, sink, ["site-a"]) as ingest:
        consumer = ingest.consumer

        async def replace_while_asked() -> list[int]:
            replacing = asyncio.ensure_future(consumer.setup())
            figures = []
            while not replacing.done():
                figures.append(await consumer.pending())
            await replacing
            return figures

        for _ in range(5):
            assert all(figure >= 0 for figure in ingest.link.run(replace_while_asked(), 30))
        assert ingest.wait_drained(30)
    sink.close()
    assert sorted(pg.ids()) == sorted(e.record_id for e in records("site-a", "n1", 0, 1000))

"""The centre's consumer when the register refuses: the batch is kept and retried, nothing lost or doubled."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import pytest

from multisite.centre import CentreIngest
from multisite.edge import SyncEdgePublisher
from multisite.envelope import RecordEnvelope
from multisite.pgsink import PostgresSink
from tests.multisite.conftest import accepted, records

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

"""Several records per JetStream message: the cut, the message id, the decoding, and the real path (a leaf, the
hub's source, the centre consumer) with batches republished whole and cut another way."""

from __future__ import annotations

import pytest

from multisite.centre import CentreIngest
from multisite.edge import SyncEdgePublisher
from multisite.envelope import (
    BATCH,
    BATCH_BYTES,
    BATCH_RECORDS,
    EnvelopeError,
    RecordEnvelope,
    cut_batches,
    message_records,
)
from multisite.pgsink import PostgresSink
from tests.multisite.conftest import accepted, records


def test_the_cut_depends_only_on_the_records_and_keeps_their_order() -> None:
    envs = records("site-a", "n1", 0, 2 * BATCH_RECORDS + 7)
    batches = cut_batches(envs)
    assert [len(b.records) for b in batches] == [BATCH_RECORDS, BATCH_RECORDS, 7]
    assert [e for b in batches for e in b.records] == envs
    assert [b.msg_id for b in cut_batches(list(envs))] == [b.msg_id for b in batches], "same records, same ids"
    assert len({b.msg_id for b in batches}) == 3
    # The same first record and count with another record inside: another message id (never dropped as a copy).
    other = [*envs[:5], RecordEnvelope("site-a:n1:x", "site-a", "decision", 0, b""), *envs[6:BATCH_RECORDS]]
    assert cut_batches(other)[0].msg_id != batches[0].msg_id


def test_a_batch_holds_one_site_and_about_its_byte_limit() -> None:
    mixed = records("site-a", "n1", 0, 3) + records("site-b", "n1", 0, 2) + records("site-a", "n1", 3, 1)
    assert [(b.site, len(b.records)) for b in cut_batches(mixed)] == [("site-a", 3), ("site-b", 2), ("site-a", 1)]
    big = [RecordEnvelope(f"site-a:n1:{i}", "site-a", "health", i, b"x" * (BATCH_BYTES // 3)) for i in range(7)]
    assert [len(b.records) for b in cut_batches(big)] == [2, 2, 2, 1]
    huge = [RecordEnvelope("site-a:n1:0", "site-a", "health", 0, b"x" * (BATCH_BYTES + 1))]
    assert [len(b.records) for b in cut_batches(huge)] == [1], "a bigger record travels alone"


def test_a_batch_message_decodes_to_its_records_and_a_damaged_one_is_refused() -> None:
    envs = records("site-a", "n1", 0, 5, kind="alarm.forced") + records("site-a", "n1", 5, 2)
    (batch,) = cut_batches(envs)
    assert message_records(batch.subject, batch.headers(), batch.body()) == envs
    single = envs[0]
    assert message_records(single.subject, single.headers(), single.body) == [single], "a record of before batches"
    body = batch.body()
    with pytest.raises(EnvelopeError):
        message_records(batch.subject, batch.headers(), body[:-1])
    with pytest.raises(EnvelopeError):
        message_records(batch.subject, {**batch.headers(), BATCH: "6"}, body)
    with pytest.raises(EnvelopeError):
        message_records("rec.site-a.decision", batch.headers(), body)




@pytest.mark.postgres
@pytest.mark.slow
def test_batches_republished_whole_or_cut_another_way_land_once(topology, pg) -> None:
    top = topology("site-a")
    envs = records("site-a", "n1", 0, 1000)
    with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:
        assert accepted(publisher.publish(envs))
        sink = PostgresSink(pg.dsn, pg.schema)
        with CentreIngest(top.hub.url, sink, ["site-a"], batch=300) as ingest:
            assert ingest.wait_drained(30)
            assert accepted(publisher.publish(envs[200:400]), duplicate=True), "the same batches: duplicates"
            shifted = publisher.publish(envs[150:450])  # cut another way: stored again, dropped by the register
            assert accepted(shifted, duplicate=None)
            assert accepted(publisher.publish(envs[1000:] + records("site-a", "n1", 1000, 50)))
            assert ingest.wait_drained(30)
        sink.close()
    ids = pg.ids()
    assert sorted(ids) == sorted(e.record_id for e in records("site-a", "n1", 0, 1050)), "each once"
    assert sink.ignored >= 300, "the copies cut another way reached the register and were dropped there"

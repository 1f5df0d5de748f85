"""The processes the durability tests kill -9: an edge publisher and a centre consumer.

    python -m tests.multisite.procs publish URL SITE NODE START COUNT BATCH ACCEPTED_FILE
    python -m tests.multisite.procs consume URL DSN SCHEMA SITES BATCH MARKER_FILE PAUSE [ACK_WAIT_S]
      (PAUSE: 1 after the first commit, before before it, 0 never)
    python -m tests.multisite.procs edge SITE STATE HUB ACCEPTED_FILE
    python -m tests.multisite.procs consume-register URL DB_URL SITES BATCH MARKER_FILE PAUSE_AFTER_COMMIT
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from multisite.centre import CentreIngest
from multisite.edge import SyncEdgePublisher
from multisite.envelope import RecordEnvelope
from multisite.pgsink import PostgresSink
from multisite.shipping import RegisterSink
from tests.multisite.conftest import records


def _append(path: Path, lines: Sequence[str]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
        f.flush()
        os.fsync(f.fileno())


def publish(url: str, site: str, node: str, start: int, count: int, batch: int, accepted: Path) -> None:
    """Publishes records start..start+count in batches; after each batch, appends the ids the site stream
    acknowledged (the edge's promise: these are accepted) and counts duplicates on stdout."""
    duplicates = 0
    with SyncEdgePublisher(url, site, ack_timeout_s=2.0) as publisher:
        for first in range(start, start + count, batch):
            pending = records(site, node, first, min(batch, start + count - first))
            while pending:
                outcomes = publisher.publish(pending)
                _append(accepted, [o.record_id for o in outcomes if o.accepted])
                duplicates += sum(o.duplicate for o in outcomes)
                done = {o.record_id for o in outcomes if o.accepted}
                pending = [e for e in pending if e.record_id not in done]
    print(f"duplicates {duplicates}", flush=True)


class PausingSink(PostgresSink):
    """The product's sink, pausing after its first commit (pause "1": the test kills the consumer between the
    register's commit and the ack) or before it (pause "before": killed with batches delivered, none
    written), and reporting each batch in a marker file."""

    def __init__(self, dsn: str, schema: str, marker: Path, pause: str) -> None:
        super().__init__(dsn, schema)
        self._marker = marker
        self._pause = pause

    def apply(self, envelopes: Sequence[RecordEnvelope]) -> None:
        if self._pause == "before":
            _append(self._marker, [f"delivered {len(envelopes)}"])
            threading.Event().wait(600)  # the test kills us here
        super().apply(envelopes)
        _append(self._marker, [f"committed {len(envelopes)}"])
        if self._pause == "1":
            threading.Event().wait(600)  # the test kills us here


def consume(
    url: str, dsn: str, schema: str, sites: str, batch: int, marker: Path, pause: str, ack_wait_s: float
) -> None:
    sink = PausingSink(dsn, schema, marker, pause)
    ingest = CentreIngest(url, sink, sites.split(","), batch=batch, ack_wait_s=ack_wait_s)
    _append(marker, ["started"])
    threading.Event().wait()  # consume until killed
    ingest.close()


class PausingRegisterSink(RegisterSink):
    """The centre's register sink, pausing after its first commit like `PausingSink`."""

    def __init__(self, factory, marker: Path, pause: bool) -> None:
        super().__init__(factory)
        self._marker = marker
        self._pause = pause

    def apply(self, envelopes: Sequence[RecordEnvelope]) -> None:
        super().apply(envelopes)
        _append(self._marker, [f"committed {len(envelopes)}"])
        if self._pause:
            threading.Event().wait(600)


def consume_register(url: str, db_url: str, sites: str, batch: int, marker: Path, pause: bool) -> None:
    from registry import db

    factory = db.session_factory(db.make_engine(db_url))
    CentreIngest(url, PausingRegisterSink(factory, marker, pause), sites.split(","), batch=batch, ack_wait_s=3.0)
    _append(marker, ["started"])
    threading.Event().wait()


def edge(site: str, state: Path, hub: str, accepted: Path) -> None:
    """The product's edge (simulated devices), accepting a batch of records every 20 ms through its recorder
    and appending the accepted ids (durable when `accept` returned) to `accepted`, until killed."""
    from controllers.records import AlarmRaised
    from multisite.edge_site import EdgeOptions, EdgeSite

    running = EdgeSite(EdgeOptions(site, state, hub, simulate=True, backend="reference")).start()
    assert running.running is not None
    recorder = running.running.runtime.recorder
    _append(accepted, [f"started {running.loaded[0]}"])
    n = 0
    while True:
        ids = recorder.accept(
            [AlarmRaised(alarm="test_alarm", source="site", detail=f"n {n + k}", time_us=n + k) for k in range(10)]
        )
        n += 10
        _append(accepted, [str(i.seq) for i in ids])
        threading.Event().wait(0.02)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "publish":
        url, site, node, start, count, batch, accepted = args
        publish(url, site, node, int(start), int(count), int(batch), Path(accepted))
    elif command == "consume-register":
        url, db_url, sites, batch, marker, pause = args
        consume_register(url, db_url, sites, int(batch), Path(marker), pause == "1")
    elif command == "edge":
        site, state, hub, accepted = args
        edge(site, Path(state), hub, Path(accepted))
    elif command == "consume":
        url, dsn, schema, sites, batch, marker, pause, *ack_wait = args
        consume(url, dsn, schema, sites, int(batch), Path(marker), pause, float(ack_wait[0]) if ack_wait else 3.0)
    else:
        raise SystemExit(f"unknown command {command}")

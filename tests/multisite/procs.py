"""The processes the durability tests kill -9: an edge publisher and a centre consumer.

    python -m tests.multisite.procs publish URL SITE NODE START COUNT BATCH ACCEPTED_FILE
    python -m tests.multisite.procs consume URL DSN SCHEMA SITES BATCH MARKER_FILE PAUSE_AFTER_COMMIT
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
    """The product's sink, pausing after its first commit (so the test can kill the consumer between the
    register's commit and the ack) and reporting each commit in a marker file."""

    def __init__(self, dsn: str, schema: str, marker: Path, pause: bool) -> None:
        super().__init__(dsn, schema)
        self._marker = marker
        self._pause = pause

    def apply(self, envelopes: Sequence[RecordEnvelope]) -> None:
        super().apply(envelopes)
        _append(self._marker, [f"committed {len(envelopes)}"])
        if self._pause:
            threading.Event().wait(600)  # the test kills us here


def consume(url: str, dsn: str, schema: str, sites: str, batch: int, marker: Path, pause: bool) -> None:
    ingest = CentreIngest(url, PausingSink(dsn, schema, marker, pause), sites.split(","), batch=batch, ack_wait_s=3.0)
    _append(marker, ["started"])
    threading.Event().wait()  # consume until killed
    ingest.close()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "publish":
        url, site, node, start, count, batch, accepted = args
        publish(url, site, node, int(start), int(count), int(batch), Path(accepted))
    elif command == "consume":
        url, dsn, schema, sites, batch, marker, pause = args
        consume(url, dsn, schema, sites, int(batch), Path(marker), pause == "1")
    else:
        raise SystemExit(f"unknown command {command}")

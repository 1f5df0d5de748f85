"""The centre's consumer writing into the register (journal, effects, ledger) killed -9 between the
register's commit and its ack, and at random moments: every record is in the journal exactly once."""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from controllers.outbox import Frame
from controllers.recorder import Identity
from multisite.edge import SyncEdgePublisher
from multisite.shipping import frame_envelope
from registry import db
from registry.models import AcceptedRecord, JournalEntry
from tests.multisite.conftest import LONG, accepted, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOTAL = 20_000 if LONG else 2_000


@pytest.fixture
def register_url() -> Iterator[str]:
    schema = f"reg_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _consumer(tmp_path: Path, hub_url: str, url: str, marker: Path, pause: bool, batch: int) -> subprocess.Popen:
    log = (tmp_path / "consumer.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.multisite.procs", "consume-register", hub_url, url, "site-a", str(batch),
             str(marker), "1" if pause else "0"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


def _kill9(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def test_register_consumer_killed_mid_batch_journals_each_record_once(topology, register_url, tmp_path) -> None:
    top = topology("site-a")
    node = Identity("site-a", "n1")
    frames = [
        Frame(seq, 0, "alarm", "system", "alarm.test_alarm", "portal:site", f'{{"n":{seq}}}', 0, 0)
        for seq in range(1, TOTAL + 1)
    ]
    with SyncEdgePublisher(top.leaves["site-a"].url, "site-a") as publisher:
        assert accepted(publisher.publish([frame_envelope(node, f, seq) for seq, f in enumerate(frames)]))

    marker = tmp_path / "marker.txt"
    consumer = _consumer(tmp_path, top.hub.url, register_url, marker, True, 500)
    try:
        wait_until(lambda: any(x.startswith("committed") for x in _lines(marker)), 60, "first commit")
    finally:
        _kill9(consumer)
    rng = random.Random(16)
    for run in range(6 if LONG else 3):
        consumer = _consumer(tmp_path, top.hub.url, register_url, marker, False, 200)
        try:
            wait_until(lambda n=run: _lines(marker).count("started") == n + 2, 60, "consumer start")
            time.sleep(rng.uniform(0.05, 0.4))
        finally:
            _kill9(consumer)
    consumer = _consumer(tmp_path, top.hub.url, register_url, marker, False, 500)
    engine = db.make_engine(register_url)
    try:
        def count(model, *where) -> int:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one())

        wait_until(lambda: count(AcceptedRecord) == TOTAL, 120, "every record in the register")
        time.sleep(1.0)  # anything redelivered meanwhile would show now
        assert count(AcceptedRecord) == TOTAL
        assert count(JournalEntry, JournalEntry.action == "alarm.test_alarm") == TOTAL, "journaled once each"
    finally:
        _kill9(consumer)
        engine.dispose()

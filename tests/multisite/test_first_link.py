"""An edge that has never reached the centre (its link down from its first start) decides nothing until its
first snapshot, and once the link comes up it gets its register and its records reach the centre within
seconds: the streams that copy across the link are made when the other side answers, not while it is cut
(made while cut, nats-server left them idle ~35 s after the heal; see multisite/sourcing.py)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from controllers.records import AlarmRaised
from multisite.centre_site import CentreOptions, CentreSite
from multisite.demo_sites import demo_sites
from multisite.edge_site import EdgeOptions, EdgeSite
from multisite.servers import LinkProxy
from registry import db
from registry.models import AcceptedRecord
from tests.multisite.conftest import PG_URL, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
AFTER_HEAL_S = 15.0  # generous against the ~2 s this takes; the server's idle copy took ~36 s


def test_a_never_linked_edge_is_served_and_heard_within_seconds_of_its_first_link(tmp_path: Path) -> None:
    schema = f"first_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    [demo] = demo_sites(1)
    files = (demo.write(tmp_path / "files"),)
    centre = CentreSite(CentreOptions(f"{PG_URL}?options=-csearch_path%3D{schema}", files, tmp_path / "centre"))
    edge: EdgeSite | None = None
    link: LinkProxy | None = None
    started = threading.Event()
    failed: list[BaseException] = []

    def start() -> None:
        try:
            edge.start()  # type: ignore[union-attr]
        except BaseException as exc:
            failed.append(exc)
        started.set()

    starter = threading.Thread(target=start, name="edge-start")
    try:
        centre.start()
        link = LinkProxy(centre.hub.leaf_port)  # type: ignore[arg-type]
        link.cut()  # from the very first start of the edge
        edge = EdgeSite(EdgeOptions(demo.code, tmp_path / demo.code, f"127.0.0.1:{link.port}", simulate=True,
                                    backend="reference", first_snapshot_wait_s=AFTER_HEAL_S + 10,
                                    leaf_password=centre.leaf_password(demo.code)))

        starter.start()
        wait_until(lambda: edge.register is not None, 20, "the edge asking for its register")  # type: ignore[union-attr]
        time.sleep(2)  # cut off a while: whatever the edge made meanwhile was made while cut
        assert not started.is_set() and edge.running is None, "no register yet: the edge does not decide"

        link.heal()
        healed = time.monotonic()
        assert started.wait(AFTER_HEAL_S), "the first snapshot reached the edge after its first link"
        starter.join()
        assert not failed, failed
        assert edge.running is not None
        recorder = edge.running.runtime.recorder
        [mine] = recorder.accept([AlarmRaised(alarm="test_alarm", source="site", detail="first", time_us=1)])

        def in_register() -> bool:
            with centre.factory() as session:
                return session.execute(select(AcceptedRecord.seq).where(
                    AcceptedRecord.site == demo.code, AcceptedRecord.seq == mine.seq)).first() is not None

        wait_until(in_register, max(1.0, AFTER_HEAL_S - (time.monotonic() - healed)),
                   "the edge's record in the centre's register")
        assert edge.commands is not None
        wait_until(lambda: edge.commands.hellos >= 1, 10, "the centre's commands at the edge")  # type: ignore[union-attr]
        print(f"first snapshot and a record at the centre {time.monotonic() - healed:.1f} s after the first link")
    finally:
        if edge is not None and starter.ident is not None:
            starter.join(AFTER_HEAL_S + 20)  # a start that fails stops what it started
            if not failed:
                edge.stop()
        if link is not None:
            link.close()
        centre.stop()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

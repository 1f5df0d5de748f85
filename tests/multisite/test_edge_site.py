"""`custodian edge` and `custodian centre` as the product runs them: a centre (hub nats-server, PostgreSQL
register, snapshots out, records in) and an edge (leaf nats-server, simulated door, local register) with a
cuttable link between the leaf and the hub. Doors are worked through the simulators only."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from multisite.centre_site import CentreOptions, CentreSite
from multisite.demo_sites import DemoSite, demo_sites
from multisite.edge_site import AGE_ALARM
from multisite.envelope import message_records, site_stream
from multisite.link import Link
from multisite.servers import LEAF_PASSWORD_ENV, LinkProxy, LinkTls
from multisite.shipping import RegisterSink
from registry import db
from registry.models import AcceptedRecord, Approval, JournalEntry
from registry.services import approvals, lookup
from tests.multisite.conftest import LONG, PG_URL, Sites, authority, signed, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
N, M = (20_000, 50_000) if LONG else (300, 500)
ROOT = Path(__file__).resolve().parents[2]


def _approve_at_centre(centre: CentreSite, demo: DemoSite, ref: str) -> int:
    """carol gets a carry-out approval for the disk, made and approved at the centre."""
    now = dt.datetime.now(dt.UTC)
    with db.transaction(centre.factory) as session:
        request = approvals.ApprovalRequest(
            ref=ref, kind="carry_out", items=(f"S-{demo.code}-002",), people=(f"{demo.code}-carol",), portal=None,
            valid_from=now - dt.timedelta(minutes=1), valid_until=now + dt.timedelta(days=1), uses=5,
            reason="test",
        )
        approval = approvals.request(session, f"{demo.code}-carol", request)
        approvals.approve(session, f"{demo.code}-paul", lookup.approval(session, ref), "ok")
        return approval.id


def test_partition_doors_decide_records_land_once(sites) -> None:
    s: Sites = sites()
    # Connected: real door decisions and N records reach the register.
    assert s.traffic.exit_attempt("bob", (1,)), "bob's standing approval opens the door"
    assert not s.traffic.exit_attempt("carol", (2,)), "carol has none"
    s.accept_alarms(N)
    wait_until(lambda: len(s.in_register()) == s.accepted(), 60, "every record in the register")
    before = s.accepted()

    s.cut()
    assert s.edge.running is not None
    wait_until(lambda: any(e.title == "centre link down" for e in s.edge.running.bus.history()), 10, "guards told")
    # Cut off: the door decides from the local register; the approval made before the cut is honoured.
    assert s.traffic.exit_attempt("bob", (1,)), "bob's approval still opens the door while cut off"
    assert not s.traffic.exit_attempt("carol", (2,))
    s.accept_alarms(M)
    wait_until(lambda: s.edge.shipper is not None and s.edge.shipper.backlog() == 0, 60, "the leaf holds them all")
    # The centre changes meanwhile; the edge cannot know (the documented window).
    approval_id = _approve_at_centre(s.centre, s.demo, f"A-{s.demo.code}-0100")
    assert approval_id not in s.engine_approvals()
    assert len(s.in_register()) == before, "nothing crossed the cut link"
    during = s.accepted() - before
    assert during >= M + 2

    wait_until(lambda: any(e.title == f"{s.demo.code}: CUT OFF" for e in s.centre.bus.history()), 20,
               "the centre's guards see the site cut off")
    s.heal()
    wait_until(lambda: len(s.in_register()) == s.accepted(), 90, "the backlog drained into the register")
    seqs = s.in_register()
    assert seqs == list(range(1, s.accepted() + 1)), "exactly N + M, each once, none missing"
    wait_until(lambda: approval_id in s.engine_approvals(), 30, "the centre's approval at the edge")
    assert s.traffic.exit_attempt("carol", (2,)), "and it opens the door"

    with s.centre.factory() as session:
        decisions = session.execute(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.action == "exit.decision")
        ).scalar_one()
        uses = session.execute(select(Approval.uses_left).where(Approval.ref == f"A-{s.demo.code}-0001")).scalar_one()
    assert decisions == 5, "every door decision, made connected or cut off, is in the centre's journal"
    assert uses == 1000 - 2, "bob's two exits used his approval twice at the centre"

    # Republished batches come back as duplicates; a redelivery to the register writes nothing.
    with Link(s.edge.leaf.url, "check") as link:
        stream = site_stream(s.edge.site)
        last = link.run(link.js().stream_info(stream)).state.last_seq
        msgs = [link.run(link.js().get_msg(stream, seq)) for seq in range(1, last + 1)]
    batches = [message_records(m.subject, m.headers, m.data) for m in msgs]
    envelopes = [e for batch in batches for e in batch]
    assert s.edge.publisher is not None
    assert all(o.accepted and o.duplicate for batch in batches for o in s.edge.publisher.publish(batch))
    redelivered = RegisterSink(s.centre.factory)  # as the consumer's sink sees a redelivery
    redelivered.apply(envelopes)
    assert redelivered.written == 0 and s.in_register()[: len(seqs)] == seqs


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_centre_and_edge_given_link_certificates_carry_doors_and_records_over_mutual_tls(
    site_group, tmp_path: Path,
) -> None:
    """`custodian centre/edge --link-cert --link-key --link-ca`: the hub's leaf listener demands TLS and a client
    certificate its CA signed; the edge dials with its site's; the door decides and its records reach the register."""
    pki = tmp_path / "pki"
    ca = authority(pki, "custodian-test-ca")
    hub_cert = signed(pki, "hub", ca, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    site_cert = signed(pki, "site-a", ca, "extendedKeyUsage=clientAuth")
    s: Sites = site_group(1, centre_tls=LinkTls(*hub_cert, ca_file=ca[0]),
                          link_tls=LinkTls(*site_cert, ca_file=ca[0]))[0]
    with socket.create_connection(("127.0.0.1", s.centre.hub.leaf_port), timeout=5) as raw:  # type: ignore[arg-type]
        info = json.loads(raw.recv(65536).decode().removeprefix("INFO ").strip())
    assert info.get("tls_required") is True, info
    assert s.traffic.exit_attempt("bob", (1,)), "bob's standing approval opens the door"
    wait_until(lambda: len(s.in_register()) == s.accepted(), 60, "every record in the register, across TLS")


def test_snapshot_reaches_the_engine_and_an_old_one_restricts_exits(sites) -> None:
    s: Sites = sites(snapshot_max_age_s=5.0)  # well above a loaded machine's snapshot round trip
    approval_id = _approve_at_centre(s.centre, s.demo, f"A-{s.demo.code}-0200")
    wait_until(lambda: approval_id in s.engine_approvals(), 10, "the approval in the edge's engine")

    s.cut()
    wait_until(lambda: s.edge.restricted, 20, "exits restricted once the snapshot is too old")
    assert s.edge.running is not None
    alarms = [e for e in s.edge.running.bus.history() if e.title == "register snapshot too old"]
    assert alarms, "the guards are told"
    assert not s.traffic.exit_attempt("bob", (1,)), "no item leaves on an old snapshot, approval or not"
    refused = [e for e in s.edge.running.bus.history() if e.source == s.demo.portal and e.title.startswith("EXIT")]
    assert "snapshot_too_old" in dict(refused[-1].details)["reasons"]
    time.sleep(1.5)  # bob takes the briefing back first: out of the door's reach (EngineConfig.reach_us)
    assert s.traffic.exit_attempt("bob"), "a person may leave empty-handed"

    s.heal()
    wait_until(lambda: not s.edge.restricted, 20, "fresh again after healing")
    assert s.traffic.exit_attempt("bob", (1,))
    wait_until(lambda: len(s.in_register()) == s.accepted(), 60, "every record in the register")
    with s.centre.factory() as session:
        recorded = session.execute(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.action == f"alarm.{AGE_ALARM}")
        ).scalar_one()
    raised = len([e for e in s.edge.running.bus.history() if e.title == "register snapshot too old"])
    assert recorded == raised >= 1, "each alarm is a record, in the centre's journal (a loaded machine may flap)"
    live = [e for e in s.centre.bus.history() if e.title == f"{s.demo.code}: {AGE_ALARM.replace('_', ' ')}"]
    assert len(live) == raised, "and on the centre's live bus, for its guard pages"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _spawn_edge(
    tmp_path: Path, demo: DemoSite, hub: str, accepted: Path, name: str, password: str
) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.multisite.procs", "edge", demo.code, str(tmp_path / demo.code), hub,
             str(accepted)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, LEAF_PASSWORD_ENV: password},
        )
    finally:
        log.close()


def test_edge_killed_during_the_cut_restarts_from_its_own_state_and_loses_nothing(tmp_path: Path) -> None:
    schema = f"edge_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    demo = demo_sites(1)[0]
    centre = CentreSite(CentreOptions(f"{PG_URL}?options=-csearch_path%3D{schema}",
                                      (demo.write(tmp_path / "files"),), tmp_path / "centre")).start()
    link = LinkProxy(centre.hub.leaf_port)  # type: ignore[arg-type]
    hub = f"127.0.0.1:{link.port}"
    procs: list[subprocess.Popen[bytes]] = []

    def in_register() -> set[int]:
        with centre.factory() as session:
            return set(session.execute(select(AcceptedRecord.seq).where(AcceptedRecord.site == demo.code)).scalars())

    try:
        first = tmp_path / "accepted-1.txt"
        procs.append(_spawn_edge(tmp_path, demo, hub, first, "edge-1", centre.leaf_password(demo.code)))
        wait_until(lambda: len(in_register()) >= 50, 180, "records from the edge in the register")
        link.cut()
        centre.hub.wait_leaf_connections(0)
        mark = len(_lines(first))
        wait_until(lambda: len(_lines(first)) >= mark + 30, 60, "records accepted during the cut")
        leaf_pid = int((tmp_path / demo.code / "nats" / "server.pid").read_text())
        procs[0].kill()  # kill -9 the edge and its leaf server together
        os.kill(leaf_pid, signal.SIGKILL)
        procs[0].wait()
        before_kill = {int(x) for x in _lines(first) if x.isdigit()}

        # Restarted with the centre still unreachable: it decides from its own register and keeps accepting.
        second = tmp_path / "accepted-2.txt"
        procs.append(_spawn_edge(tmp_path, demo, hub, second, "edge-2", centre.leaf_password(demo.code)))
        wait_until(lambda: len(_lines(second)) >= 30, 90, "the restarted edge accepts records")
        started = _lines(second)[0]
        assert started.startswith("started ") and int(started.split()[1]) > 0, "from its kept snapshot"
        after = {int(x) for x in _lines(second) if x.isdigit()}
        assert min(after) > max(before_kill), "no id given twice"

        link.heal()
        accepted = before_kill | {int(x) for x in _lines(second) if x.isdigit()}
        wait_until(lambda: accepted <= in_register(), 90, "every accepted record in the register")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        pid_file = tmp_path / demo.code / "nats" / "server.pid"
        if pid_file.exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        link.close()
        centre.stop()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

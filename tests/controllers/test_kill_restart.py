"""`custodian run` killed with SIGKILL at random moments (while deciding, during a real database outage,
while recovering its local log, and right after the replay of an earlier run's records committed) and
started again, on SQLite and PostgreSQL, with people at the doors all the while. The hardware lives in the
test process and outlives every kill, so what a door was told to do is seen from outside. After the last,
clean stop:

- every record that was ever in the local log (read after each kill, independently of the product) is in
  the register, and every record is journaled exactly once;
- every door release a panel received has its allowed decision in the register;
- effects were applied once: each approval's spent uses equal its `approval.used` entries and the allowed
  decisions that relied on it; each item is where its last journaled crossing put it;
- the journal verifies, no record went to the dead letters, and no restart needed any edit.

Quick form in CI; `CUSTODIAN_LONG_TESTS=1` runs many more kills.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from registry.models import AcceptedRecord, Venue
from tests.controllers.conftest import OutageRegister
from tests.controllers.sitekit import (
    ITEMS,
    Hardware,
    LoggedRecord,
    RegisterFacts,
    SiteProcess,
    Traffic,
    read_local_log,
)

LONG = os.environ.get("CUSTODIAN_LONG_TESTS") == "1"
MODES = ("deciding", "outage", "recovering")  # in the quick form, a recovery follows the outage
KILLS = 24 if LONG else len(MODES)


def _ledger(register: OutageRegister) -> set[str]:
    with register.factory() as session:
        rows = session.execute(select(AcceptedRecord.site, AcceptedRecord.node, AcceptedRecord.seq)).all()
    return {f"{site}/{node}/{seq}" for site, node, seq in rows}


def _kill_when_replay_commits(register: OutageRegister, pending: set[str], proc: SiteProcess) -> bool:
    """SIGKILL the moment the first of the earlier run's records is committed: right between the register's
    commit and the local log's cursor moving on (where a replay would apply records twice). Waits as long
    as the starting process makes progress (a loaded machine), bounded."""
    if proc.wait_until(lambda: bool(pending & _ledger(register)), poll_s=0.003):
        proc.kill()
        return True
    return False


@pytest.mark.slow
@pytest.mark.timeout(1800 if LONG else 300)  # the long form's 24 kills and restarts outlast 300 s on a loaded machine
def test_killed_at_random_the_site_restarts_and_loses_nothing(outage_register: OutageRegister, tmp_path: Path) -> None:
    register = outage_register
    seed = int(os.environ.get("CUSTODIAN_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    hw = Hardware.start()
    site_file = hw.site_file(tmp_path / "site.toml")
    state = tmp_path / "state"
    log_dir = state / "spool"
    seen: dict[str, LoggedRecord] = {}
    kills: list[str] = []
    traffic = Traffic(hw, seed).start()
    runs = 0
    proc: SiteProcess | None = None
    try:
        for n in range(KILLS):
            mode = MODES[n % len(MODES)] if n < len(MODES) else rng.choice(MODES)
            pending = set(seen) - _ledger(register)  # accepted earlier, waiting in the local log
            since = hw.connections()
            proc = SiteProcess.start(hw, site_file, register.url, state, runs)
            runs += 1
            if mode == "recovering" and pending:
                assert _kill_when_replay_commits(register, pending, proc), proc.text()
            elif mode == "recovering":  # while it recovers its local log and starts its devices
                assert proc.wait_for("site.toml", 30), proc.text()
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                assert proc.wait_for("site running", 30), f"seed {seed}: restart {runs} failed:\n{proc.text()}"
                assert hw.ready(since), f"seed {seed}: devices did not come back after restart {runs}"
                time.sleep(rng.uniform(0.3, 2.5))
                if mode == "outage":
                    register.take_away()
                    burst = [f"E28011700000EEEE{rng.getrandbits(32):08X}" for _ in range(300)]
                    for portal in hw.readers:
                        traffic.walk(portal, burst, antenna=1, reads=1, period_s=0.002)  # strangers' tags
                    time.sleep(rng.uniform(0.5, 2.0))
            proc.kill()
            assert proc.proc.returncode != 0
            seen.update(read_local_log(log_dir))
            if mode == "outage":
                register.give_back()
            kills.append(f"{mode}{f'({len(pending)} pending)' if mode == 'recovering' and pending else ''}")

        since = hw.connections()
        proc = SiteProcess.start(hw, site_file, register.url, state, runs)
        assert proc.wait_for("site running", 30), proc.text()
        assert hw.ready(since)
        time.sleep(2.0)
        traffic.stop()
        time.sleep(1.5)  # the last decisions and crossings settle
        seen.update(read_local_log(log_dir))
        assert proc.terminate() == 0, proc.text()
        assert "every accepted one is in it" in proc.text(), proc.text()
    finally:
        if proc is not None:
            proc.kill()
        traffic.stop()
        hw.stop()

    with register.factory() as session:
        facts = RegisterFacts.read(session)
        corridor = session.execute(select(Venue.id).where(Venue.code == "corridor")).scalar_one()
    context = f"seed {seed}, kills {kills}"
    assert facts.chain_ok, context
    assert seen, context
    assert set(seen) <= facts.ledger, f"{context}: accepted but lost: {sorted(set(seen) - facts.ledger)[:5]}"
    assert facts.dead_letters == 0, context
    assert set(facts.journal_records) == facts.ledger, context
    twice = {r: c for r, c in facts.journal_records.items() if c != 1}
    assert not twice, f"{context}: journaled more than once: {twice}"
    for portal, released in hw.strikes().items():
        assert released <= facts.allowed[portal], f"{context}: {portal} released {released}x, decisions {facts.allowed}"
    assert sum(facts.allowed.values()) > 0, f"{context}: no exit was ever allowed; the traffic did not reach the site"
    for approval_id, (spent, entries) in facts.uses.items():
        assert spent == entries == facts.approvals_in_decisions[approval_id], f"{context}: approval {approval_id}"
    for item_id, venue in facts.item_venues.items():
        assert venue == facts.last_moves.get(item_id, corridor), f"{context}: item {item_id}"
    assert len(facts.item_venues) == len(ITEMS)
    print(f"{register.backend}: {len(seen)} records over {runs + 1} runs, kills: {kills}")

"""Durable before acting, on a whole simulated site: a door opens only for a decision already in the local
log. When the disk refuses the record (made immutable with chattr: writes fail with EPERM, as on a disk
gone read-only), the door stays shut and the guards are alarmed; once the disk takes writes again, the
next exit opens and every door release on the wire has its decision in the log and the register."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus
from custodian.demo import PORTALS, Traffic
from custodian.wiring import RunningSite, start_site
from tests.controllers.sitekit import read_local_log

BRIEFING = "E28011700000020000000004"


def _chattr(flag: str, *paths: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True).returncode == 0


@pytest.fixture
def running(site: sessionmaker[Session], tmp_path: Path) -> Iterator[tuple[RunningSite, Traffic, Path]]:
    running = start_site(site, LiveBus(), tmp_path / "state", simulate=True)
    try:
        assert running.wait_ready()
        yield running, Traffic(running, log=lambda _line: None), tmp_path / "state" / "spool"
    finally:
        _chattr("-i", tmp_path / "state" / "spool", *(tmp_path / "state" / "spool").iterdir())
        running.stop()


def _releases(site: RunningSite, portal: str) -> int:
    assert site.sims is not None
    commands = site.sims.panels[PORTALS[portal][0]].commands
    return sum(1 for c in commands if c.kind == "output")


def test_the_door_stays_shut_when_its_decision_cannot_be_made_durable(
    running: tuple[RunningSite, Traffic, Path],
) -> None:
    site, traffic, log_dir = running
    frozen = [log_dir, *log_dir.iterdir()]
    if not _chattr("+i", *frozen):
        pytest.skip("chattr +i is not available here (needs root on ext4/xfs/btrfs): cannot make the disk refuse")
    try:
        assert not traffic.exit_attempt("archive-door", ["20003"], [BRIEFING])  # approved, but not durable
    finally:
        assert _chattr("-i", *frozen)
    assert _releases(site, "archive-door") == 0, "a door acted on a decision that is not on stable storage"
    titles = [e.title for e in site.bus.history()]
    assert "recorder failed" in titles and "EXIT BLOCKED: bob" in titles
    blocked = next(e for e in site.bus.history() if e.title == "EXIT BLOCKED: bob")
    assert "not_recorded_door_kept_locked" in dict(blocked.details)["reasons"]

    assert traffic.exit_attempt("archive-door", ["20003"], [BRIEFING])  # the disk is back
    assert site.runtime.recorder.flush(10)
    allowed = [
        r for r in read_local_log(log_dir).values() if r.action == "exit.decision" and r.payload["allow"]
    ]
    assert len(allowed) == _releases(site, "archive-door") == 1

"""Periodic journal anchors in the running site: `custodian run` writes them to a folder outside the database
while it runs and once more when it stops; a failure to write (a folder it cannot create, a journal that no
longer holds the newest anchor) raises an alarm and the site keeps running."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from controllers.anchoring import AnchorSettings, AnchorWriter
from controllers.bus import LiveBus, LiveKind
from registry import anchors, db, journal
from registry.models import JournalEntry
from tests.controllers.conftest import EXAMPLE_SITE, OutageRegister

CUSTODIAN = Path(sys.executable).with_name("custodian")


def _wait(condition, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


class Output:
    """The process's merged output, read on a thread so the pipe never fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def join(self) -> None:
        self._thread.join(30)


def _anchor_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("journal-anchor-*.json")) if folder.is_dir() else []


@pytest.mark.slow
def test_custodian_run_anchors_periodically_and_alarms_without_stopping(
    outage_register: OutageRegister, tmp_path: Path
) -> None:
    """On SQLite and PostgreSQL (a fresh schema of a throw-away role; never taken away here)."""
    url = outage_register.url
    folder = tmp_path / "elsewhere" / "anchors"
    command = [
        str(CUSTODIAN), "run", str(EXAMPLE_SITE), "--simulate", "--db", url, "--state", str(tmp_path / "state"),
        "--port", "0", "--anchor-dir", str(folder), "--anchor-every", "0.5",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(proc)
    try:
        assert _wait(lambda: "journal anchors every 0.5 s" in out.text, 60), out.text
        site_url = re.search(r"at (http://127\.0\.0\.1:\d+)", out.text)
        assert site_url, out.text
        assert _wait(lambda: _anchor_files(folder), 30), out.text
        [first] = anchors.read(_anchor_files(folder)[0])
        check = subprocess.run(
            [str(CUSTODIAN), "journal", "verify", "--db", url, "--anchor", str(folder)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        assert "holds" in check.stdout and "anchor(s)" in check.stdout, check.stdout

        # Someone plants an anchor the journal never had: every interval alarms, nothing stops.
        forged = anchors.Anchor(first.seq + 10_000, "ab" * 32, None, "2099-01-01T00:00:00+00:00")
        (folder / "journal-anchor-999999999999-20990101T000000Z.json").write_text(forged.to_json())
        assert _wait(lambda: out.text.count("JOURNAL DOES NOT MATCH ITS ANCHORS") >= 2, 30), out.text
        assert proc.poll() is None, out.text
        assert httpx.get(f"{site_url.group(1)}/login", timeout=10).status_code == 200
        (folder / "journal-anchor-999999999999-20990101T000000Z.json").unlink()
    finally:
        proc.terminate()
        proc.wait(60)
        out.join()
    assert proc.returncode == 0, out.text
    assert "stopped cleanly" in out.text and "journal anchored at sequence" in out.text
    # The anchor written at the stop holds the journal's head after the last record was delivered.
    with outage_register.factory() as session:
        head = journal.head(session)
        newest = anchors.read(folder)[-1]
        assert (newest.seq, newest.hash) == (head.seq, head.hash)
        assert anchors.verify(session, anchors.read(folder)).ok


@pytest.mark.slow
def test_an_anchor_folder_that_cannot_be_made_alarms_and_the_site_runs_on(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the anchor folder's parent should be")
    command = [
        str(CUSTODIAN), "run", str(EXAMPLE_SITE), "--simulate", "--db", f"sqlite:///{tmp_path / 'register.db'}",
        "--state", str(tmp_path / "state"), "--port", "0", "--anchor-dir", str(blocker / "anchors"),
        "--anchor-every", "0.5",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(proc)
    try:
        assert _wait(lambda: out.text.count("journal anchor not written") >= 2, 60), out.text
        assert proc.poll() is None, out.text
        site_url = re.search(r"at (http://127\.0\.0\.1:\d+)", out.text)
        assert site_url and httpx.get(f"{site_url.group(1)}/login", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(60)
        out.join()
    assert proc.returncode == 0 and "stopped cleanly" in out.text, out.text


def test_a_truncated_journal_gets_no_fresh_anchor_but_an_alarm(site: sessionmaker[Session], tmp_path: Path) -> None:
    bus = LiveBus()
    writer = AnchorWriter(site, bus, AnchorSettings(tmp_path / "anchors", 60))
    anchored = writer.write_once()
    assert anchored is not None and writer.written == 1
    with db.transaction(site) as session:
        session.execute(delete(JournalEntry).where(JournalEntry.seq > anchored.seq - 3))
        assert session.execute(select(func.count()).select_from(JournalEntry)).scalar_one() == anchored.seq - 3
    assert writer.write_once() is None
    [alarm] = [e for e in bus.history() if e.kind is LiveKind.ALARM]
    assert alarm.title == "JOURNAL DOES NOT MATCH ITS ANCHORS"
    assert "deleted" in dict(alarm.details)["detail"]
    assert [a.seq for a in anchors.read(tmp_path / "anchors")] == [anchored.seq]  # nothing new blessed it
    assert json.loads(_anchor_files(tmp_path / "anchors")[0].read_text())["seq"] == anchored.seq


def test_the_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        AnchorSettings(tmp_path, 0)

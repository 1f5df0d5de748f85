"""What `custodian run` does with the site file at each start (`prepare_register`): the whole file into an
empty register; afterwards nothing while the file is unchanged, and only its configuration once it changed,
so live state (where items are, custody, approval uses) is never reset from the file and a restart never
needs the file edited. Run on SQLite and PostgreSQL, and once as the real command."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from custodian import run
from custodian.run import StopSignal, _reporting_a_slow_stop, prepare_register
from registry import db
from registry.models import Approval, Item, JournalEntry, SiteFileLoad, Venue
from registry.services import approvals, items
from registry.sitefile import TIME_ZONE_ENV, SiteFileError, site_time_zone
from tests.controllers.conftest import EXAMPLE_SITE, OutageRegister
from tests.controllers.sitekit import SiteProcess


def _live_changes(factory: sessionmaker[Session]) -> None:
    """What a running site does to the register: an item moves, an approval is used, a new approval."""
    with db.transaction(factory) as session:
        item = session.execute(select(Item).where(Item.register_number == "S-2026-001")).scalar_one()
        items.place(session, "system", item, "corridor")
        approval = session.execute(select(Approval).where(Approval.ref == "A-2026-0001")).scalar_one()
        approvals.consume(session, "bob", approval, context="portal:archive-door")
        now = dt.datetime.now(dt.UTC)
        new = approvals.request(
            session, "carol", approvals.ApprovalRequest(
                ref="A-LIVE", kind="carry_out", items=("U-2026-001",), people=("carol",),
                valid_from=now, valid_until=now + dt.timedelta(hours=1),
            ),
        )
        approvals.approve(session, "paul", new)


def _state(factory: sessionmaker[Session]) -> tuple[str | None, int, bool]:
    with factory() as session:
        item = session.execute(select(Item).where(Item.register_number == "S-2026-001")).scalar_one()
        approval = session.execute(select(Approval).where(Approval.ref == "A-2026-0001")).scalar_one()
        live = session.execute(select(Approval).where(Approval.ref == "A-LIVE")).scalar() is not None
        return item.venue.code if item.venue else None, approval.uses_left, live


def test_the_site_file_is_applied_once_then_only_its_changed_configuration(
    outage_register: OutageRegister, tmp_path: Path
) -> None:
    factory = outage_register.factory
    site_file = tmp_path / "site.toml"
    site_file.write_text(EXAMPLE_SITE.read_text())
    assert "loaded into the empty register" in prepare_register(factory, site_file)
    _live_changes(factory)
    live = _state(factory)
    assert live[0] == "corridor" and live[2]

    assert "unchanged" in prepare_register(factory, site_file)  # a restart: nothing re-applied
    assert _state(factory) == live

    # The administrator renames the archive and changes an item's title in the file: the venue (configuration)
    # follows the file; the item (live state) is left as the register has it, without an error.
    text = site_file.read_text().replace('name = "Archive"', 'name = "Central archive"')
    site_file.write_text(text.replace('title = "Negotiation briefing', 'title = "Renamed briefing', 1))
    said = prepare_register(factory, site_file)
    assert "configuration applied" in said, said
    assert _state(factory) == live
    with factory() as session:
        assert session.execute(select(Venue.name).where(Venue.code == "archive")).scalar_one() == "Central archive"
        loads = session.execute(select(SiteFileLoad.mode).order_by(SiteFileLoad.id)).scalars().all()
        assert loads == ["full", "configuration"]
        entries = session.execute(select(JournalEntry).where(JournalEntry.action == "site.file_loaded")).scalars()
        assert len(list(entries)) == 2
    assert "unchanged" in prepare_register(factory, site_file)


def test_a_changed_file_the_register_refuses_does_not_stop_the_site(
    outage_register: OutageRegister, tmp_path: Path
) -> None:
    factory = outage_register.factory
    site_file = tmp_path / "site.toml"
    site_file.write_text(EXAMPLE_SITE.read_text())
    prepare_register(factory, site_file)
    site_file.write_text(site_file.read_text().replace('inside = "archive"', 'inside = "no-such-venue"', 1))
    said = prepare_register(factory, site_file)
    assert said.startswith("warning:") and "no-such-venue" in said and "runs on the register as it is" in said
    with factory() as session:
        assert session.execute(select(SiteFileLoad.mode)).scalars().all() == ["full"]


@pytest.mark.slow
def test_custodian_run_restarts_on_a_register_whose_items_moved(tmp_path: Path) -> None:
    """The command itself: started, its register changed live, stopped, started again without any edit."""
    url = f"sqlite:///{tmp_path / 'register.db'}"
    command = ["run", str(EXAMPLE_SITE), "--simulate", "--db", url, "--state", str(tmp_path / "s"), "--port", "0"]
    for n in range(2):
        site = SiteProcess.command(command, tmp_path / f"run-{n}.out")
        try:
            assert site.wait_for("site running"), site.text()  # the stop comes once it runs, not while it starts
        finally:
            returncode = site.terminate()
        said = site.text()
        assert returncode == 0, said
        assert ("loaded into the empty register" if n == 0 else "unchanged") in said
        assert "stopped cleanly" in said and "every accepted one is in it" in said
        if n == 0:
            engine = db.make_engine(url)
            _live_changes(db.session_factory(engine))
            engine.dispose()


def test_the_site_file_names_the_time_zone_and_the_environment_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text(EXAMPLE_SITE.read_text())
    monkeypatch.delenv(TIME_ZONE_ENV, raising=False)
    assert site_time_zone(site_file) == "UTC"
    monkeypatch.setenv(TIME_ZONE_ENV, "Europe/Oslo")
    assert site_time_zone(site_file) == "Europe/Oslo" == site_time_zone()
    declared = EXAMPLE_SITE.read_text().replace('unit = "', 'time_zone = "Europe/Berlin"\nunit = "', 1)
    site_file.write_text(declared)
    assert site_time_zone(site_file) == "Europe/Berlin"  # the file wins over the environment
    site_file.write_text(declared.replace("Europe/Berlin", "Europe/Atlantis"))
    with pytest.raises(SiteFileError) as refused:
        site_time_zone(site_file)
    assert refused.value.line == 8 and "IANA time zone" in str(refused.value)


def test_a_stop_signal_the_kernel_hands_to_another_thread_still_stops_the_site() -> None:
    """The kernel may deliver SIGTERM to any thread of the site; Python's handler then waits for the main thread,
    which waits for the stop. Before, that wait was untimed and the site ignored the SIGTERM for good."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop = StopSignal()
        assert not stop.wait(0.05)

        def receive_it_here() -> None:  # a driver's thread, the one the kernel picked
            time.sleep(0.2)
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

        other = threading.Thread(target=receive_it_here)
        other.start()
        assert stop.wait(30), "the stop signal was lost"
        other.join()
        assert stop.is_set()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_a_stop_that_takes_long_prints_where_every_thread_waits(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A driver that does not let go at stop shows where it waits (the operator's log, a test's failure)."""
    with _reporting_a_slow_stop():
        pass  # a prompt stop prints nothing
    assert capfd.readouterr().err == ""
    monkeypatch.setattr(run, "SLOW_STOP_S", 0.05)
    with _reporting_a_slow_stop():
        time.sleep(1.0)  # a stop stuck past the limit
    report = capfd.readouterr().err
    assert "most recent call first" in report
    assert "test_a_stop_that_takes_long_prints_where_every_thread_waits" in report  # where the stop waits

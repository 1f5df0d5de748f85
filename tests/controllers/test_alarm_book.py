"""The alarm book of a running site (the real SiteRuntime, no test double): ids, acknowledgement, repeats of
technical alarms, escalation, and a restart that rebuilds the book from the register."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from controllers.alarms import KINDS, Category, Evidence
from controllers.bus import LiveBus, LiveKind
from controllers.control import AlarmConflict, UnknownAlarm
from controllers.site import SiteRuntime
from registry.models import AlarmRecord, JournalEntry
from tracking.results import ALARM_KINDS, REASON_NAMES
from tracking.vocabulary import ALARMS, REASONS


def runtime(site: sessionmaker[Session], tmp_path: Path, **kwargs: object) -> SiteRuntime:
    return SiteRuntime(site, LiveBus(), tmp_path / "state" / "spool", backend="reference", **kwargs).start()  # type: ignore[arg-type]


def test_every_reason_and_alarm_kind_has_a_sentence() -> None:
    assert set(REASON_NAMES) <= set(REASONS)
    assert set(ALARM_KINDS) | set(KINDS) <= set(ALARMS)
    assert set(ALARM_KINDS) <= set(KINDS)  # every engine alarm has its list (security or technical) and severity
    assert all(text.endswith(".") and "_" not in text for text in (*REASONS.values(), *ALARMS.values()))


def test_acknowledge_resolve_and_a_restart_keeps_the_book(site: sessionmaker[Session], tmp_path: Path) -> None:
    first = runtime(site, tmp_path)
    try:
        now = time.time_ns() // 1000
        blocked = first.alarms_book.raise_alarm(
            "exit_blocked", now, "main-exit", Evidence("carol", ("S-2026-002/1",), ("clearance",)), portal_id=3
        )
        forced = first.alarms_book.raise_alarm("door_forced", now, "archive-door")
        [event] = [e for e in first.bus.history() if e.kind == LiveKind.ALARM and e.alarm_id == blocked.alarm_id]
        assert event.source == "main-exit" and ("person", "carol") in event.details
        with pytest.raises(UnknownAlarm):
            first.acknowledge(999, "gus")
        with pytest.raises(AlarmConflict, match="acknowledged before"):
            first.resolve(blocked.alarm_id, "gus", "talked to her")
        first.acknowledge(blocked.alarm_id, "gus", "on my way")
        with pytest.raises(AlarmConflict, match="already acknowledged by gus"):
            first.acknowledge(blocked.alarm_id, "gert")
        first.acknowledge(forced.alarm_id, "gus")
        first.resolve(forced.alarm_id, "gus", "contractor let in by facilities")
        assert [a.alarm_id for a in first.alarms()] == [blocked.alarm_id]
    finally:
        assert first.stop() == 0
    second = runtime(site, tmp_path)
    try:
        [kept] = second.alarms()
        assert kept.alarm_id == blocked.alarm_id and kept.state == "acknowledged" and kept.acknowledged_by == "gus"
        assert kept.evidence.items == ("S-2026-002/1",) and kept.acknowledge_note == "on my way"
        later = second.alarms_book.raise_alarm("tamper", time.time_ns() // 1000, "main-exit")
        assert later.alarm_id > forced.alarm_id  # ids go on after a restart
        second.recorder.flush(10)
        with site() as session:
            rows = {r.id: r for r in session.execute(select(AlarmRecord)).scalars()}
            assert rows[forced.alarm_id].state == "resolved" and rows[forced.alarm_id].resolved_by == "gus"
            assert json.loads(rows[blocked.alarm_id].reasons_json) == ["clearance"]
            actions = [e.action for e in session.execute(select(JournalEntry)).scalars()]
        assert actions.count("alarm.acknowledged") == 2 and actions.count("alarm.resolved") == 1
    finally:
        second.stop()


def test_technical_alarms_count_repeats_on_their_own_list(site: sessionmaker[Session], tmp_path: Path) -> None:
    site_runtime = runtime(site, tmp_path)
    try:
        book = site_runtime.alarms_book
        now = time.time_ns() // 1000
        ids = {book.raise_alarm("late_read", now + n, "main-exit-reader").alarm_id for n in range(5)}
        assert len(ids) == 1
        [late] = book.alarms()
        assert late.category is Category.TECHNICAL and late.repeats == 5
        assert book.procedure("late_read")  # a default step for every technical kind
        site_runtime.recorder.flush(10)
        with site() as session:
            assert session.get(AlarmRecord, (site_runtime.recorder.identity.site, late.alarm_id)).repeats == 5  # type: ignore[union-attr]
        book.clear("late_read", "main-exit-reader", "reader caught up")
        assert book.raise_alarm("late_read", now + 9, "main-exit-reader").alarm_id != late.alarm_id
    finally:
        site_runtime.stop()


def test_an_unacknowledged_critical_alarm_escalates_once(site: sessionmaker[Session], tmp_path: Path) -> None:
    site_runtime = runtime(site, tmp_path, escalate_after_s=0.5)
    try:
        book = site_runtime.alarms_book
        alarm = book.raise_alarm("unauthorized_exit", time.time_ns() // 1000, "main-exit")
        quiet = book.raise_alarm("recorder_error", time.time_ns() // 1000, "recorder")
        deadline = time.monotonic() + 10
        while not [e for e in site_runtime.bus.history() if e.kind == LiveKind.ESCALATION]:
            assert time.monotonic() < deadline, "the site's watcher escalates within about a second"
            time.sleep(0.1)
        time.sleep(1.5)
        escalations = [e for e in site_runtime.bus.history() if e.kind == LiveKind.ESCALATION]
        assert [e.alarm_id for e in escalations] == [alarm.alarm_id]  # once, and never a technical alarm
        assert book.get(alarm.alarm_id).escalated_us is not None and book.get(quiet.alarm_id).escalated_us is None
    finally:
        site_runtime.stop()


def test_site_procedures_replace_the_defaults(site: sessionmaker[Session], tmp_path: Path) -> None:
    site_runtime = runtime(site, tmp_path)
    try:
        assert site_runtime.procedure("door_forced")[0].startswith("Go to the door")
        site_runtime.set_procedure("door_forced", ["Call the control room on 2222.", "  "], "admin")
        assert site_runtime.procedure("door_forced") == ("Call the control room on 2222.",)
    finally:
        site_runtime.stop()
    again = runtime(site, tmp_path)
    try:
        assert again.procedure("door_forced") == ("Call the control room on 2222.",)
        with site() as session:
            query = select(JournalEntry).where(JournalEntry.action == "alarm.procedure_set")
            assert session.execute(query).scalar_one()
    finally:
        again.stop()

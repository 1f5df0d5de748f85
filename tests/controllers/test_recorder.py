"""The recorder against real registers (SQLite and PostgreSQL) and a real disk: outages with stops and
restarts inside them, a torn and a damaged local log, records the register refuses, an effect that raises,
and replays of records the register already holds."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import struct
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus
from controllers.recorder import Recorder
from controllers.records import AlarmRaised, DeviceHealthChanged, ExitDecision, ItemCrossed, RecordId, kind
from controllers.site import SiteRuntime
from registry import db, journal
from registry.models import AcceptedRecord, AlarmRecord, Approval, DeadLetter, Incident, Item, JournalEntry, Venue
from tests.controllers.conftest import OutageRegister


def health(n: int) -> DeviceHealthChanged:
    return DeviceHealthChanged(device=f"reader-{n}", health="online", reason=f"n={n}")


def journaled(factory: sessionmaker[Session]) -> Counter[str]:
    """Journal entries per record id, with the chain verified."""
    with factory() as session:
        assert journal.verify(session).ok
        rows = session.execute(select(JournalEntry.action, JournalEntry.payload)).all()
    payloads = [json.loads(payload) for action, payload in rows if action != "record.dead_letter"]
    return Counter(p["record"] for p in payloads if "record" in p)


def wait_for(condition: object, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_an_outage_with_a_stop_and_a_restart_inside_it_loses_nothing(
    outage_register: OutageRegister, tmp_path: Path
) -> None:
    register = outage_register
    log_dir = tmp_path / "log"
    seen: list[bool] = []
    recorder = Recorder(register.factory, log_dir, on_db_health=lambda ok, _why: seen.append(ok)).start()
    ids = recorder.accept([health(n) for n in range(50)])
    assert recorder.flush(10)
    register.take_away()
    for chunk in range(5):
        ids += recorder.accept([health(n) for n in range(50 + 50 * chunk, 100 + 50 * chunk)])
    assert wait_for(lambda: recorder.retries > 0), "the recorder never noticed the outage"
    assert seen == [False]
    assert recorder.stop() == 250, "a stop during the outage says how many records stay on disk"

    again = Recorder(register.factory, log_dir).start()  # started inside the outage: it finds them on disk
    assert again.backlog() == 250
    ids += again.accept([health(n) for n in range(300, 400)])
    assert wait_for(lambda: again.retries > 0)
    assert again.stop() == 350

    register.give_back()
    last = Recorder(register.factory, log_dir).start()
    assert last.flush(30), f"{last.backlog()} records still undelivered"
    assert last.stop() == 0
    assert len(set(ids)) == 400 and last.written == 350
    assert journaled(register.factory) == Counter({str(i): 1 for i in ids})
    assert not list(log_dir.glob("seg-*.log"))[1:], "delivered segments are released, the active one kept"


def _frames(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each frame in a segment, from the documented layout."""
    data = path.read_bytes()
    pos = 12 + struct.unpack_from("<I", data, 4)[0]
    found = []
    while pos < len(data):
        length = struct.unpack_from("<I", data, pos + 4)[0]
        found.append((pos, 12 + length))
        pos += 12 + length
    return found


def _damage(log_dir: Path) -> list[RecordId]:
    """100 records accepted while the register is away, then record 41 damaged and the last write torn."""
    unreachable = db.session_factory(db.make_engine(f"sqlite:///{log_dir.parent}/missing/dir/register.db"))
    first = Recorder(unreachable, log_dir).start()
    ids = first.accept([health(n) for n in range(100)])
    assert first.stop() == 100
    [segment] = log_dir.glob("seg-*.log")
    frames = _frames(segment)
    data = bytearray(segment.read_bytes())
    offset, length = frames[40]
    data[offset + length - 3] ^= 0xFF  # a flipped bit in record 41's payload
    last_offset, last_length = frames[-1]
    segment.write_bytes(bytes(data[: last_offset + last_length // 2]))  # the last write cut short
    unreachable.kw["bind"].dispose()
    return ids


def test_a_torn_and_a_damaged_local_log_are_skipped_with_an_alarm(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/register.db")
    db.upgrade(engine)
    factory = db.session_factory(engine)
    log_dir = tmp_path / "log"
    ids = _damage(log_dir)
    recorder = Recorder(factory, log_dir).start()  # on its own: it journals the damage itself
    [later] = recorder.accept([health(1000)])
    assert recorder.flush(10)
    recorder.stop()
    found = [d.describe() for d in recorder.damage]
    assert len(found) == 2 and "damaged frames" in found[0] and "torn tail" in found[1]
    entries = journaled(factory)
    intact = [i for n, i in enumerate(ids) if n not in (40, 99)]
    assert all(entries[str(i)] == 1 for i in intact) and len(entries) == len(intact) + 3  # + alarms, + later
    assert str(ids[40]) not in entries and str(ids[99]) not in entries
    assert later.seq > ids[-1].seq, "an id lost to damage is never given again"
    with factory() as session:
        actions = session.execute(select(JournalEntry.action).where(JournalEntry.action.like("alarm.%"))).scalars()
        assert list(actions) == ["alarm.local_log_damaged"] * 2
    engine.dispose()


def test_a_site_on_a_damaged_local_log_alarms_each_damage_and_journals_it_once(
    site: sessionmaker[Session], tmp_path: Path
) -> None:
    log_dir = tmp_path / "state" / "spool"
    _damage(log_dir)
    runtime = SiteRuntime(site, LiveBus(), log_dir, backend="reference").start()
    try:
        # a technical alarm: the second damage counts as a repeat of the open one
        damaged = [a for a in runtime.alarms() if a.kind == "local_log_damaged"]
        assert [(a.state, a.repeats) for a in damaged] == [("open", 2)]
        assert "damaged frames" in damaged[0].evidence.detail
        assert runtime.recorder.flush(10)
    finally:
        runtime.stop()
    with site() as session:
        actions = session.execute(select(JournalEntry.action).where(JournalEntry.action.like("alarm.%"))).scalars()
        assert list(actions) == ["alarm.local_log_damaged"] * 2
        rows = session.execute(select(AlarmRecord).where(AlarmRecord.kind == "local_log_damaged")).scalars().all()
        assert sorted(r.id for r in rows) == sorted(a.alarm_id for a in damaged)  # in the book's register table


@kind
@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AlarmWithBrokenEffect(AlarmRaised):
    """The product's alarm record with an effect that fails like a bug would (not a rule refusal)."""

    KIND: ClassVar[str] = "test_alarm_with_broken_effect"

    def has_effects(self) -> bool:
        return True

    def commit(self, tx: object, record_id: RecordId) -> None:
        tx.effect(lambda session: 1 / 0)  # type: ignore[attr-defined]


def test_a_record_the_register_refuses_goes_to_the_dead_letters_and_the_rest_flow(
    outage_register: OutageRegister, tmp_path: Path
) -> None:
    register = outage_register
    alarms: list[str] = []
    recorder = Recorder(register.factory, tmp_path / "log", on_alarm=lambda k, _detail: alarms.append(k)).start()
    # A leak alarm at a portal the register does not know: its incident breaks a foreign key.
    bad = AlarmRaised(alarm="destroyed_item_seen", source="gone", detail="", time_us=1, portal_id=999_999)
    broken = AlarmWithBrokenEffect(alarm="x", source="y", detail="", time_us=2)
    ids = recorder.accept([health(0), health(1), bad, health(2), broken, health(3)])
    assert recorder.flush(20)
    [after] = recorder.accept([health(4)])  # the loop carries on
    assert recorder.flush(10)
    recorder.stop()
    assert alarms == ["record_dead_lettered", "record_dead_lettered"]
    with register.factory() as session:
        letters = {(d.seq, d.kind): d.error for d in session.execute(select(DeadLetter)).scalars()}
        flagged = set(session.execute(select(AcceptedRecord.seq).where(AcceptedRecord.dead_letter)).scalars())
        assert session.execute(select(func.count()).select_from(Incident)).scalar_one() == 0
    assert set(letters) == {(ids[2].seq, "alarm"), (ids[4].seq, "test_alarm_with_broken_effect")}
    assert "IntegrityError" in letters[(ids[2].seq, "alarm")]
    assert "ZeroDivisionError" in letters[(ids[4].seq, "test_alarm_with_broken_effect")]
    assert flagged == {ids[2].seq, ids[4].seq}
    entries = journaled(register.factory)
    assert entries == Counter({str(i): 1 for i in (*ids[:2], ids[3], ids[5], after)})
    assert recorder.writer.dead_letters == 2


def test_a_replay_of_records_the_register_holds_applies_nothing_twice(
    site: sessionmaker[Session], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with site() as session:
        approval = session.execute(select(Approval).where(Approval.ref == "A-2026-0001")).scalar_one()
        item = session.execute(select(Item).where(Item.register_number == "S-2026-001")).scalar_one()
        corridor = session.execute(select(Venue).where(Venue.code == "corridor")).scalar_one()
        uses_before, item_id, corridor_id = approval.uses_left, item.id, corridor.id
    records = [
        ExitDecision(portal="archive-door", person="bob", allow=True, badge="20003", items=("S-2026-001/1",),
                     reasons=(), approvals=(approval.id,), time_us=1),
        ItemCrossed(item_id=item_id, item="S-2026-001/1", epc=item.epc, portal="archive-door", from_venue="archive",
                    to_venue="corridor", to_venue_id=corridor_id, direction="exit", time_us=2,
                    emergency_release=False),
        AlarmRaised(alarm="possible_clone", source="main-exit", detail="too fast", time_us=3, item_id=item_id),
    ]
    log_dir = tmp_path / "log"
    recorder = Recorder(site, log_dir).start()
    ids = recorder.accept(records)
    assert recorder.flush(10)
    recorder.stop()
    # A crash after the register's commit and before the cursor moved: the next start reads them again.
    (log_dir / "cursor-register.json").unlink()
    with caplog.at_level(logging.WARNING, logger="controllers.recorder"):
        again = Recorder(site, log_dir).start()  # its thread may deliver them before a backlog() here would ask
    try:
        assert "delivering 3 records accepted by an earlier run" in caplog.messages
        assert again.flush(10)
    finally:
        again.stop()
    assert again.written == 0
    assert journaled(site) == Counter({str(i): 1 for i in ids})
    with site() as session:
        approval = session.get(Approval, approval.id)
        assert approval is not None and approval.uses_left == uses_before - 1
        used = session.execute(select(JournalEntry).where(JournalEntry.action == "approval.used")).scalars().all()
        assert len(used) == 1
        assert session.get(Item, item_id).venue_id == corridor_id  # type: ignore[union-attr]
        assert [i.kind for i in session.execute(select(Incident)).scalars()] == ["possible_clone"]


def test_an_unexpected_error_in_the_loop_raises_an_alarm_and_the_loop_carries_on(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/register.db")
    db.upgrade(engine)
    factory = db.session_factory(engine)
    log_dir = tmp_path / "log"
    (log_dir / "cursor-register.json").mkdir(parents=True)  # the cursor cannot be saved: IsADirectoryError
    alarms: list[tuple[str, str]] = []
    recorder = Recorder(factory, log_dir, on_alarm=lambda k, detail: alarms.append((k, detail))).start()
    try:
        ids = recorder.accept([health(n) for n in range(10)])
        assert wait_for(lambda: len(alarms) >= 2), "no alarm for the failing loop"
        assert {k for k, _ in alarms} == {"recorder_error"} and "IsADirectoryError" in alarms[0][1]
        (log_dir / "cursor-register.json").rmdir()
        ids += recorder.accept([health(10)])
        assert recorder.flush(10)
    finally:
        recorder.stop()
    assert journaled(factory) == Counter({str(i): 1 for i in ids}), "retried batches are written once"
    engine.dispose()


def test_a_batch_refused_after_an_approval_use_spends_it_once(site: sessionmaker[Session], tmp_path: Path) -> None:
    """A batch whose first record spends an approval use and whose later record fails is retried record by
    record: the use is spent once (a rolled-back batch leaves nothing behind, not even on SQLite, where a
    savepoint opened outside a transaction becomes the transaction and its release commits)."""
    with site() as session:
        approval = session.execute(select(Approval).where(Approval.ref == "A-2026-0001")).scalar_one()
        uses_before = approval.uses_left
    exit_ = ExitDecision(portal="archive-door", person="bob", allow=True, badge="20003", items=("S-2026-001/1",),
                         reasons=(), approvals=(approval.id,), time_us=1)
    broken = AlarmWithBrokenEffect(alarm="x", source="y", detail="", time_us=2)
    recorder = Recorder(site, tmp_path / "log").start()
    ids = recorder.accept([exit_, broken, health(0)])
    assert recorder.flush(10)
    recorder.stop()
    assert recorder.writer.dead_letters == 1
    assert journaled(site) == Counter({str(ids[0]): 1, str(ids[2]): 1})
    with site() as session:
        assert session.get(Approval, approval.id).uses_left == uses_before - 1  # type: ignore[union-attr]
        used = session.execute(select(JournalEntry).where(JournalEntry.action == "approval.used")).scalars().all()
        assert len(used) == 1


def test_an_effect_the_register_refuses_is_named_in_the_records_journal_entry(
    site: sessionmaker[Session], tmp_path: Path
) -> None:
    """The door already acted: the record lands whatever the register's rules say of its effects, and its
    journal entry names each refused one (here an exit relying on an approval with no use left)."""
    with site() as session, session.begin():
        approval = session.execute(select(Approval).where(Approval.ref == "A-2026-0001")).scalar_one()
        approval.uses_left, approval_id = 0, approval.id
    exit_ = ExitDecision(portal="archive-door", person="bob", allow=True, badge="20003", items=("S-2026-001/1",),
                         reasons=(), approvals=(approval_id,), time_us=1)
    recorder = Recorder(site, tmp_path / "log").start()
    [record_id] = recorder.accept([exit_])
    assert recorder.flush(10)
    recorder.stop()
    assert journaled(site) == Counter({str(record_id): 1})
    with site() as session:
        entry = session.execute(select(JournalEntry).where(JournalEntry.action == "exit.decision")).scalar_one()
        assert "approval.used_up" in json.loads(entry.payload)["effect_refused"]


def test_a_run_of_crossings_in_one_batch_lands_as_each_would_alone(site: sessionmaker[Session], tmp_path: Path) -> None:
    """Crossings next to each other in a batch are committed together (their items and venues read once):
    the register ends as after each alone, in order: the same item moved twice ends where it went last,
    a breach is named, what the register cannot follow is refused and still journaled, records between
    them keep their place in the journal."""
    with site() as session:
        item = session.execute(select(Item).where(Item.register_number == "S-2026-001")).scalar_one()
        venues = {v.code: v.id for v in session.execute(select(Venue)).scalars()}
        item_id, epc, archive_venue = item.id, item.epc, item.venue_id

    def crossing(to: str, n: int, *, item_id: int = item_id, to_venue_id: int | None = None) -> ItemCrossed:
        return ItemCrossed(item_id=item_id, item="S-2026-001/1", epc=epc, portal="archive-door", from_venue="x",
                           to_venue=to, to_venue_id=to_venue_id or venues[to], direction="exit", time_us=n,
                           emergency_release=False)

    records = [
        crossing("corridor", 1), crossing("reading-room", 2), health(0), crossing("corridor", 3, item_id=99_999),
        crossing("corridor", 4, to_venue_id=99_999), crossing("corridor", 5),
    ]
    recorder = Recorder(site, tmp_path / "log").start()
    ids = recorder.accept(records)
    assert recorder.flush(10)
    recorder.stop()
    with site() as session:
        rows = session.execute(
            select(JournalEntry.action, JournalEntry.payload).where(JournalEntry.seq > 0).order_by(JournalEntry.seq)
        ).all()
        ours = [(action, json.loads(payload)) for action, payload in rows if '"record"' in payload]
        assert session.get(Item, item_id).venue_id == venues["corridor"] != archive_venue  # type: ignore[union-attr]
        assert journal.verify(session).ok
    assert [p["record"] for _, p in ours] == [str(i) for i in ids]
    assert [a for a, _ in ours] == ["movement.crossed"] * 2 + ["device.health"] + ["movement.crossed"] * 3
    rule = re.compile(r"\[?([\w.]+)")  # the rule a note names first
    notes = [{k: rule.match(v).group(1) for k, v in p.items() if k in ("refused", "breach")} for _, p in ours]  # type: ignore[union-attr]
    assert notes == [{}, {"breach": "venue.ceiling"}, {}, {"refused": "item.unknown"}, {"refused": "venue.unknown"},
                     {}]

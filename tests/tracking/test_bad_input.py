"""Bad input is counted and reported, never a crash and never the loss of a valid read."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tracking.sites import SECOND, carry, epc_for, vault_site
from tracking.engine import Engine
from tracking.epc import encode_epcs
from tracking.events import ReadBatch, TagRead
from tracking.model import EngineConfig, ItemSpec
from tracking.snapshot import build_snapshot

T0 = 10 * SECOND


@pytest.fixture(params=["numba", "reference"])
def engine(request: pytest.FixtureRequest) -> Engine:
    site = vault_site(items=(ItemSpec(1, epc_for(1), None, 2, "active", 2, (1,)),))
    return Engine(build_snapshot(site), EngineConfig(), request.param)


def test_unknown_reader_antenna_and_bad_epc_are_data_quality_alarms(engine: Engine) -> None:
    engine.on_read(TagRead("ghost", 1, epc_for(1), T0, -50.0))
    engine.on_read(TagRead("R40", 9, epc_for(1), T0 + 1, -50.0))
    engine.on_read(TagRead("R40", 1, "ABC", T0 + 2, -50.0))
    engine.on_read(TagRead("R40", 1, "E2" * 13, T0 + 3, -50.0))  # 104 bits: not whole 16-bit words
    out = engine.advance(T0 + SECOND)
    details = sorted((a.detail, a.reader) for a in out.alarms if a.kind == "data_quality")
    assert details == [("bad_epc_length", "R40"), ("unknown_reader_or_antenna", "R40"),
                       ("unknown_reader_or_antenna", "unknown")]
    assert engine.stats["bad_epc_length"] == 2 and engine.stats["unknown_reader_or_antenna"] == 2


def test_nan_and_absurd_rssi_are_reported_but_the_read_still_counts(engine: Engine) -> None:
    t = T0
    for antenna, rssi in [(1, float("nan")), (1, 900.0), (2, float("nan")), (2, -50.0)]:
        engine.on_read(TagRead("R40", antenna, epc_for(1), t, rssi))
        t += 50_000
    out = engine.advance(T0 + 2 * SECOND)
    assert [(m.item_id, m.direction) for m in out.movements] == [(1, "exit")]
    assert engine.stats["bad_rssi"] == 3
    assert [a.detail for a in out.alarms if a.kind == "data_quality"] == ["bad_rssi"]  # once per period


def test_reads_older_than_the_horizon_are_reported_late(engine: Engine) -> None:
    engine.advance(T0)
    engine.on_read(TagRead("R40", 1, epc_for(1), T0 - SECOND, -50.0))
    out = engine.advance(T0 + SECOND)
    late = [a for a in out.alarms if a.kind == "late_read"]
    assert len(late) == 1 and late[0].epc == epc_for(1) and late[0].reader == "R40"
    assert engine.stats["late_read"] == 1


def test_a_tag_read_every_round_while_its_reader_lags_alarms_late_once(engine: Engine) -> None:
    engine.advance(T0 + SECOND)
    for k in range(50):  # two tags, every 10 ms, all arriving after the horizon passed them
        for epc in (epc_for(1), epc_for(2)):
            engine.on_read(TagRead("R40", 1, epc, T0 + k * 10_000, -50.0))
    out = engine.advance(T0 + 2 * SECOND)
    late = [a for a in out.alarms if a.kind == "late_read"]
    assert sorted(a.epc for a in late) == [epc_for(1), epc_for(2)] and engine.stats["late_read"] == 100


def test_out_of_order_reads_within_the_reorder_buffer_are_sorted(engine: Engine) -> None:
    times = [T0 + 150_000, T0, T0 + 100_000, T0 + 50_000]  # outside reads arrive before inside ones
    for t, antenna in zip(times, [2, 1, 2, 1], strict=True):
        engine.on_read(TagRead("R40", antenna, epc_for(1), t, -50.0))
    out = engine.advance(T0 + 2 * SECOND)
    assert [m.direction for m in out.movements] == ["exit"] and engine.stats["late_read"] == 0


def test_empty_batch_and_time_that_never_advances(engine: Engine) -> None:
    words, bits = encode_epcs([])
    empty = ReadBatch(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), words, bits,
                      np.zeros(0), np.zeros(0, np.uint64))
    assert engine.process(empty).alarms == []
    carry(engine, 40, [epc_for(1)], T0)
    assert engine.advance(T0).movements == []
    assert engine.advance(T0 - SECOND).movements == []  # the clock going backwards does not rewind
    assert len(engine.advance(T0 + 2 * SECOND).movements) == 1


def test_batch_path_equals_single_events(engine: Engine) -> None:
    reads = [TagRead("R40", 1 + (k >= 3), epc_for(1), T0 + k * 50_000, -50.0) for k in range(6)]
    batch = ReadBatch.from_reads(reads, engine.snapshot.reader_code)
    out = engine.process(batch, now_us=T0 + 2 * SECOND)
    assert [(m.item_id, m.direction, m.time_us) for m in out.movements] == [(1, "exit", T0 + 250_000)]


def _odd_columns(batch: ReadBatch) -> ReadBatch:
    """The same reads in columns of other dtypes and layouts: strided views, Fortran order, read-only."""

    def strided(column: np.ndarray) -> np.ndarray:
        doubled = np.repeat(column, 2, axis=0)
        return doubled[::2]

    words = np.asfortranarray(batch.epc_words)
    stale = strided(batch.stale_flags())
    for column in (words, stale):
        column.flags.writeable = False
    return ReadBatch(batch.time_us.astype(np.uint64), batch.reader.astype(np.int64), batch.antenna.astype(np.int8),
                     words, strided(batch.epc_bits).astype(np.int32), batch.rssi.astype(np.float32),
                     strided(batch.tid_hash), stale)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_a_batch_of_any_column_types_and_layouts_decides_as_the_same_reads_made_by_from_reads(backend: str) -> None:
    # The Numba core calls its read kernel through the code compiled for one set of column types
    # (ReadBatch.in_kernel_types): any other batch must be taken in as those, never read as raw memory.
    items = tuple(ItemSpec(n, epc_for(n), None, 2, "active", 2, (1,)) for n in (1, 2, 3))
    snapshot = build_snapshot(vault_site(items=items))
    reads = [TagRead("R20", antenna, epc_for(n), T0 + 40_000 * step + n, -50.0 - n, stale=n == 3 and step == 0)
             for step, antenna in enumerate((1, 1, 2, 2)) for n in (1, 2, 3)]
    outputs = []
    for batch in (ReadBatch.from_reads(reads, snapshot.reader_code),
                  _odd_columns(ReadBatch.from_reads(reads, snapshot.reader_code))):
        engine = Engine(snapshot, EngineConfig(), backend)
        engine.ingest(batch)
        out = engine.advance(T0 + SECOND)
        outputs.append((list(out.movements), list(out.alarms), engine.venue_of(1), engine.venue_of(3)))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][0]) == 2  # items 1 and 2 crossed (item 3's first reads were stale)

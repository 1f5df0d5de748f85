"""The local log's frames: whatever text a record carries comes back as it went in, and whatever happens to
the bytes on disk (bit flips, cuts, garbage), the reader never fails and never returns a frame that was
not written."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from controllers.outbox import Damage, Entry, Frame, LocalLog, encode_frame, parse

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
entries = st.tuples(st.integers(0, 1), texts, texts, texts, texts, texts)


@given(st.lists(entries, min_size=1, max_size=8))
def test_frames_come_back_as_written(written: list[tuple[int, str, str, str, str, str]]) -> None:
    data = b"".join(encode_frame(n + 1, *entry) for n, entry in enumerate(written))
    frames = list(parse(data, 7, Path("seg"), 100))
    assert all(isinstance(f, Frame) for f in frames)
    assert [(f.seq, f.flags, f.kind, f.actor, f.action, f.subject, f.payload) for f in frames] == [
        (n + 1, *entry) for n, entry in enumerate(written)
    ]
    assert frames[-1].end == (7, 100 + len(data))


@given(
    st.lists(entries, min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    st.integers(0, 10_000),
    st.binary(max_size=30),
)
def test_damage_is_skipped_and_never_invents_a_frame(
    written: list[tuple[int, str, str, str, str, str]], flips: list[tuple[int, int]], cut: int, junk: bytes
) -> None:
    originals = {(n + 1, *entry) for n, entry in enumerate(written)}
    data = bytearray(b"".join(encode_frame(n + 1, *entry) for n, entry in enumerate(written)))
    for at, value in flips:
        if data:
            data[at % len(data)] ^= value
    damaged = bytes(data[: len(data) - cut % (len(data) + 1)]) + junk
    parts = list(parse(damaged, 1, Path("seg")))
    covered = 0
    for part in parts:
        if isinstance(part, Frame):
            assert (part.seq, part.flags, part.kind, part.actor, part.action, part.subject, part.payload) in originals
            covered = part.end_offset
        else:
            assert isinstance(part, Damage) and part.offset == covered and part.length > 0
            covered = part.offset + part.length
    assert covered == len(damaged)


def test_a_second_consumer_keeps_segments_until_it_has_passed_them(tmp_path: Path) -> None:
    log = LocalLog(tmp_path, "site", "node", segment_bytes=2_000)
    log.open("register")
    try:
        other = log.add_cursor("jetstream")
        register = log.cursor("register")
        for n in range(40):  # about 150 bytes a frame: several segments
            log.append(lambda first, n=n: [Entry(0, "k", "a", "act", f"s{n}", '"' + "x" * 100 + '"')])
        assert len(log.segments()) > 2
        frames, through = register.read(1000)
        assert [f.subject for f in frames] == [f"s{n}" for n in range(40)]
        register.commit(len(frames), through)
        assert len(log.segments()) > 2, "the other consumer has not passed them yet"
        frames, through = other.read(15)
        other.commit(len(frames), through)
        assert len(log.segments()) > 1 and log.segments()[0] <= frames[-1].seq + 1
        frames, through = other.read(1000)
        assert [f.subject for f in frames] == [f"s{n}" for n in range(15, 40)]
        other.commit(len(frames), through)
        assert len(log.segments()) == 1  # only the one being appended to
    finally:
        log.close()

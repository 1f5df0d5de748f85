"""The local log: every record this node accepted, on stable storage before anything acts on it.

An append-only log of checksummed, length-prefixed frames in segment files. Consumers (the register
writer today; a JetStream publisher for the multi-site work, with `Nats-Msg-Id` = the record id) each read
it through a named cursor (`add_cursor`) and commit how far their contents are durable elsewhere; a segment is deleted
only when every cursor has passed it, and never while it is the one being appended to.

Layout of the directory:
    seg-<base seq, 20 digits>.log   one segment: a header, then frames
    cursor-<consumer>.json          how far that consumer has taken the log (a hint; see below)

Segment header: b"\\xc5~L1", u32 length, u32 CRC-32, then JSON {"site", "node", "base_seq"}.
Frame:          b"\\xc5~R1", u32 length n, u32 CRC-32 of the length and the body, then the n-byte body:
                u64 seq, u8 flags (bit 0: the record has register effects), u16 byte lengths of kind, actor,
                action and subject, those four strings (UTF-8), then the payload (UTF-8 canonical JSON) to
                the end.
All integers little-endian. b"\\xc5~" never occurs in UTF-8 text, so a reader resynchronises after damage
at the next magic whose frame checks out.

Recovery, at every open: each segment is scanned; a torn tail (a crash in the middle of a write) or a
damaged frame is skipped and reported (`Damage`), never fatal; a fresh segment is started, so nothing is
ever appended after damage. The next sequence number is past everything seen, and past every frame the
damaged bytes could have held, so no id is ever given twice, even when a frame was lost to damage.
A cursor file is only a hint: a consumer must be idempotent (the register skips ids it holds), and a lost
or stale cursor only means re-reading from the oldest segment still kept.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

SEGMENT_MAGIC = b"\xc5~L1"
FRAME_MAGIC = b"\xc5~R1"
_PREFIX = struct.Struct("<4sII")  # magic, body length, CRC-32
_BODY_HEAD = struct.Struct("<QBHHHH")  # seq, flags, lengths of kind, actor, action, subject
_LENGTH = struct.Struct("<I")
HAS_EFFECTS = 0x01
MAX_BODY = 1 << 20  # a record is small; a larger length is damage
MIN_FRAME = _PREFIX.size + _BODY_HEAD.size  # an empty record: bounds how many frames damaged bytes can hide
SEGMENT_BYTES = 16 << 20
TAIL_FRAMES = 20_000  # frames kept in memory after their fsync, so a consumer that keeps up skips re-reading
_SEGMENT_NAME = re.compile(r"^seg-(\d{20})\.log$")


class LogError(OSError):
    """The local log could not make a record durable (disk full, I/O error)."""


# Positions and frames are made once per record on the hot path: named tuples, cheap to build.
class Position(NamedTuple):
    segment: int  # base seq of the segment
    offset: int  # byte offset in it


class Entry(NamedTuple):
    """What a producer hands the log for one record; the log gives it its sequence number."""

    flags: int
    kind: str
    actor: str
    action: str
    subject: str
    payload: str  # canonical JSON


class Frame(NamedTuple):
    seq: int
    flags: int
    kind: str
    actor: str
    action: str
    subject: str
    payload: str  # canonical JSON
    segment: int  # where the frame ends: segment and byte offset
    end_offset: int

    @property
    def has_effects(self) -> bool:
        return bool(self.flags & HAS_EFFECTS)

    @property
    def end(self) -> Position:
        """Just after this frame."""
        return Position(self.segment, self.end_offset)


@dataclass(frozen=True, slots=True)
class Damage:
    path: Path
    offset: int
    length: int
    torn_tail: bool  # the damage runs to the end of the segment (a write cut short)

    def describe(self) -> str:
        what = "torn tail" if self.torn_tail else "damaged frames"
        return f"{what} in the local log: {self.length} bytes at offset {self.offset} of {self.path.name} skipped"


def encode_frame(seq: int, flags: int, kind: str, actor: str, action: str, subject: str, payload: str) -> bytes:
    text = kind + actor + action + subject + payload
    if text.isascii():  # the usual case: one encode, and character counts are byte counts
        head = _BODY_HEAD.pack(seq, flags, len(kind), len(actor), len(action), len(subject))
        body = head + text.encode()
    else:
        k, a, c, t = kind.encode(), actor.encode(), action.encode(), subject.encode()
        body = b"".join((_BODY_HEAD.pack(seq, flags, len(k), len(a), len(c), len(t)), k, a, c, t, payload.encode()))
    length = _LENGTH.pack(len(body))
    return FRAME_MAGIC + length + _LENGTH.pack(zlib.crc32(body, zlib.crc32(length))) + body


def _decode_body(body: bytes, segment: int, end: int) -> Frame:
    seq, flags, nk, na, nc, nt = _BODY_HEAD.unpack_from(body)
    h = _BODY_HEAD.size
    a, c, t = h + nk, h + nk + na, h + nk + na + nc
    p = t + nt
    if p > len(body):
        raise ValueError("string lengths run past the frame")
    text = body[h:].decode()  # the strings and the payload, all UTF-8
    if len(text) == len(body) - h:  # all ASCII: character offsets are byte offsets
        a, c, t, p = a - h, c - h, t - h, p - h
        return Frame(seq, flags, text[:a], text[a:c], text[c:t], text[t:p], text[p:], segment, end)
    parts = [body[i:j].decode() for i, j in ((h, a), (a, c), (c, t), (t, p))]
    return Frame(seq, flags, *parts, body[p:].decode(), segment, end)


def _frame_at(data: bytes | memoryview, pos: int, limit: int) -> tuple[bytes, int] | None:
    """The body of a well-formed frame starting at `pos` and ending by `limit`, with its end; else None."""
    if limit - pos < _PREFIX.size:
        return None
    magic, length, crc = _PREFIX.unpack_from(data, pos)
    end = pos + _PREFIX.size + length
    if magic != FRAME_MAGIC or length > MAX_BODY or end > limit or length < _BODY_HEAD.size:
        return None
    body = bytes(data[pos + _PREFIX.size : end])
    if zlib.crc32(body, zlib.crc32(data[pos + 4 : pos + 8])) != crc:
        return None
    return body, end


def parse(data: bytes, segment: int, path: Path, base: int = 0) -> Iterator[Frame | Damage]:
    """Frames in `data` (bytes of one segment starting at offset `base`), with the damage between them."""
    pos, limit = 0, len(data)
    while pos < limit:
        found = _frame_at(data, pos, limit)
        if found is not None:
            body, end = found
            try:
                yield _decode_body(body, segment, base + end)
                pos = end
                continue
            except (UnicodeDecodeError, ValueError, struct.error):
                pass  # a checksum that happens to fit garbage: damage all the same
        resync = data.find(FRAME_MAGIC, pos + 1)
        while resync != -1 and _frame_at(data, resync, limit) is None:
            resync = data.find(FRAME_MAGIC, resync + 1)
        stop = limit if resync == -1 else resync
        yield Damage(path, base + pos, stop - pos, torn_tail=resync == -1)
        pos = stop


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_sync = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True, slots=True)
class Opened:
    next_seq: int
    damage: tuple[Damage, ...]
    backlog: int  # frames after the consumer's cursor, as of the open


class LocalLog:
    def __init__(self, directory: Path, site: str, node: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.site, self.node = site, node
        self.segment_bytes = segment_bytes
        self.lock = threading.Lock()  # appends; readers only need `durable_end`
        self.next_seq = 1
        self._fd = -1
        self._active = 0  # base seq of the segment being appended to
        self._size = 0
        self._header_size = 0
        self._durable_end = Position(0, 0)
        self._cursors: dict[str, Cursor] = {}
        # Durable frames not yet taken by every consumer (bounded), and where the first one starts.
        self._tail: collections.deque[Frame] = collections.deque()
        self._tail_start = Position(0, 0)
        self._tail_lock = threading.Lock()
        self._release_lock = threading.Lock()
        self.appended = 0  # frames appended by this process

    # ---- opening and recovery ----
    def segments(self) -> list[int]:
        found = (_SEGMENT_NAME.match(p.name) for p in self.directory.iterdir()) if self.directory.exists() else ()
        return sorted(int(m.group(1)) for m in found if m)

    def path(self, segment: int) -> Path:
        return self.directory / f"seg-{segment:020d}.log"

    def open(self, consumer: str = "register") -> Opened:
        """Scan what earlier runs left, start a fresh segment, and open `consumer`'s cursor."""
        self.directory.mkdir(parents=True, exist_ok=True)
        damage: list[Damage] = []
        highest = 0
        hidden = 0  # how many frames the damaged bytes could have held
        start = _read_cursor(self.directory, consumer)
        backlog = 0
        existing = self.segments()
        if start is not None and start.segment not in existing:
            start = None
        for segment in existing:
            data, body_start, header_damage = self._load(segment)
            if header_damage is not None:
                damage.append(header_damage)
                hidden += header_damage.length // MIN_FRAME + 1
            highest = max(highest, segment)  # a segment's base is never given again, even if unused
            for part in parse(data[body_start:], segment, self.path(segment), body_start):
                if isinstance(part, Damage):
                    damage.append(part)
                    hidden += part.length // MIN_FRAME + 1
                else:
                    highest = max(highest, part.seq)
                    if start is None or part.end > start:
                        backlog += 1
        self.next_seq = highest + hidden + 1
        self._start_segment(self.next_seq)
        oldest = existing[0] if existing else self._active
        self._cursors[consumer] = Cursor(self, consumer, start or Position(oldest, 0), backlog)
        return Opened(self.next_seq, tuple(damage), backlog)

    def add_cursor(self, consumer: str) -> Cursor:
        """Another consumer of the log (the seam for other transports, e.g. a JetStream publisher that sends
        each frame with `Nats-Msg-Id` = its record id): it starts from its saved cursor, or from the oldest
        segment kept, and segments are kept until every consumer has passed them."""
        start = _read_cursor(self.directory, consumer)
        segments = self.segments()
        if start is None or start.segment not in segments:
            start = Position(segments[0] if segments else self._active, 0)
        self._cursors[consumer] = cursor = Cursor(self, consumer, start, 0)
        return cursor

    def _load(self, segment: int) -> tuple[bytes, int, Damage | None]:
        """A segment's bytes and where its frames start; a damaged header is reported and skipped."""
        path = self.path(segment)
        data = path.read_bytes()
        if not data:
            return data, 0, None  # created, then the process died before its header: nothing in it
        header = _PREFIX.unpack_from(data) if len(data) >= _PREFIX.size else None
        if header is not None and header[0] == SEGMENT_MAGIC:
            end = _PREFIX.size + header[1]
            body = data[_PREFIX.size : end]
            if end <= len(data) and zlib.crc32(body) == header[2]:
                return data, end, None
        first = data.find(FRAME_MAGIC)
        stop = len(data) if first == -1 else first
        return data, stop, Damage(path, 0, stop, torn_tail=first == -1)

    def _start_segment(self, base: int) -> None:
        """A new segment whose frames will start at sequence number `base`."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        path = self.path(base)
        header = json.dumps({"site": self.site, "node": self.node, "base_seq": base}).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            data = _PREFIX.pack(SEGMENT_MAGIC, len(header), zlib.crc32(header)) + header
            _write_all(fd, data)
            _sync(fd)
            _fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            raise
        self._fd, self._active, self._size, self._header_size = fd, base, len(data), len(data)
        self._durable_end = Position(base, self._size)

    # ---- the producer side ----
    def append(self, make_entries: Callable[[int], Sequence[Entry]]) -> int:
        """Append the entries `make_entries(first_seq)` builds for consecutive sequence numbers, durable on
        return (written and fdatasync'd); returns the first sequence number. Raises LogError."""
        with self.lock:
            first = self.next_seq
            entries = make_entries(first)
            frames = [encode_frame(first + n, *entry) for n, entry in enumerate(entries)]
            data = b"".join(frames)
            self.next_seq = first + len(frames)  # used even if the write fails: an id is never given twice
            try:
                if self._fd < 0 or self._size + len(data) > self.segment_bytes:
                    self._start_segment(first)
                _write_all(self._fd, data)
                _sync(self._fd)
            except OSError as exc:
                # After a failed write or fsync the file's state is unknown: never append to it again.
                if self._fd >= 0:
                    os.close(self._fd)
                    self._fd = -1
                raise LogError(f"local log {self.directory}: {exc}") from exc
            start = self._size
            self._size += len(data)
            self._durable_end = Position(self._active, self._size)
            self.appended += len(frames)
            cursors = list(self._cursors.values())
            with self._tail_lock:
                behind = len(self._tail) + len(frames) > TAIL_FRAMES
                if behind or (self._tail and self._tail[-1].segment != self._active):
                    self._tail.clear()  # a consumer this far behind, or a new segment: the disk is read
                if not self._tail:
                    self._tail_start = Position(self._active, start)
                for n, (frame, entry) in enumerate(zip(frames, entries, strict=True)):
                    start += len(frame)
                    self._tail.append(Frame(first + n, *entry, self._active, start))
        for cursor in cursors:
            cursor.added(len(frames))
        return first

    def durable_end(self) -> Position:
        return self._durable_end

    def cursor(self, consumer: str) -> Cursor:
        return self._cursors[consumer]

    # ---- the consumer side ----
    def read(self, position: Position, limit: int) -> tuple[list[Frame], Position]:
        """Up to `limit` durable frames after `position`, and the position after them. Damage is skipped
        silently here: `open` reported it."""
        if position.offset == 0 and position.segment == self._active:
            position = Position(self._active, self._header_size)  # "from the start": after the header
        with self._tail_lock:
            if self._tail and self._tail_start == position:
                frames = list(itertools.islice(self._tail, limit))
                return frames, frames[-1].end
        end = self._durable_end
        frames: list[Frame] = []
        for segment in self.segments():
            if segment < position.segment:
                continue
            if segment > end.segment:
                break
            path = self.path(segment)
            with path.open("rb") as f:
                start = position.offset if segment == position.segment else 0
                if start == 0:
                    head = f.read(_PREFIX.size)
                    magic, length, _crc = _PREFIX.unpack(head) if len(head) == _PREFIX.size else (b"", 0, 0)
                    start = _PREFIX.size + length if magic == SEGMENT_MAGIC else 0
                f.seek(start)
                data = f.read(max(end.offset - start, 0)) if segment == end.segment else f.read()
            for part in parse(data, segment, path, start):
                if isinstance(part, Frame):
                    frames.append(part)
                    if len(frames) == limit:
                        return frames, part.end
            position = Position(segment, start + len(data))
        return frames, position

    def release(self) -> None:
        """Forget what every cursor has passed: tail frames, and segments except the one being appended to.
        Consumers commit from their own threads: one at a time here, so two never delete the same segment."""
        if not self._cursors:
            return
        with self._release_lock:
            low = min(c.position for c in self._cursors.values())
            with self._tail_lock:
                passed = _ended_by(self._tail, low)
                if passed:
                    for _ in range(passed - 1):
                        self._tail.popleft()
                    self._tail_start = self._tail.popleft().end
            for segment in self.segments():
                if segment >= self._active:
                    break
                path = self.path(segment)
                if segment < low.segment or (segment == low.segment and low.offset >= path.stat().st_size):
                    path.unlink()

    def close(self) -> None:
        with self.lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _ended_by(tail: collections.deque[Frame], position: Position) -> int:
    """How many frames at the head of `tail` end at or before `position`: a binary search, not a walk (the
    tail is in log order, and a batch's commit releases thousands at once)."""
    low, high = 0, len(tail)
    while low < high:
        mid = (low + high) // 2
        frame = tail[mid]
        if (frame.segment, frame.end_offset) <= position:
            low = mid + 1
        else:
            high = mid
    return low


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_cursor(directory: Path, consumer: str) -> Position | None:
    try:
        found = json.loads((directory / f"cursor-{consumer}.json").read_text())
        return Position(int(found["segment"]), int(found["offset"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Cursor:
    """One consumer's place in the log: `read` what comes next, `commit` once it is durable elsewhere."""

    def __init__(self, log: LocalLog, consumer: str, position: Position, backlog: int) -> None:
        self.log = log
        self.consumer = consumer
        self.position = position
        self._backlog = backlog
        self._lock = threading.Lock()

    def added(self, count: int) -> None:
        with self._lock:
            self._backlog += count

    def backlog(self) -> int:
        """Frames accepted and not yet committed by this consumer."""
        with self._lock:
            return self._backlog

    def read(self, limit: int) -> tuple[list[Frame], Position]:
        return self.log.read(self.position, limit)

    def commit(self, frames: int, through: Position) -> None:
        """The consumer holds everything up to `through` (`frames` records) durably: move on, free disk."""
        with self._lock:
            self._backlog = max(self._backlog - frames, 0)
        self.position = through
        path = self.log.directory / f"cursor-{self.consumer}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"segment": through.segment, "offset": through.offset}))
        tmp.replace(path)
        self.log.release()

"""Typed input events, and the columnar batch of tag reads used by the bulk path."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracking.epc import encode_epcs, tid_hash


@dataclass(frozen=True)
class TagRead:
    """One RFID tag report. rssi in dBm (NaN when the reader gave none); tid None when not reported.

    stale: the reader queued it while its link was down (firmware_bridge TagRead.stale): never
    evidence for an exit or a movement, but it still raises the alarms it would have raised on time.
    """

    reader: str
    antenna: int
    epc: str
    time_us: int
    rssi: float = float("nan")
    tid: str | None = None
    stale: bool = False


@dataclass(frozen=True)
class BadgePresentation:
    """A badge read on a portal's access panel. stale: queued on the device while its link was down.

    direction: 'exit' (the reader inside: leaving the portal's inside venue) or 'entry' (the reader
    outside: coming into it). Both open the same door: the items inside within reach are judged for both
    (tracking.engine); the people rules apply to both.
    """

    portal_id: int
    badge: str
    time_us: int
    stale: bool = False
    direction: str = "exit"

    def __init__(self, portal_id: int, badge: str, time_us: int, stale: bool = False, direction: str = "exit") -> None:
        # Written out: the frozen dataclass's own __init__ sets each field through object.__setattr__, and a
        # controller builds one per badge, on the badge's latency path (bench/tracking.py times it)
        d = self.__dict__  # one store per field (tracking.results.Decision)
        d["portal_id"] = portal_id
        d["badge"] = badge
        d["time_us"] = time_us
        d["stale"] = stale
        d["direction"] = direction


@dataclass(frozen=True)
class ForgiveRequest:
    """A guard forgives a person's anti-passback state (their location is doubtful): the person's next
    badge is not checked against where they were last seen. Authenticated and journalled outside."""

    person_id: int
    guard_person_id: int
    time_us: int
    reason: str


@dataclass(frozen=True)
class CameraCount:
    """People counted by the camera watching a portal."""

    portal_id: int
    count: int
    time_us: int


@dataclass(frozen=True)
class DoorInput:
    """Door position switch of a portal changed."""

    portal_id: int
    is_open: bool
    time_us: int


@dataclass(frozen=True)
class FireAlarmInput:
    """Fire-alarm panel input: active releases all egress doors until it clears."""

    active: bool
    time_us: int


@dataclass(frozen=True)
class InventoryRound:
    """A reader finished an inventory round on an antenna at time_us (antenna 0: on every antenna).

    The engine assumes every tag present in the antenna's field answered in that round (the portal's
    reader mode: dual-target search, or a Gen2 Select at badge time); see tracking.engine.
    """

    reader: str
    antenna: int
    time_us: int


@dataclass(frozen=True)
class ReaderHealth:
    """A reader went offline or came back (from the driver's health events)."""

    reader: str
    online: bool
    time_us: int


@dataclass(frozen=True)
class OverrideRequest:
    """An authenticated guard lets the current block at a portal through (rule 4.7).

    The guard's credentials are checked before this reaches the engine; guard_person_id is the
    register id of that guard. block_time_us: the badge time of the block the guard was shown; when
    given, the override applies only if that is still the latest block at the portal.
    """

    portal_id: int
    guard_person_id: int
    time_us: int
    reason: str
    block_time_us: int | None = None


# the columns the kernels read, with their dtypes (ReadBatch.in_kernel_types)
_KERNEL_COLUMNS = (("time_us", np.int64), ("epc_words", np.uint64), ("epc_bits", np.int16), ("rssi", np.float64),
                   ("tid_hash", np.uint64))


@dataclass(frozen=True)
class ReadBatch:
    """Tag reads as columns, for the bulk path.

    reader: int32 reader codes of the snapshot the batch is meant for (Snapshot.reader_code; -1 =
    unknown reader). epc_words uint64[n, w] and epc_bits int16[n] (0 = malformed) come from
    epc.encode_epcs; rssi float64 dBm (NaN = none); tid_hash uint64 from epc.tid_hash (0 = no TID);
    stale bool[n], None = all False (see TagRead.stale).
    """

    time_us: np.ndarray
    reader: np.ndarray
    antenna: np.ndarray
    epc_words: np.ndarray
    epc_bits: np.ndarray
    rssi: np.ndarray
    tid_hash: np.ndarray
    stale: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time_us)

    def stale_flags(self) -> np.ndarray:
        """The stale column, all False when the batch has none."""
        return np.zeros(len(self), np.bool_) if self.stale is None else self.stale

    @classmethod
    def from_reads(cls, reads: list[TagRead], reader_code: dict[str, int]) -> ReadBatch:
        words, bits = encode_epcs([r.epc for r in reads])
        return cls(
            time_us=np.array([r.time_us for r in reads], dtype=np.int64),
            reader=np.array([reader_code.get(r.reader, -1) for r in reads], dtype=np.int32),
            antenna=np.array([r.antenna for r in reads], dtype=np.int32),
            epc_words=words,
            epc_bits=bits,
            rssi=np.array([r.rssi for r in reads], dtype=np.float64),
            tid_hash=np.array([tid_hash(r.tid) for r in reads], dtype=np.uint64),
            stale=np.array([r.stale for r in reads], dtype=np.bool_) if any(r.stale for r in reads) else None,
        )

    def in_kernel_types(self) -> ReadBatch:
        """This batch with the columns the kernels read as C-contiguous, aligned, writeable arrays of the
        documented dtypes (itself when they are: from_reads makes them so). The Numba core calls its kernels
        through their code compiled for exactly these types, skipping Numba's dispatch (tracking.numba_core)."""
        columns = [np.require(getattr(self, name), dtype, "CAW") for name, dtype in _KERNEL_COLUMNS]
        stale = None if self.stale is None else np.require(self.stale, np.bool_, "CAW")
        same = all(c is getattr(self, name) for c, (name, _) in zip(columns, _KERNEL_COLUMNS, strict=True))
        if same and stale is self.stale:
            return self
        time_us, epc_words, epc_bits, rssi, tid_hash = columns
        return ReadBatch(time_us, self.reader, self.antenna, epc_words, epc_bits, rssi, tid_hash, stale)

    def rows(self, start: int, stop: int) -> ReadBatch:
        """Rows start..stop-1 as views (no copy)."""
        return ReadBatch(
            self.time_us[start:stop], self.reader[start:stop], self.antenna[start:stop],
            self.epc_words[start:stop], self.epc_bits[start:stop], self.rssi[start:stop],
            self.tid_hash[start:stop], None if self.stale is None else self.stale[start:stop],
        )

    def take(self, index: np.ndarray) -> ReadBatch:
        """The rows at `index`, in that order."""
        return ReadBatch(
            self.time_us[index], self.reader[index], self.antenna[index], self.epc_words[index],
            self.epc_bits[index], self.rssi[index], self.tid_hash[index],
            None if self.stale is None else self.stale[index],
        )

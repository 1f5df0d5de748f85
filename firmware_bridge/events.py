"""Typed events every driver emits. Times are microseconds since the Unix epoch (device clock if given).

Tag observations travel as columns (`TagBatch`), one batch per report a reader delivered, from the wire
to the tracking engine: no object and no hex string per tag on the way. EPCs and TIDs are big-endian
64-bit words, zero padded at the end, plus a bit length per row: the layout of `tracking.epc.encode_epcs`
(the bridge does not import tracking; `tests/firmware_bridge/test_events.py` holds the two together).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class Health(enum.StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A device changed health state; `reason` says why in words an operator understands."""

    device: str
    health: Health
    reason: str
    time_us: int


def _words(width: int, rows: int) -> np.ndarray:
    return np.zeros((rows, width), dtype=np.uint64)


@dataclass(frozen=True, slots=True, eq=False)
class TagBatch:
    """Tag observations of one reader, one row per observation.

    `epc_words` uint64[n, w] and `epc_bits` int16[n] (the bits the reader reported; the engine decides
    which lengths are valid); `tid_words` uint64[n, t] and `tid_bits` int16[n] (0 = no TID read; t is
    0 when no row has one); `rssi_dbm` float64 (NaN = not reported); `phase_rad` float64 RF phase
    (NaN = not reported; None when the reader does not report phase at all); `stale` marks rows the
    reader held while its link was down (reported late, not live).
    """

    reader: str
    time_us: np.ndarray  # int64 (n,)
    antenna: np.ndarray  # int32 (n,); 0 when the reader did not say
    epc_words: np.ndarray  # uint64 (n, w)
    epc_bits: np.ndarray  # int16 (n,)
    rssi_dbm: np.ndarray  # float64 (n,)
    tid_words: np.ndarray  # uint64 (n, t)
    tid_bits: np.ndarray  # int16 (n,)
    stale: np.ndarray  # bool (n,)
    phase_rad: np.ndarray | None = None  # float64 (n,)

    def __len__(self) -> int:
        return len(self.time_us)

    @classmethod
    def empty(cls, reader: str) -> TagBatch:
        return cls(reader, np.zeros(0, np.int64), np.zeros(0, np.int32), _words(1, 0), np.zeros(0, np.int16),
                   np.zeros(0, np.float64), _words(0, 0), np.zeros(0, np.int16), np.zeros(0, bool))

    @classmethod
    def from_hex(
        cls,
        reader: str,
        epcs: Sequence[str],
        *,
        time_us: Sequence[int],
        antenna: Sequence[int],
        rssi_dbm: Sequence[float],
        tids: Sequence[str | None] | None = None,
        stale: Sequence[bool] | bool = False,
    ) -> TagBatch:
        """A batch from hex strings: for serial readers whose replies carry a handful of tags, and tests."""
        n = len(epcs)
        epc_words, epc_bits = hex_to_words([bytes.fromhex(e) for e in epcs])
        tid_list = [bytes.fromhex(t) if t else b"" for t in (tids or [None] * n)]
        tid_words, tid_bits = hex_to_words(tid_list, allow_empty=True)
        stale_col = np.full(n, stale, bool) if isinstance(stale, bool) else np.asarray(stale, bool)
        return cls(reader, np.asarray(time_us, np.int64).reshape(n), np.asarray(antenna, np.int32).reshape(n),
                   epc_words, epc_bits, np.asarray(rssi_dbm, np.float64).reshape(n), tid_words, tid_bits,
                   stale_col)

    def epc_hex(self) -> list[str]:
        """EPCs as upper-case hex: the per-tag view a handheld inventory needs, never the hot path."""
        return words_to_hex(self.epc_words, self.epc_bits)

    def tid_hex(self) -> list[str | None]:
        return [t or None for t in words_to_hex(self.tid_words, self.tid_bits)]

    def marked_stale(self, mask: np.ndarray) -> TagBatch:
        """The same batch with `mask` rows also marked stale."""
        return _replace(self, stale=self.stale | mask)

    @staticmethod
    def concat(batches: Sequence[TagBatch]) -> TagBatch:
        """Batches of one reader joined (widths padded to the widest)."""
        if len(batches) == 1:
            return batches[0]
        reader = batches[0].reader
        epc_w = max(b.epc_words.shape[1] for b in batches)
        tid_w = max(b.tid_words.shape[1] for b in batches)
        phases = [b.phase_rad for b in batches]
        phase = None if all(p is None for p in phases) else np.concatenate(
            [p if p is not None else np.full(len(b), np.nan) for p, b in zip(phases, batches, strict=True)])
        return TagBatch(
            reader,
            np.concatenate([b.time_us for b in batches]),
            np.concatenate([b.antenna for b in batches]),
            np.concatenate([_pad(b.epc_words, epc_w) for b in batches]),
            np.concatenate([b.epc_bits for b in batches]),
            np.concatenate([b.rssi_dbm for b in batches]),
            np.concatenate([_pad(b.tid_words, tid_w) for b in batches]),
            np.concatenate([b.tid_bits for b in batches]),
            np.concatenate([b.stale for b in batches]),
            phase,
        )


def _pad(words: np.ndarray, width: int) -> np.ndarray:
    return words if words.shape[1] == width else np.pad(words, ((0, 0), (0, width - words.shape[1])))


def _replace(batch: TagBatch, **changes: object) -> TagBatch:
    values = {name: getattr(batch, name) for name in TagBatch.__dataclass_fields__}
    values.update(changes)
    return TagBatch(**values)  # type: ignore[arg-type]


def hex_to_words(values: Sequence[bytes], *, allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as (big-endian uint64 words zero padded at the end, bit lengths)."""
    bits = np.array([8 * len(v) for v in values], dtype=np.int16)
    width = max([(len(v) + 7) // 8 for v in values] + [0 if allow_empty else 1])
    buf = np.zeros((len(values), 8 * width), dtype=np.uint8)
    for row, value in enumerate(values):
        buf[row, : len(value)] = np.frombuffer(value, np.uint8)
    return buf.view(">u8").astype(np.uint64).reshape(len(values), width), bits


def words_to_hex(words: np.ndarray, bits: np.ndarray) -> list[str]:
    """Inverse of hex_to_words: upper-case hex of each row's `bits` (rounded up to whole bytes)."""
    n = len(bits)
    if n == 0:
        return []
    raw = np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(n, -1)
    nbytes = (bits.astype(np.int64) + 7) // 8
    return [raw[i, : nbytes[i]].tobytes().hex().upper() for i in range(n)]


@dataclass(frozen=True, slots=True)
class InventoryRoundEnd:
    """A reader finished one complete inventory round on `antenna` at `time_us`.

    Every tag the round singulated was reported before this event (in this reader's batches), so a
    consumer that saw rounds end on every antenna of a portal with no new tag knows the field is read
    (in a reader mode where every present tag answers every round: dual target, session 0, or a
    Select at badge time). `stale`: the round ended before the link to the reader came back.
    """

    reader: str
    antenna: int
    time_us: int
    stale: bool = False


@dataclass(frozen=True, slots=True)
class CardRead:
    """A credential presented at an access panel's reader."""

    panel: str
    reader: int
    card_hex: str
    bits: int
    format: str
    time_us: int
    stale: bool = False


@dataclass(frozen=True, slots=True)
class InputChange:
    """A supervised input on a panel changed: door contact, request-to-exit, fire alarm, tamper, power."""

    panel: str
    input: str
    active: bool
    time_us: int
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeyPress:
    """Keys typed on a panel's keypad (digits, '*' and '#'), as one burst."""

    panel: str
    reader: int
    keys: str
    time_us: int
    stale: bool = False


@dataclass(frozen=True, slots=True)
class SensorCount:
    """One count from a people-counting sensor at a portal (a `vision.people.HeadCount`).

    `source` is the name the sensor gives itself, `device` the register's device it arrived through;
    `time_us` is the sensor's clock when it sent one. `count` is the people in its zone now; when
    `ambiguous` the sensor cannot tell exactly (a crowd, an occluded view)."""

    source: str
    time_us: int
    count: int
    ambiguous: bool = False
    entered: int = 0
    exited: int = 0
    device: str = ""


DeviceEvent = HealthEvent | TagBatch | InventoryRoundEnd | CardRead | InputChange | KeyPress | SensorCount

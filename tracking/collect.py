"""What one advance produced, kept as columns until a caller reads it (results.Rows).

Movement columns: item_id, portal_id, exit (bool), time_us, from venue id, to venue id (-1 = the
outside of the unit), confidence. Alarm columns: kind (index into ALARM_KINDS), time_us, portal_id,
item_id (-1 = none), then detail, reader and epc (object arrays) and late. Both are sorted as the
engine promises (by time, then every other field) with numpy, before any result object exists.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tracking.results import (
    ALARM_KINDS,
    CLONE_DETAIL,
    Alarm,
    Decision,
    ItemBrought,
    Movement,
    Output,
    PresenceChange,
    Rows,
)

_DIRECTION = np.array(["entry", "exit"], dtype=object)
_KIND_NAME = np.array(ALARM_KINDS, dtype=object)
_KIND_RANK = np.argsort(np.argsort(np.array(ALARM_KINDS))).tolist()  # alarms sort by kind name
# the detail codes the kernels attach (non-zero only for possible_clone)
DETAIL_TEXT = np.array(["", *(CLONE_DETAIL[k] for k in sorted(CLONE_DETAIL))], dtype=object)
_NONE = {-1: None}
Block = tuple[np.ndarray, ...]


def _ids(column: np.ndarray) -> list[int | None]:
    values = column.tolist()
    return list(map(_NONE.get, values, values))


def build_movements(item: np.ndarray, portal: np.ndarray, exit_: np.ndarray, time: np.ndarray, src: np.ndarray,
                    dst: np.ndarray, confidence: np.ndarray) -> list[Movement]:
    return list(map(Movement, item.tolist(), portal.tolist(), _DIRECTION[exit_.astype(np.intp)].tolist(),
                    time.tolist(), _ids(src), _ids(dst), confidence.tolist()))


def build_alarms(kind: np.ndarray, time: np.ndarray, portal: np.ndarray, item: np.ndarray, detail: np.ndarray,
                 reader: np.ndarray, epc: np.ndarray, late: np.ndarray) -> list[Alarm]:
    return list(map(Alarm, _KIND_NAME[kind].tolist(), time.tolist(), _ids(portal), _ids(item), detail.tolist(),
                    reader.tolist(), epc.tolist(), late.tolist()))


def _time_order(time: np.ndarray, key: Callable[[list[int]], list[int]]) -> np.ndarray:
    """Row order by time, rows of equal time ordered by key (given their row numbers)."""
    order = np.argsort(time)
    ordered = time[order]
    tie = ordered[1:] == ordered[:-1]
    if tie.any():  # rows sharing a time: few, sorted by the full key in place
        tied = np.flatnonzero(np.concatenate(([False], tie)) | np.concatenate((tie, [False])))
        order[tied] = key(order[tied].tolist())
    return order


class Collector:
    """Accumulates one advance's results; output() sorts them and hands them out as Rows.

    One is built per advance (every tick): slotted, and the alarm columns made at the first alarm."""

    __slots__ = ("_alarm_blocks", "_alarms", "_movement_blocks", "brought", "decisions", "presence")

    def __init__(self) -> None:
        self._movement_blocks: list[Block] = []
        self._alarm_blocks: list[Block] = []
        self._alarms: tuple[list, ...] | None = None
        self.decisions: list[Decision] = []
        self.presence: list[PresenceChange] = []
        self.brought: list[ItemBrought] = []

    def movement_block(self, block: Block) -> None:
        if len(block[0]):
            self._movement_blocks.append(block)

    def movements(self, movements: list[Movement]) -> None:
        if movements:
            self._movement_blocks.append((
                np.array([m.item_id for m in movements], np.int64),
                np.array([m.portal_id for m in movements], np.int64),
                np.array([m.direction == "exit" for m in movements], np.bool_),
                np.array([m.time_us for m in movements], np.int64),
                np.array([-1 if m.from_venue_id is None else m.from_venue_id for m in movements], np.int64),
                np.array([-1 if m.to_venue_id is None else m.to_venue_id for m in movements], np.int64),
                np.array([m.confidence for m in movements], np.float64),
            ))

    def alarm(self, kind: int, time_us: int, portal_id: int | None, item_id: int | None, detail: str = "",
              reader: str | None = None, epc: str | None = None, late: bool = False) -> None:
        if self._alarms is None:
            self._alarms = ([], [], [], [], [], [], [], [])
        kinds, times, portals, items, details, readers, epcs, lates = self._alarms
        kinds.append(kind)
        times.append(time_us)
        portals.append(-1 if portal_id is None else portal_id)
        items.append(-1 if item_id is None else item_id)
        details.append(detail)
        readers.append(reader)
        epcs.append(epc)
        lates.append(late)

    def alarm_block(self, kind: np.ndarray, time: np.ndarray, portal: np.ndarray, item: np.ndarray,
                    detail_code: np.ndarray, late: np.ndarray) -> None:
        """Alarms from the kernels: no reader or EPC, details as codes into DETAIL_TEXT."""
        if len(kind):
            none = np.full(len(kind), None, dtype=object)
            self._alarm_blocks.append((kind.astype(np.int16), time, portal, item, DETAIL_TEXT[detail_code], none,
                                       none, late))

    def output(self) -> Output:
        # most advances on the latency path give one decision or none: nothing to sort
        decisions, presence, brought = self.decisions, self.presence, self.brought
        if len(decisions) > 1:
            decisions = sorted(decisions, key=_decision_order)
        if len(presence) > 1:
            presence = sorted(presence, key=lambda c: (c.time_us, c.portal_id, c.person_id))
        if len(brought) > 1:
            brought = sorted(brought, key=lambda b: (b.time_us, b.portal_id, b.item_id))
        movements = self._sorted_movements() if self._movement_blocks else _NO_MOVEMENTS
        alarms = self._sorted_alarms() if self._alarm_blocks or self._alarms else _NO_ALARMS
        return Output(movements, decisions, alarms, presence, brought)

    def _sorted_movements(self) -> Rows[Movement]:
        blocks = self._movement_blocks
        if not blocks:
            return _NO_MOVEMENTS
        columns = tuple(np.concatenate(c) for c in zip(*blocks, strict=True)) if len(blocks) > 1 else blocks[0]
        item, portal, time = columns[0], columns[1], columns[3]

        def by_item_and_portal(rows: list[int]) -> list[int]:  # (time, item, portal) is unique
            sub = np.array(rows)
            return sub[np.lexsort((portal[sub], item[sub], time[sub]))].tolist()

        order = _time_order(time, by_item_and_portal)
        return Rows(build_movements, tuple(c[order] for c in columns), len(order))

    def _sorted_alarms(self) -> Rows[Alarm]:
        if not (self._alarm_blocks or self._alarms):
            return _NO_ALARMS  # most advances on the latency path raise none
        blocks = list(self._alarm_blocks)
        if self._alarms is not None:
            kind, time, portal, item, detail, reader, epc, late = self._alarms
            blocks.append((np.array(kind, np.int16), np.array(time, np.int64), np.array(portal, np.int64),
                           np.array(item, np.int64), _objects(detail), _objects(reader), _objects(epc),
                           np.array(late, np.bool_)))
        if not blocks:
            return _NO_ALARMS
        columns = tuple(np.concatenate(c) for c in zip(*blocks, strict=True)) if len(blocks) > 1 else blocks[0]

        def by_every_field(rows: list[int]) -> list[int]:
            sub = np.array(rows)
            fields = [c[sub].tolist() for c in columns]
            keys = {r: (t, _KIND_RANK[k], p, i, d, rd or "", e or "", lt)
                    for r, k, t, p, i, d, rd, e, lt in zip(rows, *fields, strict=True)}
            return sorted(rows, key=keys.__getitem__)

        order = _time_order(columns[1], by_every_field)
        return Rows(build_alarms, tuple(c[order] for c in columns), len(order))


def _objects(values: list) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


_NO_MOVEMENTS: Rows[Movement] = Rows(build_movements, (), 0)
_NO_ALARMS: Rows[Alarm] = Rows(build_alarms, (), 0)


def _decision_order(d: Decision) -> tuple[int, int, str, int]:
    return d.time_us, d.portal_id, d.badge, d.decided_us

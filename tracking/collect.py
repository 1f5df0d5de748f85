"""What one advance produced, kept as columns until a caller reads it (results.Rows).

Movement columns: item_id, portal_id, exit (bool), time_us, from venue id, to venue id (-1 = the
outside of the unit), confidence. Alarm columns: kind (index into ALARM_KINDS), time_us, portal_id,
item_id (-1 = none), detail, reader, epc, late. Both are sorted as the engine promises (by time,
then the other fields) with numpy, before any object exists.
"""

from __future__ import annotations

from itertools import groupby

import numpy as np

from tracking.results import ALARM_KINDS, Alarm, Decision, Movement, Output, Rows

_DIRECTION = np.array(["entry", "exit"], dtype=object)
_KIND_RANK = np.argsort(np.argsort(np.array(ALARM_KINDS)))  # alarms sort by kind name
_NONE = {-1: None}
MovementBlock = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _ids(column: np.ndarray) -> list[int | None]:
    values = column.tolist()
    return list(map(_NONE.get, values, values))


def build_movements(item: np.ndarray, portal: np.ndarray, exit_: np.ndarray, time: np.ndarray, src: np.ndarray,
                    dst: np.ndarray, confidence: np.ndarray) -> list[Movement]:
    return list(map(Movement, item.tolist(), portal.tolist(), _DIRECTION[exit_.astype(np.intp)].tolist(),
                    time.tolist(), _ids(src), _ids(dst), confidence.tolist()))


def build_alarms(kind: np.ndarray, time: np.ndarray, portal: np.ndarray, item: np.ndarray, detail: list[str],
                 reader: list[str | None], epc: list[str | None], late: np.ndarray) -> list[Alarm]:
    return list(map(Alarm, map(ALARM_KINDS.__getitem__, kind.tolist()), time.tolist(), _ids(portal), _ids(item),
                    detail, reader, epc, late.tolist()))


class Collector:
    """Accumulates one advance's results; output() sorts them and hands them out as Rows."""

    def __init__(self) -> None:
        self._movement_blocks: list[MovementBlock] = []
        self._alarms: tuple[list, ...] = ([], [], [], [], [], [], [], [])
        self.decisions: list[Decision] = []

    def movement_block(self, block: MovementBlock) -> None:
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
        kinds, times, portals, items, details, readers, epcs, lates = self._alarms
        kinds.append(kind)
        times.append(time_us)
        portals.append(-1 if portal_id is None else portal_id)
        items.append(-1 if item_id is None else item_id)
        details.append(detail)
        readers.append(reader)
        epcs.append(epc)
        lates.append(late)

    def alarm_block(self, kind: np.ndarray, time: np.ndarray, portal: np.ndarray, item: np.ndarray, detail: list[str],
                    late: np.ndarray) -> None:
        n = len(kind)
        for column, values in zip(self._alarms, (kind.tolist(), time.tolist(), portal.tolist(), item.tolist(), detail,
                                                 [None] * n, [None] * n, late.tolist()), strict=True):
            column.extend(values)

    def output(self) -> Output:
        decisions = sorted(self.decisions, key=_decision_order) if len(self.decisions) > 1 else self.decisions
        return Output(self._sorted_movements(), decisions, self._sorted_alarms())

    def _sorted_movements(self) -> Rows[Movement]:
        blocks = self._movement_blocks
        if not blocks:
            return _NO_MOVEMENTS
        columns = tuple(np.concatenate(c) for c in zip(*blocks, strict=True)) if len(blocks) > 1 else blocks[0]
        order = np.lexsort((columns[1], columns[0], columns[3]))  # time, item, portal; stable
        return Rows(build_movements, tuple(c[order] for c in columns), len(order))

    def _sorted_alarms(self) -> Rows[Alarm]:
        kind, time, portal, item, detail, reader, epc, late = self._alarms
        n = len(kind)
        if not n:
            return _NO_ALARMS
        keys = (np.array(time, np.int64), _KIND_RANK[np.array(kind, np.intp)], np.array(portal, np.int64),
                np.array(item, np.int64))
        order = np.lexsort(keys[::-1])
        ordered = [k[order] for k in keys]
        tie = np.ones(n - 1, np.bool_)
        for k in ordered:
            tie &= k[1:] == k[:-1]
        if tie.any():  # equal up to the item: the strings and the late flag decide (rare, small groups)
            run_id = np.concatenate(([0], np.cumsum(~tie)))
            order = order.copy()
            for _, group in groupby(range(n), key=run_id.__getitem__):
                rows = list(group)
                if len(rows) > 1:
                    members = order[rows].tolist()
                    members.sort(key=lambda r: (detail[r], reader[r] or "", epc[r] or "", late[r]))
                    order[rows] = members
        rows = order.tolist()
        return Rows(build_alarms, (np.array(kind, np.int16)[order], keys[0][order], keys[2][order], keys[3][order],
                                   [detail[r] for r in rows], [reader[r] for r in rows], [epc[r] for r in rows],
                                   np.array(late, np.bool_)[order]), n)


_NO_MOVEMENTS: Rows[Movement] = Rows(build_movements, (), 0)
_NO_ALARMS: Rows[Alarm] = Rows(build_alarms, (), 0)


def _decision_order(d: Decision) -> tuple[int, int, str, int]:
    return d.time_us, d.portal_id, d.badge, d.decided_us

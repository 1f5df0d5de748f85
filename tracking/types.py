"""Typed messages between the engine and its two cores (Numba and reference)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from tracking.results import R_TWO_PERSON, R_UNCERTAIN, Movement


class ValidReads(NamedTuple):
    """Validated, time-ordered tag reads mapped to portals: what a core applies (a named tuple: the
    latency path builds a few per event).

    portal: snapshot portal index; side: SIDE_INSIDE or SIDE_OUTSIDE; rssi: as reported (the cores
    treat NaN or an implausible value as missing); stale: alarms only, never evidence (rule 4.9).
    The rest as in ReadBatch. Every column is C-contiguous, aligned and writeable, of the dtype noted
    (the engine takes batches in through ReadBatch.in_kernel_types): the Numba core calls its kernel with
    the code compiled for exactly these types.
    """

    time_us: np.ndarray  # int64
    portal: np.ndarray  # int32
    side: np.ndarray  # int8
    epc_words: np.ndarray  # uint64[n, w]
    epc_bits: np.ndarray  # int16
    tid_hash: np.ndarray  # uint64
    rssi: np.ndarray  # float64
    stale: np.ndarray  # bool

    def rows(self, start: int, stop: int) -> ValidReads:
        """Rows start..stop-1 as views (no copy)."""
        return ValidReads(self.time_us[start:stop], self.portal[start:stop], self.side[start:stop],
                          self.epc_words[start:stop], self.epc_bits[start:stop], self.tid_hash[start:stop],
                          self.rssi[start:stop], self.stale[start:stop])


class ItemVerdict(NamedTuple):
    """One item within reach of an exit (a named tuple: a decision builds one per item, each time).

    reasons: its reasons mask. approval_id: the approval covering it (None = none); new_use: whether
    the exit spends a use of it (False when the item is already in custody under it, on its route).
    uncertain: its reads do not settle that it is there (rule 4.8). since_us: first read of its pass
    at the portal; resting: that was more than association_us before the badge.
    """

    item_id: int
    reasons: int
    approval_id: int | None
    new_use: bool = True
    uncertain: bool = False
    since_us: int = 0
    resting: bool = False


# What the engine decides from a core's verdicts at once (Core.judge): bits of its summary.
J_REASONS = 1  # an item has reasons
J_REFUSE = 2  # an item would be refused and its presence is clear (not only the two-person rule): refuse now
J_APPROVAL = 4  # an approval covers an item (the decision may book uses or custody)


def summarize(verdicts: list[ItemVerdict]) -> tuple[int, int, int]:
    """(items, J_* summary, the OR of the items' masks, marked uncertain) of a decide (what Core.judge returns)."""
    summary = mask = 0
    for v in verdicts:
        if v.reasons:
            summary |= J_REASONS if v.uncertain or v.reasons == R_TWO_PERSON else J_REASONS | J_REFUSE
            mask |= v.reasons | (R_UNCERTAIN if v.uncertain else 0)
        if v.approval_id is not None:
            summary |= J_APPROVAL
    return len(verdicts), summary, mask


@dataclass
class CoreEvents:
    """What a core produced: movements, alarms and the rows of the applied reads whose EPC is not in
    the register. The reference core gives objects and (kind, time, portal_id, item_id, detail, late)
    tuples; the Numba core gives columns (tracking.collect: a movement block, and alarm columns
    kind, time, portal_id, item_id, detail code, late)."""

    movements: list[Movement] = field(default_factory=list)
    alarms: list[tuple[int, int, int, int, int, bool]] = field(default_factory=list)
    unknown_rows: list[int] = field(default_factory=list)
    movement_columns: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    alarm_columns: list[tuple[np.ndarray, ...]] = field(default_factory=list)


NO_EVENTS = CoreEvents()  # what a core returns when nothing happened; never modified

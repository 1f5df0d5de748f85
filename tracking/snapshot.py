"""The register compiled into arrays: what the kernels read, built in one call, swapped atomically.

Items, venues, portals, people and approvals get dense indices (their order in the SiteModel).
Many-to-many relations are CSR pairs (``*_ptr`` offsets into a flat index array). People and groups
share one index space in scope/approval lists: a person is ``p``, a group is ``n_people + g``.
EPCs live in one flat word array with per-item offsets, found through an open-addressing hash table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from tracking.epc import epc_bits, hash_words, tid_hash
from tracking.model import APPROVAL_KINDS, ITEM_STATUSES, SiteModel

SIDE_NONE, SIDE_INSIDE, SIDE_OUTSIDE, SIDE_IGNORE = 0, 1, 2, 3
_SIDE_CODE = {"inside": SIDE_INSIDE, "outside": SIDE_OUTSIDE, "ignore": SIDE_IGNORE}
STATUS_CODE = {name: k for k, name in enumerate(ITEM_STATUSES)}
KIND_CODE = {name: k for k, name in enumerate(APPROVAL_KINDS)}
NO_TIME = -1


@dataclass(frozen=True)
class Snapshot:
    """Arrays compiled from a SiteModel. `site` is kept for the reference backend and for id lookups."""

    site: SiteModel
    # items
    item_ids: np.ndarray  # int64
    item_level: np.ndarray  # int8
    item_status: np.ndarray  # int8, index into ITEM_STATUSES
    item_venue: np.ndarray  # int32 venue index, -1 = none
    item_tid: np.ndarray  # uint64 tid_hash, 0 = unknown
    scope_ptr: np.ndarray  # int32[n+1]
    scope_ref: np.ndarray  # int32 person or n_people + group
    epc_ptr: np.ndarray  # int32[n+1] offsets into epc_words
    epc_words: np.ndarray  # uint64
    epc_bits: np.ndarray  # int16
    table: np.ndarray  # int32 hash table of item indices, -1 = empty
    # venues
    venue_ids: np.ndarray
    venue_ceiling: np.ndarray  # int8
    venue_ts: np.ndarray  # bool, top_secret_designated
    # portals
    portal_ids: np.ndarray
    portal_inside: np.ndarray  # int32 venue index
    portal_outside: np.ndarray  # int32 venue index, -1 = outside the unit
    portal_border: np.ndarray  # bool
    portal_xy: np.ndarray  # float64[p, 2]
    ant_portal: np.ndarray  # int32[readers, antennas], -1 = unknown
    ant_side: np.ndarray  # int8[readers, antennas], SIDE_*
    reader_code: dict[str, int]
    # people
    person_ids: np.ndarray
    person_clearance: np.ndarray  # int8
    person_active: np.ndarray  # bool
    pgroup_ptr: np.ndarray  # int32[q+1]
    pgroup_idx: np.ndarray  # int32 group index
    badge_person: dict[str, int]
    # approvals
    appr_ids: np.ndarray
    appr_kind: np.ndarray  # int8, index into APPROVAL_KINDS
    appr_from: np.ndarray  # int64
    appr_until: np.ndarray  # int64
    appr_uses: np.ndarray  # int32, uses left when compiled
    appr_return_by: np.ndarray  # int64, NO_TIME = none
    appr_portal: np.ndarray  # int32 portal index, -1 = any
    appr_dest: np.ndarray  # int32 venue index, -1 = any
    appr_ref_ptr: np.ndarray  # int32[k+1]
    appr_ref: np.ndarray  # int32 person or n_people + group
    item_appr_ptr: np.ndarray  # int32[n+1]
    item_appr: np.ndarray  # int32 approval indices, ascending

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def array_bytes(self) -> int:
        """Bytes held in this snapshot's arrays (the site model is not counted)."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    def item_index(self, epc: str) -> int:
        """Dense index of the item with this EPC, or -1."""
        bits = epc_bits(epc)
        if bits is None:
            return -1
        from tracking.epc import epc_words

        words = np.array(epc_words(epc), dtype=np.uint64)
        return int(find_item(self.table, self.epc_ptr, self.epc_words, self.epc_bits, words, bits))


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(rows) + 1, dtype=np.int32)
    ptr[1:] = np.cumsum([len(r) for r in rows], dtype=np.int64)
    flat = np.fromiter((v for r in rows for v in r), dtype=np.int32, count=int(ptr[-1]))
    return ptr, flat


def _hex_to_words(epcs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised hex parsing, grouped by length: (ptr int32[n+1], words uint64, bits int16)."""
    n = len(epcs)
    lengths = np.fromiter((len(e) for e in epcs), dtype=np.int32, count=n)
    bits = (lengths * 4).astype(np.int16)
    nwords = (lengths + 15) // 16
    ptr = np.zeros(n + 1, dtype=np.int32)
    ptr[1:] = np.cumsum(nwords)
    words = np.zeros(int(ptr[-1]), dtype=np.uint64)
    lut = np.full(256, 255, dtype=np.uint8)
    for k, ch in enumerate(b"0123456789ABCDEF"):
        lut[ch] = k
        lut[ord(chr(ch).lower())] = k
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    for length in np.unique(lengths):
        rows = np.nonzero(lengths == length)[0]
        text = "".join(epcs[r] for r in rows).encode("ascii", "replace")
        nib = lut[np.frombuffer(text, dtype=np.uint8)].reshape(len(rows), int(length))
        if (nib == 255).any():
            raise ValueError("EPC with a non-hex character in the register")
        width = (int(length) + 15) // 16
        padded = np.zeros((len(rows), width * 16), dtype=np.uint64)
        padded[:, : int(length)] = nib
        packed = (padded.reshape(len(rows), width, 16) << shifts).sum(axis=2, dtype=np.uint64)
        dest = ptr[rows][:, None] + np.arange(width)[None, :]
        words[dest] = packed
    return ptr, words, bits


@njit(cache=True)
def _fill_table(table: np.ndarray, ptr: np.ndarray, words: np.ndarray, bits: np.ndarray) -> int:
    """Insert every item; returns the index of the first duplicate EPC, or -1."""
    mask = len(table) - 1
    for i in range(len(bits)):
        start = ptr[i]
        slot = int(hash_words(words[start:], ptr[i + 1] - start, bits[i]) & np.uint64(mask))
        while table[slot] >= 0:
            if _same_epc(ptr, words, bits, table[slot], words[start:], bits[i]):
                return i
            slot = (slot + 1) & mask
        table[slot] = i
    return -1


@njit(cache=True, inline="always")
def _same_epc(ptr: np.ndarray, words: np.ndarray, bits: np.ndarray, item: int, q: np.ndarray, qbits: int) -> bool:
    if bits[item] != qbits:
        return False
    start = ptr[item]
    for k in range(ptr[item + 1] - start):
        if words[start + k] != q[k]:
            return False
    return True


@njit(cache=True, nogil=True)
def find_item(table: np.ndarray, ptr: np.ndarray, words: np.ndarray, bits: np.ndarray,
              q: np.ndarray, qbits: int) -> int:
    """Item index of the EPC given as words `q` and length `qbits`, or -1 when not registered."""
    mask = len(table) - 1
    slot = int(hash_words(q, (qbits + 63) // 64, qbits) & np.uint64(mask))
    while True:
        item = table[slot]
        if item < 0:
            return -1
        if _same_epc(ptr, words, bits, item, q, qbits):
            return item
        slot = (slot + 1) & mask


def build_snapshot(site: SiteModel, config: object = None) -> Snapshot:
    """Compile a SiteModel into a Snapshot. Raises ValueError on an inconsistent register.

    `config` is accepted for symmetry with the engine; the snapshot does not depend on it.
    """
    del config
    venue_index = {v.venue_id: k for k, v in enumerate(site.venues)}
    portal_index = {p.portal_id: k for k, p in enumerate(site.portals)}
    person_index = {p.person_id: k for k, p in enumerate(site.people)}
    group_index = {g: k for k, g in enumerate(site.groups)}
    for person in site.people:
        group_index.update((g, len(group_index)) for g in person.group_ids if g not in group_index)
    n_people = len(site.people)

    def refs(persons: tuple[int, ...], groups: tuple[int, ...]) -> list[int]:
        out = [person_index[p] for p in persons if p in person_index]
        return out + [n_people + group_index[g] for g in groups if g in group_index]

    items = site.items
    n = len(items)
    for item in items:
        if epc_bits(item.epc) is None:
            raise ValueError(f"item {item.item_id}: malformed EPC {item.epc!r}")
    epc_ptr, words, bits = _hex_to_words([it.epc for it in items])
    size = 1 << max(4, int(2 * max(n, 1) - 1).bit_length())
    table = np.full(size, -1, dtype=np.int32)
    duplicate = _fill_table(table, epc_ptr, words, bits)
    if duplicate >= 0:
        raise ValueError(f"item {items[duplicate].item_id}: EPC registered twice")
    scope_ptr, scope_ref = _csr([refs(it.scope_person_ids, it.scope_group_ids) for it in items])

    item_pos = {it.item_id: k for k, it in enumerate(items)}
    item_rows: list[list[int]] = [[] for _ in range(n)]
    for a_idx, appr in enumerate(site.approvals):
        for item_id in appr.item_ids:
            if item_id in item_pos:
                item_rows[item_pos[item_id]].append(a_idx)
    item_appr_ptr, item_appr = _csr(item_rows)
    appr_ref_ptr, appr_ref = _csr([refs(a.person_ids, a.group_ids) for a in site.approvals])

    reader_code: dict[str, int] = {}
    max_antenna = 0
    for portal in site.portals:
        for ant in portal.antennas:
            reader_code.setdefault(ant.reader, len(reader_code))
            max_antenna = max(max_antenna, ant.antenna)
    ant_portal = np.full((max(len(reader_code), 1), max_antenna + 1), -1, dtype=np.int32)
    ant_side = np.zeros(ant_portal.shape, dtype=np.int8)
    for p_idx, portal in enumerate(site.portals):
        for ant in portal.antennas:
            ant_portal[reader_code[ant.reader], ant.antenna] = p_idx
            ant_side[reader_code[ant.reader], ant.antenna] = _SIDE_CODE[ant.side]

    def vidx(venue_id: int | None) -> int:
        return -1 if venue_id is None else venue_index[venue_id]

    def pidx(portal_id: int | None) -> int:
        return -1 if portal_id is None else portal_index[portal_id]

    approvals = site.approvals
    return Snapshot(
        site=site,
        item_ids=np.fromiter((it.item_id for it in items), dtype=np.int64, count=n),
        item_level=np.fromiter((it.level for it in items), dtype=np.int8, count=n),
        item_status=np.fromiter((STATUS_CODE[it.status] for it in items), dtype=np.int8, count=n),
        item_venue=np.fromiter((vidx(it.venue_id) for it in items), dtype=np.int32, count=n),
        item_tid=np.fromiter((tid_hash(it.tid) for it in items), dtype=np.uint64, count=n),
        scope_ptr=scope_ptr, scope_ref=scope_ref,
        epc_ptr=epc_ptr, epc_words=words, epc_bits=bits, table=table,
        venue_ids=np.array([v.venue_id for v in site.venues], dtype=np.int64),
        venue_ceiling=np.array([v.ceiling for v in site.venues], dtype=np.int8),
        venue_ts=np.array([v.top_secret_designated for v in site.venues], dtype=np.bool_),
        portal_ids=np.array([p.portal_id for p in site.portals], dtype=np.int64),
        portal_inside=np.array([vidx(p.inside_venue_id) for p in site.portals], dtype=np.int32),
        portal_outside=np.array([vidx(p.outside_venue_id) for p in site.portals], dtype=np.int32),
        portal_border=np.array([p.border for p in site.portals], dtype=np.bool_),
        portal_xy=np.array([(p.x_m, p.y_m) for p in site.portals], dtype=np.float64).reshape(-1, 2),
        ant_portal=ant_portal, ant_side=ant_side, reader_code=reader_code,
        person_ids=np.array([p.person_id for p in site.people], dtype=np.int64),
        person_clearance=np.array([p.clearance for p in site.people], dtype=np.int8),
        person_active=np.array([p.active for p in site.people], dtype=np.bool_),
        pgroup_ptr=_csr([[group_index[g] for g in p.group_ids] for p in site.people])[0],
        pgroup_idx=_csr([[group_index[g] for g in p.group_ids] for p in site.people])[1],
        badge_person={p.badge: k for k, p in enumerate(site.people)},
        appr_ids=np.array([a.approval_id for a in approvals], dtype=np.int64),
        appr_kind=np.array([KIND_CODE[a.kind] for a in approvals], dtype=np.int8),
        appr_from=np.array([a.valid_from_us for a in approvals], dtype=np.int64),
        appr_until=np.array([a.valid_until_us for a in approvals], dtype=np.int64),
        appr_uses=np.array([a.uses_left for a in approvals], dtype=np.int32),
        appr_return_by=np.array(
            [NO_TIME if a.return_by_us is None else a.return_by_us for a in approvals], dtype=np.int64
        ),
        appr_portal=np.array([pidx(a.portal_id) for a in approvals], dtype=np.int32),
        appr_dest=np.array([vidx(a.destination_venue_id) for a in approvals], dtype=np.int32),
        appr_ref_ptr=appr_ref_ptr, appr_ref=appr_ref,
        item_appr_ptr=item_appr_ptr, item_appr=item_appr,
    )

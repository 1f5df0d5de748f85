"""The register compiled into arrays: what the kernels read, built in one call, swapped atomically.

Items, venues, portals, people and approvals get dense indices (their order in the SiteModel).
Many-to-many relations are CSR pairs (``*_ptr`` offsets into a flat index array). People and groups
share one index space in scope/approval lists: a person is ``p``, a group is ``n_people + g``.
EPCs live in one flat word array with per-item offsets, found through an open-addressing hash table.

Routes: venues and the outside of the unit (node ``n_venues``) are the nodes of a graph whose edges
are the portals. For every node an approval can lead to, ``route_dist`` holds the number of doors
from each node to it along paths that stay inside the unit (the outside is a destination, never a
way through). A door is on an approval's route when crossing it brings the item strictly closer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from tracking.codes import FINAL_NEXT, FINAL_OUTSIDE, KIND_CODE, ROUTE_FAR, SIDE_CODE, SIDE_IGNORE, STATUS_CODE
from tracking.epc import EPC_MAX_BITS, EPC_MIN_BITS, epc_bits, epc_words, tid_hash
from tracking.kernels import _fill_table, find_item
from tracking.model import SiteModel


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
    venue_fail_secure: np.ndarray  # int8, fail_secure_level
    # portals
    portal_ids: np.ndarray
    portal_inside: np.ndarray  # int32 venue index
    portal_outside: np.ndarray  # int32 venue index, -1 = outside the unit
    portal_border: np.ndarray  # bool
    portal_xy: np.ndarray  # float64[p, 2]
    ant_portal: np.ndarray  # int32[readers, antennas], -1 = unknown
    ant_side: np.ndarray  # int8[readers, antennas], SIDE_*
    reader_code: dict[str, int]
    portal_antennas: tuple[tuple[tuple[str, int], ...], ...]  # per portal: (reader, antenna), not ignored
    portal_readers: tuple[frozenset[str], ...]  # per portal
    # people (one entry per person, however many badges)
    person_ids: np.ndarray
    person_clearance: np.ndarray  # int8
    person_active: np.ndarray  # bool
    pgroup_ptr: np.ndarray  # int32[q+1]
    pgroup_idx: np.ndarray  # int32 group index
    badge_person: dict[str, int]  # every badge -> person index
    inactive_badges: frozenset[str]
    # approvals
    appr_ids: np.ndarray
    appr_kind: np.ndarray  # int8, index into APPROVAL_KINDS
    appr_from: np.ndarray  # int64
    appr_until: np.ndarray  # int64
    appr_uses: np.ndarray  # int32, uses left when compiled
    appr_portal: np.ndarray  # int32 portal index, -1 = any
    appr_dest: np.ndarray  # int32 venue index, -1 = any
    appr_ref_ptr: np.ndarray  # int32[k+1]
    appr_ref: np.ndarray  # int32 person or n_people + group
    item_appr_ptr: np.ndarray  # int32[n+1]
    item_appr: np.ndarray  # int32 approval indices, ascending
    # routes (module docstring)
    route_dist: np.ndarray  # int32[targets, n_venues + 1], ROUTE_FAR = unreachable
    appr_row_target: np.ndarray  # int32 route_dist row of the approval's destination, -1 = any next venue
    appr_row_portal: np.ndarray  # int32 route_dist row of the approval portal's inside venue, -1 = none
    appr_final: np.ndarray  # int32 where the item comes to rest: venue index, -1 outside, -2 next venue

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
        words = np.array(epc_words(epc), dtype=np.uint64)
        return int(find_item(self.table, self.epc_ptr, self.epc_words, self.epc_bits, words, 0, bits))


def _lookup(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in keys, -1 when absent."""
    if len(keys) == 0 or len(values) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    pos = np.minimum(np.searchsorted(keys, values, sorter=order), len(keys) - 1)
    found = order[pos]
    return np.where(keys[found] == values, found, -1)


def _pairs_csr(rows: np.ndarray, values: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of (row, value) pairs; pairs keep their given order within a row."""
    order = np.argsort(rows, kind="stable")
    ptr = np.zeros(n_rows + 1, dtype=np.int32)
    ptr[1:] = np.cumsum(np.bincount(rows, minlength=n_rows))
    return ptr, values[order].astype(np.int32)


def _flatten(lists: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """(row of each element, elements) of a list of int tuples."""
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(lengths.sum()))
    return np.repeat(np.arange(len(lists)), lengths), flat


def _ref_csr(persons: list[tuple[int, ...]], groups: list[tuple[int, ...]], person_ids: np.ndarray,
             group_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the people (as indices) then the groups (as n_people + index); unknown ids dropped."""
    p_rows, p_flat = _flatten(persons)
    g_rows, g_flat = _flatten(groups)
    p_idx = _lookup(person_ids, p_flat)
    g_idx = _lookup(group_ids, g_flat)
    g_idx = np.where(g_idx >= 0, g_idx + len(person_ids), -1)
    rows, refs = np.concatenate([p_rows, g_rows]), np.concatenate([p_idx, g_idx])
    keep = refs >= 0
    return _pairs_csr(rows[keep], refs[keep], len(persons))


def _route_rows(site: SiteModel, venue_index: dict[int, int], portal_index: dict[int, int]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(route_dist, appr_row_target, appr_row_portal, appr_final); see the module docstring."""
    n = len(site.venues)
    outside = n
    neighbours: list[list[int]] = [[] for _ in range(n + 1)]
    ends = []
    for portal in site.portals:
        a = venue_index[portal.inside_venue_id]
        b = outside if portal.outside_venue_id is None else venue_index[portal.outside_venue_id]
        neighbours[a].append(b)
        neighbours[b].append(a)
        ends.append((a, b))
    rows: dict[int, int] = {}

    def row(node: int) -> int:
        return rows.setdefault(node, len(rows))

    targets, portal_rows, finals = [], [], []
    for a in site.approvals:
        x = -1 if a.portal_id is None else portal_index[a.portal_id]
        if a.destination_venue_id is not None:
            node = venue_index[a.destination_venue_id]
        elif x >= 0:
            node = ends[x][1]
        elif a.kind in ("carry_out", "abroad"):
            node = outside
        else:
            node = -1
        targets.append(row(node) if node >= 0 else -1)
        portal_rows.append(row(ends[x][0]) if x >= 0 else -1)
        finals.append(FINAL_NEXT if node < 0 else FINAL_OUTSIDE if node == outside else node)
    dist = np.full((len(rows), n + 1), ROUTE_FAR, dtype=np.int32)
    for node, r in rows.items():
        dist[r, node] = 0
        frontier = [node]
        while frontier:
            nxt = []
            for v in frontier:
                if v == outside and v != node:
                    continue  # the outside of the unit is an end, never a way through
                for w in neighbours[v]:
                    if dist[r, w] == ROUTE_FAR:
                        dist[r, w] = dist[r, v] + 1
                        nxt.append(w)
            frontier = nxt
    return (dist, np.array(targets, np.int32), np.array(portal_rows, np.int32), np.array(finals, np.int32))


def _column(objects: tuple, name: str, dtype: type) -> np.ndarray:
    return np.fromiter(map(attrgetter(name), objects), dtype=dtype, count=len(objects))


def _hex_to_words(epcs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised hex parsing, grouped by length: (ptr int32[n+1], words uint64, bits int16, ok bool[n]).

    ok is False for an EPC of a wrong length or with a non-hex character.
    """
    n = len(epcs)
    lengths = np.fromiter(map(len, epcs), dtype=np.int32, count=n)
    bits = (lengths * 4).astype(np.int16)
    ok = (bits >= EPC_MIN_BITS) & (bits <= EPC_MAX_BITS) & (bits % 16 == 0)
    nwords = (lengths + 15) // 16
    ptr = np.zeros(n + 1, dtype=np.int32)
    ptr[1:] = np.cumsum(nwords)
    words = np.zeros(int(ptr[-1]), dtype=np.uint64)
    lut = np.full(256, 255, dtype=np.uint8)
    for k, ch in enumerate(b"0123456789ABCDEF"):
        lut[ch] = k
        lut[ord(chr(ch).lower())] = k
    for length in np.unique(lengths):
        rows = np.nonzero(lengths == length)[0]
        text = "".join(epcs[r] for r in rows).encode("ascii", "replace")
        nib = lut[np.frombuffer(text, dtype=np.uint8)].reshape(len(rows), int(length))
        ok[rows[(nib == 255).any(axis=1)]] = False
        for w in range((int(length) + 15) // 16):
            acc = np.zeros(len(rows), dtype=np.uint64)
            for j in range(min(16, int(length) - 16 * w)):
                acc |= nib[:, 16 * w + j].astype(np.uint64) << np.uint64(60 - 4 * j)
            words[ptr[rows] + w] = acc
    return ptr, words, bits, ok


def build_snapshot(site: SiteModel, config: object = None) -> Snapshot:
    """Compile a SiteModel into a Snapshot. Raises ValueError on an inconsistent register.

    `config` is accepted for symmetry with the engine; the snapshot does not depend on it.
    """
    del config
    venue_index = {v.venue_id: k for k, v in enumerate(site.venues)}
    portal_index = {p.portal_id: k for k, p in enumerate(site.portals)}
    group_index = {g: k for k, g in enumerate(site.groups)}
    for person in site.people:
        group_index.update((g, len(group_index)) for g in person.group_ids if g not in group_index)
    person_ids = _column(site.people, "person_id", np.int64)
    group_ids = np.array(list(group_index), dtype=np.int64)

    items = site.items
    n = len(items)
    epc_ptr, words, bits, ok = _hex_to_words(list(map(attrgetter("epc"), items)))
    if not ok.all():
        bad = items[int(np.argmin(ok))]
        raise ValueError(f"item {bad.item_id}: malformed EPC {bad.epc!r}")
    size = 1 << max(4, int(2 * max(n, 1) - 1).bit_length())
    table = np.full(size, -1, dtype=np.int32)
    duplicate = _fill_table(table, epc_ptr, words, bits)
    if duplicate >= 0:
        raise ValueError(f"item {items[duplicate].item_id}: EPC registered twice")
    scope_ptr, scope_ref = _ref_csr(list(map(attrgetter("scope_person_ids"), items)),
                                    list(map(attrgetter("scope_group_ids"), items)), person_ids, group_ids)

    item_ids = _column(items, "item_id", np.int64)
    appr_rows, appr_items = _flatten([a.item_ids for a in site.approvals])
    item_pos = _lookup(item_ids, appr_items)
    known = item_pos >= 0
    item_appr_ptr, item_appr = _pairs_csr(item_pos[known], appr_rows[known], n)
    appr_ref_ptr, appr_ref = _ref_csr([a.person_ids for a in site.approvals], [a.group_ids for a in site.approvals],
                                      person_ids, group_ids)

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
            ant_side[reader_code[ant.reader], ant.antenna] = SIDE_CODE[ant.side]

    def vidx(venue_id: int | None) -> int:
        return -1 if venue_id is None else venue_index[venue_id]

    def pidx(portal_id: int | None) -> int:
        return -1 if portal_id is None else portal_index[portal_id]

    approvals = site.approvals
    pgroups = _ref_csr([() for _ in site.people], [p.group_ids for p in site.people], np.zeros(0, np.int64), group_ids)
    badge_person: dict[str, int] = {}
    for k, person in enumerate(site.people):
        for badge in person.all_badges:
            if badge_person.setdefault(badge, k) != k:
                raise ValueError(f"badge {badge!r} belongs to two people")
    route_dist, appr_row_target, appr_row_portal, appr_final = _route_rows(site, venue_index, portal_index)
    return Snapshot(
        site=site,
        item_ids=item_ids,
        item_level=_column(items, "level", np.int8),
        item_status=np.fromiter(map(STATUS_CODE.__getitem__, map(attrgetter("status"), items)), np.int8, n),
        item_venue=np.fromiter(map(vidx, map(attrgetter("venue_id"), items)), dtype=np.int32, count=n),
        item_tid=np.fromiter(map(tid_hash, map(attrgetter("tid"), items)), dtype=np.uint64, count=n),
        scope_ptr=scope_ptr, scope_ref=scope_ref,
        epc_ptr=epc_ptr, epc_words=words, epc_bits=bits, table=table,
        venue_ids=np.array([v.venue_id for v in site.venues], dtype=np.int64),
        venue_ceiling=np.array([v.ceiling for v in site.venues], dtype=np.int8),
        venue_ts=np.array([v.top_secret_designated for v in site.venues], dtype=np.bool_),
        venue_fail_secure=np.array([v.fail_secure_level for v in site.venues], dtype=np.int8),
        portal_ids=np.array([p.portal_id for p in site.portals], dtype=np.int64),
        portal_inside=np.array([vidx(p.inside_venue_id) for p in site.portals], dtype=np.int32),
        portal_outside=np.array([vidx(p.outside_venue_id) for p in site.portals], dtype=np.int32),
        portal_border=np.array([p.border for p in site.portals], dtype=np.bool_),
        portal_xy=np.array([(p.x_m, p.y_m) for p in site.portals], dtype=np.float64).reshape(-1, 2),
        ant_portal=ant_portal, ant_side=ant_side, reader_code=reader_code,
        portal_antennas=tuple(tuple(dict.fromkeys((a.reader, a.antenna) for a in p.antennas
                                                  if SIDE_CODE[a.side] != SIDE_IGNORE)) for p in site.portals),
        portal_readers=tuple(frozenset(a.reader for a in p.antennas) for p in site.portals),
        person_ids=person_ids,
        person_clearance=np.array([p.clearance for p in site.people], dtype=np.int8),
        person_active=np.array([p.active for p in site.people], dtype=np.bool_),
        pgroup_ptr=pgroups[0],
        pgroup_idx=pgroups[1],
        badge_person=badge_person,
        inactive_badges=frozenset(b for p in site.people for b in p.inactive_badges),
        appr_ids=np.array([a.approval_id for a in approvals], dtype=np.int64),
        appr_kind=np.array([KIND_CODE[a.kind] for a in approvals], dtype=np.int8),
        appr_from=np.array([a.valid_from_us for a in approvals], dtype=np.int64),
        appr_until=np.array([a.valid_until_us for a in approvals], dtype=np.int64),
        appr_uses=np.array([a.uses_left for a in approvals], dtype=np.int32),
        appr_portal=np.array([pidx(a.portal_id) for a in approvals], dtype=np.int32),
        appr_dest=np.array([vidx(a.destination_venue_id) for a in approvals], dtype=np.int32),
        appr_ref_ptr=appr_ref_ptr, appr_ref=appr_ref,
        item_appr_ptr=item_appr_ptr, item_appr=item_appr,
        route_dist=route_dist, appr_row_target=appr_row_target, appr_row_portal=appr_row_portal,
        appr_final=appr_final,
    )

"""Synthetic sites and read streams, for the benchmark and for load tests (a simulator, not a fixture).

The site is a grid of venues of equal ceiling joined by portals 10 m apart, with a few portals to the
outside; each portal has one reader with an inside (1), an outside (2) and an ignored (3) antenna.
A stream is a sequence of passes: an item carried through a portal, read `reads_per_pass` times,
first on one side then the other, plus a fraction of reads of tags not in the register.
"""

from __future__ import annotations

import numpy as np

from tracking.events import ReadBatch
from tracking.model import AntennaSpec, ApprovalSpec, ItemSpec, PersonSpec, PortalSpec, SiteModel, VenueSpec
from tracking.snapshot import Snapshot


def synthetic_site(n_items: int, n_portals: int = 200, n_people: int = 10_000, seed: int = 0) -> SiteModel:
    rng = np.random.default_rng(seed)
    n_venues = n_portals + 1
    venues = tuple(VenueSpec(v, ceiling=3, storage=True) for v in range(n_venues))
    side = max(1, int(np.ceil(np.sqrt(n_portals))))
    portals = tuple(
        PortalSpec(
            portal_id=p, inside_venue_id=p, outside_venue_id=None if p % 50 == 49 else p + 1,
            antennas=(AntennaSpec(f"R{p}", 1, "inside"), AntennaSpec(f"R{p}", 2, "outside"),
                      AntennaSpec(f"R{p}", 3, "ignore")),
            x_m=10.0 * (p % side), y_m=10.0 * (p // side),
        )
        for p in range(n_portals)
    )
    levels = rng.integers(0, 4, n_items)
    homes = rng.integers(0, n_venues, n_items)
    scopes = rng.integers(0, max(n_people, 1), n_items)
    items = tuple(
        ItemSpec(i, f"E280{i:020X}", None, int(levels[i]), "active", int(homes[i]), (int(scopes[i]),))
        for i in range(n_items)
    )
    people = tuple(PersonSpec(q, f"B{q:06d}", clearance=int(q % 5), group_ids=(q % 20,)) for q in range(n_people))
    approvals = tuple(
        ApprovalSpec(a, "carry_out", (int(rng.integers(0, n_items)),), (int(rng.integers(0, n_people)),),
                     uses_left=3)
        for a in range(min(n_items, 1000))
    )
    return SiteModel(items, venues, portals, people, approvals, tuple(range(20)))


def synthetic_reads(snapshot: Snapshot, n_reads: int, reads_per_pass: int = 8, pass_gap_us: int = 1000,
                    unknown_fraction: float = 0.001, seed: int = 1) -> ReadBatch:
    """A time-ordered batch of about n_reads reads (see module docstring)."""
    rng = np.random.default_rng(seed)
    n_pass = max(1, n_reads // reads_per_pass)
    item = rng.integers(0, snapshot.n_items, n_pass)
    portal = rng.integers(0, len(snapshot.portal_ids), n_pass)
    start = np.arange(n_pass, dtype=np.int64) * pass_gap_us + 1_000_000
    outward = rng.random(n_pass) < 0.5
    step = np.arange(reads_per_pass, dtype=np.int64) * 20_000  # a read every 20 ms while carried
    times = (start[:, None] + step[None, :]).ravel()
    first_half = (np.arange(reads_per_pass) < reads_per_pass // 2)[None, :]
    inside = np.where(outward[:, None], first_half, ~first_half).ravel()
    antenna = np.where(inside, 1, 2).astype(np.int32)
    portal_rows = np.repeat(portal, reads_per_pass)
    names = np.array([f"R{int(p)}" for p in snapshot.portal_ids])
    reader = np.array([snapshot.reader_code[str(nm)] for nm in names], dtype=np.int32)[portal_rows]
    item_rows = np.repeat(item, reads_per_pass)
    width = int((snapshot.epc_ptr[1:] - snapshot.epc_ptr[:-1]).max())
    words = np.zeros((len(times), width), dtype=np.uint64)
    for w in range(width):
        words[:, w] = snapshot.epc_words[snapshot.epc_ptr[item_rows] + w]
    bits = snapshot.epc_bits[item_rows].copy()
    unknown = rng.random(len(times)) < unknown_fraction
    words[unknown, 0] ^= np.uint64(0xFFFF)  # a foreign tag: same length, not in the register
    order = np.argsort(times, kind="stable")
    rssi = rng.uniform(-70.0, -40.0, len(times))
    return ReadBatch(times[order], reader[order], antenna[order], words[order], bits[order], rssi[order],
                     np.zeros(len(times), np.uint64))

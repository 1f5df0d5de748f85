"""Checks only the centre can make, on records as they reach its register: the same tag crossing doors at two
sites further apart than anyone could travel in the time between is a possible clone, journaled and alarmed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from controllers.outbox import HAS_EFFECTS, Frame
from controllers.recorder import Identity
from controllers.records import ItemCrossed, RecordId
from multisite.centre_site import CentreOptions, CentreSite
from multisite.demo_sites import demo_sites
from multisite.shipping import frame_envelope
from registry.journal import canonical_json
from registry.models import Item, JournalEntry

S = 1_000_000


def _crossing(node: Identity, seq: int, item: Item, at_us: int) -> Frame:
    record = ItemCrossed(
        item_id=item.id, item=f"{item.register_number}/{item.copy_number}", epc=item.epc, portal=f"{node.site}-door",
        from_venue="inside", to_venue="outside", to_venue_id=None, direction="out", time_us=at_us,
        emergency_release=False,
    )
    actor, action, subject = record.entry()
    payload = canonical_json(record.payload(RecordId(node.site, node.node, seq)))
    return Frame(seq, HAS_EFFECTS, record.KIND, actor, action, subject, payload, 0, 0)


def test_one_tag_at_two_distant_sites_a_minute_apart_is_a_possible_clone(tmp_path: Path) -> None:
    files = tuple(s.write(tmp_path / "files") for s in demo_sites(2))
    centre = CentreSite(CentreOptions(f"sqlite:///{tmp_path / 'centre.db'}", files, tmp_path / "centre",
                                      site_distances_m=(("site-a", "site-b", 40_000.0),), max_speed_m_per_s=40.0))
    centre.start()
    try:
        with centre.factory() as session:
            item = session.execute(select(Item).where(Item.register_number == "S-site-a-001")).scalar_one()
        a, b = Identity("site-a", "n1"), Identity("site-b", "n1")
        assert centre.sink is not None
        centre.sink.apply([frame_envelope(a, _crossing(a, 1, item, 0), 0)])
        centre.sink.apply([frame_envelope(b, _crossing(b, 1, item, 3600 * S), 0)])  # an hour later: possible
        assert not [e for e in centre.bus.history() if e.title == "possible clone across sites"]
        centre.sink.apply([frame_envelope(a, _crossing(a, 2, item, 3660 * S), 0)])  # 40 km back in a minute
        alarms = [e for e in centre.bus.history() if e.title == "possible clone across sites"]
        assert len(alarms) == 1 and item.epc in dict(alarms[0].details)["detail"]
        with centre.factory() as session:
            journaled = session.execute(
                select(JournalEntry).where(JournalEntry.action == "alarm.possible_clone_across_sites")
            ).scalars().all()
        assert len(journaled) == 1
        centre.sink.apply([frame_envelope(a, _crossing(a, 2, item, 3660 * S), 0)])  # a redelivery
        assert len([e for e in centre.bus.history() if e.title == "possible clone across sites"]) == 1
    finally:
        centre.stop()

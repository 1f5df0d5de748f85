"""Checks only the centre can make, on records as they reach its register: the same tag crossing doors at two
sites further apart than anyone could travel in the time between is a possible clone; an item or a person
recorded at a second site while the first still has it (no departure, no shipment) is in two places. Each is
journaled and alarmed at the centre."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from controllers.outbox import HAS_EFFECTS, Frame
from controllers.recorder import Identity
from controllers.records import ItemCrossed, PersonMoved, Record, RecordId
from multisite.centre_site import CentreOptions, CentreSite
from multisite.demo_sites import demo_sites
from multisite.shipping import frame_envelope
from registry import db
from registry.journal import canonical_json
from registry.models import Item, JournalEntry, Person, Portal, Venue
from registry.services import lookup, transfers

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


def _frame(node: Identity, seq: int, record: Record) -> Frame:
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


def test_an_item_or_a_person_recorded_at_a_second_site_is_in_two_places(tmp_path: Path) -> None:
    files = tuple(s.write(tmp_path / "files") for s in demo_sites(2))
    centre = CentreSite(CentreOptions(f"sqlite:///{tmp_path / 'centre.db'}", files, tmp_path / "centre")).start()
    seqs = {"site-a": 0, "site-b": 0}
    try:
        with centre.factory() as session:
            ids = {code: i for code, i in session.execute(select(Venue.code, Venue.id))}
            portals = {code: i for code, i in session.execute(select(Portal.code, Portal.id))}
            people = {name: i for name, i in session.execute(select(Person.username, Person.id))}
            items = {key: (i, epc) for key, i, epc in session.execute(select(Item.register_number, Item.id, Item.epc))}

        def record(site: str, record: Record) -> None:
            seqs[site] += 1
            node = Identity(site, "n1")
            assert centre.sink is not None
            centre.sink.apply([frame_envelope(node, _frame(node, seqs[site], record), 0)])

        def person(site: str, who: str, inside: bool, at_s: int) -> None:
            record(site, PersonMoved(
                person_id=people[who], person=who, portal_id=portals[f"{site}-archive-door"], portal=f"{site}-door",
                from_venue_id=None if inside else ids[f"{site}-archive"],
                to_venue_id=ids[f"{site}-archive"] if inside else None, time_us=at_s * S, cause="badge",
                uncertain=False,
            ))

        def item_in(site: str, key: str, at_s: int) -> None:
            item_id, epc = items[key]
            record(site, ItemCrossed(
                item_id=item_id, item=f"{key}/1", epc=epc, portal=f"{site}-archive-door", from_venue="outside",
                to_venue=f"{site}-archive", to_venue_id=ids[f"{site}-archive"], direction="in", time_us=at_s * S,
                emergency_release=False,
            ))

        def alarms(title: str) -> list[dict[str, str]]:
            return [dict(e.details) for e in centre.bus.history() if e.title == title]

        # Items: the register has both of site-a's items in its archive; one is shipped to site-b.
        with db.transaction(centre.factory) as session:
            shipped = transfers.hand_over(session, "site-a-paul", receiver="site-b-paul", items=("S-site-a-002/1",),
                                          to_venue="site-b-archive")
            assert lookup.item(session, "S-site-a-002/1").status == "in_transit" and shipped.id
        item_in("site-b", "S-site-a-001", 10)  # site-a has not been heard from since: judged once it has
        item_in("site-b", "S-site-a-002", 11)  # the shipment arriving
        assert alarms("item recorded at two sites") == []
        # People: carol enters site-a and then site-b; bob leaves site-a first; paul's exit from site-a comes
        # late (site-a lagging), but it was before he entered site-b.
        person("site-a", "site-a-carol", True, 1)
        person("site-a", "site-a-bob", True, 2)
        person("site-a", "site-a-bob", False, 5)
        person("site-a", "site-a-paul", True, 6)
        person("site-b", "site-a-carol", True, 30)
        person("site-b", "site-a-bob", True, 31)
        person("site-b", "site-a-paul", True, 40)
        assert alarms("person recorded at two sites") == [], "not judged before site-a is heard up to then"
        person("site-a", "site-a-paul", False, 35)  # site-a's backlog arrives
        person("site-a", "site-a-gus", True, 50)

        [item_alarm] = alarms("item recorded at two sites")
        assert item_alarm["item"] == "S-site-a-001/1" and item_alarm["sites"] == "site-a, site-b"
        [person_alarm] = alarms("person recorded at two sites")
        assert person_alarm["person"] == "site-a-carol"
        with centre.factory() as session:
            journaled = [(e.action, e.subject) for e in session.execute(select(JournalEntry).where(
                JournalEntry.action.in_(("alarm.item_in_two_places", "alarm.presence_across_sites"))
            )).scalars()]
        assert sorted(journaled) == [("alarm.item_in_two_places", "item:S-site-a-001/1"),
                                     ("alarm.presence_across_sites", "person:site-a-carol")]
    finally:
        centre.stop()

"""The compiled register: EPC lookup, layout and validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.tracking.sites import vault_site
from tracking.model import ApprovalSpec, ItemSpec, PersonSpec
from tracking.snapshot import build_snapshot

epcs = st.integers(6, 31).flatmap(lambda words: st.text("0123456789ABCDEF", min_size=4 * words,
                                                      max_size=4 * words))


@given(st.lists(epcs, min_size=1, max_size=40, unique=True), epcs)
def test_every_registered_epc_is_found_and_others_are_not(registered: list[str], probe: str) -> None:
    items = tuple(ItemSpec(i, e, None, 0, "active", 2) for i, e in enumerate(registered))
    snapshot = build_snapshot(vault_site(items=items))
    assert [snapshot.item_index(e) for e in registered] == list(range(len(registered)))
    assert [snapshot.item_index(e.lower()) for e in registered] == list(range(len(registered)))
    assert snapshot.item_index(probe) == (registered.index(probe) if probe in registered else -1)


def test_leading_zeros_and_length_are_part_of_the_epc() -> None:
    short, long = "0" * 24, "0" * 32
    snapshot = build_snapshot(vault_site(items=(ItemSpec(1, short, None, 0, "active", 2),)))
    assert snapshot.item_index(short) == 0 and snapshot.item_index(long) == -1


def test_duplicate_and_malformed_epcs_are_refused() -> None:
    twice = (ItemSpec(1, "A" * 24, None, 0, "active", 2), ItemSpec(2, "a" * 24, None, 0, "active", 2))
    with pytest.raises(ValueError, match="registered twice"):
        build_snapshot(vault_site(items=twice))
    with pytest.raises(ValueError, match="malformed"):
        build_snapshot(vault_site(items=(ItemSpec(1, "XYZ" * 8, None, 0, "active", 2),)))


def test_ids_map_to_dense_indices() -> None:
    snapshot = build_snapshot(vault_site(items=(ItemSpec(7, "B" * 24, "T", 3, "seized", 1, (1, 2), (7,)),)))
    assert snapshot.item_ids.tolist() == [7] and snapshot.item_level.tolist() == [3]
    assert snapshot.item_venue.tolist() == [0]  # venue 1 is the first venue
    assert snapshot.scope_ref.tolist() == [0, 1, 5]  # two people, then group 7 after the five people
    assert snapshot.array_bytes() > 0


def test_a_badge_belongs_to_one_person() -> None:
    people = (PersonSpec(1, "alice", 4, badges=("shared",)), PersonSpec(2, "bob", 4, inactive_badges=("shared",)))
    with pytest.raises(ValueError, match="two people"):
        build_snapshot(vault_site(people=people))
    snapshot = build_snapshot(vault_site(people=(PersonSpec(1, "alice", 4, badges=("a2",), inactive_badges=("a0",)),)))
    assert snapshot.badge_person == {"alice": 0, "a2": 0, "a0": 0} and snapshot.inactive_badges == {"a0"}


def test_route_distances_count_doors_inside_the_unit() -> None:
    # vault 1 -10- office 2 -40- room 3; the office leaves the unit by 20 and 30
    approvals = (ApprovalSpec(1, "transfer", (), destination_venue_id=3), ApprovalSpec(2, "carry_out", ()),
                 ApprovalSpec(3, "transfer", ()), ApprovalSpec(4, "transfer", (), portal_id=40))
    s = build_snapshot(vault_site(approvals=approvals))
    outside = len(s.venue_ids)
    to_room, to_out = s.route_dist[s.appr_row_target[0]], s.route_dist[s.appr_row_target[1]]
    assert to_room.tolist()[:3] == [2, 1, 0] and to_room[outside] == 2  # the outside is an end, never a way
    assert to_out.tolist() == [2, 1, 2, 0]
    assert s.appr_row_target[2] == -1 and s.appr_final.tolist() == [2, -1, -2, 2]
    assert s.route_dist[s.appr_row_portal[3]].tolist()[:3] == [1, 0, 1]  # to portal 40's inside: the office

"""Cross-site checks, written from the rules: a tag cannot travel between sites faster than a person can;
an item is in one custody at a time (domain-rules: every movement recorded); a person is at one site at a time."""

from __future__ import annotations

import pytest

from multisite.crosssite import CloneWatch, Presence, TagSighting, TwoPlaces, clone_suspects, in_two_places

S = 1_000_000  # microseconds per second
KM = {frozenset(("north", "south")): 40_000.0, frozenset(("north", "annex")): 300.0}


def test_same_epc_at_two_distant_sites_minutes_apart_is_a_clone_suspect() -> None:
    reads = [TagSighting("E1", "north", 0), TagSighting("E1", "south", 120 * S)]  # 40 km in 2 minutes
    (suspect,) = clone_suspects(reads, KM, max_speed_m_per_s=40.0)
    assert suspect.epc == "E1" and suspect.first.site == "north" and suspect.second.site == "south"
    assert suspect.speed_m_per_s == pytest.approx(40_000 / 120)


def test_travel_that_is_possible_is_not_suspect() -> None:
    reads = [TagSighting("E1", "north", 0), TagSighting("E1", "south", 3600 * S)]  # 40 km in an hour
    assert clone_suspects(reads, KM, max_speed_m_per_s=40.0) == []
    nearby = [TagSighting("E2", "north", 0), TagSighting("E2", "annex", 60 * S)]  # 300 m in a minute
    assert clone_suspects(nearby, KM, max_speed_m_per_s=40.0) == []


def test_simultaneous_reads_at_two_sites_and_arrival_order_do_not_matter() -> None:
    reads = [TagSighting("E3", "south", 5 * S), TagSighting("E3", "north", 5 * S), TagSighting("E3", "north", 0)]
    (suspect,) = clone_suspects(reads, KM, max_speed_m_per_s=40.0)
    assert suspect.seconds == 0 and suspect.speed_m_per_s == float("inf")


def test_sites_without_a_known_distance_are_an_error_not_a_pass() -> None:
    with pytest.raises(KeyError, match="annex and south"):
        clone_suspects([TagSighting("E4", "annex", 0), TagSighting("E4", "south", S)], KM, 40.0)


def test_an_item_arriving_at_a_second_site_without_leaving_the_first_is_in_two_places() -> None:
    events = [
        Presence("S-1/1", "north", 0, arriving=True),
        Presence("S-1/1", "south", 10 * S, arriving=True),  # no departure recorded at north
        Presence("S-1/1", "north", 20 * S, arriving=False),
    ]
    assert in_two_places(events) == [TwoPlaces("S-1/1", ("north", "south"), 10 * S)]


def test_a_recorded_transfer_is_not_two_places_even_at_the_same_instant() -> None:
    events = [
        Presence("S-2/1", "south", 30 * S, arriving=True),
        Presence("S-2/1", "north", 0, arriving=True),
        Presence("S-2/1", "north", 30 * S, arriving=False),
    ]
    assert in_two_places(events) == []


def test_a_person_badging_in_at_two_sites_is_reported() -> None:
    events = [
        Presence("alice", "north", 0, True),
        Presence("alice", "annex", 5 * S, True),
        Presence("bob", "north", 0, True),
        Presence("bob", "north", 9 * S, False),
        Presence("bob", "annex", 10 * S, True),
    ]
    assert in_two_places(events) == [TwoPlaces("alice", ("annex", "north"), 5 * S)]


def test_the_centre_watch_checks_each_new_read_against_the_other_sites_newest() -> None:
    watch = CloneWatch(KM, max_speed_m_per_s=40.0, keep=2)
    assert watch.see(TagSighting("E1", "north", 0)) == []
    assert watch.see(TagSighting("E1", "north", 10 * S)) == []  # same site: never a clone
    (suspect,) = watch.see(TagSighting("E1", "south", 70 * S))  # 40 km a minute after the newest north read
    assert (suspect.first.at_us, suspect.second.site) == (10 * S, "south")
    assert watch.see(TagSighting("E1", "annex", 0)) == [], "no distance annex-south; north-annex 300 m in 10 s is fine"
    # A lagging site's older read is checked too, and the watch forgets the least recent EPCs beyond `keep`.
    (late,) = watch.see(TagSighting("E1", "south", 5 * S))
    assert late.first.site == "north" or late.second.site == "north"
    watch.see(TagSighting("E2", "north", 0))
    watch.see(TagSighting("E3", "north", 0))
    assert watch.see(TagSighting("E1", "south", 20 * S)) == [], "E1 was forgotten"

"""Checks only the centre can make, because they span sites: pure functions over records, typed in and out.

- Clones: the same EPC read at two sites further apart than anyone could travel in the time between the reads.
- An item held in two places: recorded as arriving at a site while no departure from another site was recorded.
- A person present at two sites at once, by the same rule over entries and exits.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TagSighting:
    epc: str
    site: str
    at_us: int


@dataclass(frozen=True, slots=True)
class CloneSuspect:
    """Two consecutive reads of one EPC: travelling `distance_m` in `seconds` needs `speed_m_per_s`."""

    epc: str
    first: TagSighting
    second: TagSighting
    distance_m: float
    seconds: float
    speed_m_per_s: float


def site_distance(distances_m: Mapping[frozenset[str], float], a: str, b: str) -> float:
    if a == b:
        return 0.0
    try:
        return distances_m[frozenset((a, b))]
    except KeyError:
        raise KeyError(f"no distance between sites {a} and {b}") from None


def clone_suspects(
    sightings: Iterable[TagSighting],
    distances_m: Mapping[frozenset[str], float],
    max_speed_m_per_s: float,
) -> list[CloneSuspect]:
    """Consecutive reads (per EPC, in time order) at different sites that would need more than
    `max_speed_m_per_s` (door to door, including the time to pass through both sites' security). Two reads
    at the same instant at different sites are always suspect."""
    by_epc: dict[str, list[TagSighting]] = {}
    for s in sightings:
        by_epc.setdefault(s.epc, []).append(s)
    found = []
    for epc, reads in sorted(by_epc.items()):
        reads.sort(key=lambda s: (s.at_us, s.site))
        for first, second in itertools.pairwise(reads):
            if first.site == second.site:
                continue
            distance = site_distance(distances_m, first.site, second.site)
            seconds = (second.at_us - first.at_us) / 1e6
            speed = distance / seconds if seconds > 0 else float("inf")
            if speed > max_speed_m_per_s:
                found.append(CloneSuspect(epc, first, second, distance, seconds, speed))
    return found


@dataclass(frozen=True, slots=True)
class Presence:
    """`key` (an item's register number, a person's username) recorded at `site` at `at_us`: arriving
    (inside the site: an entry, an inventory read, an intake) or leaving (an exit, a transfer out)."""

    key: str
    site: str
    at_us: int
    arriving: bool


@dataclass(frozen=True, slots=True)
class TwoPlaces:
    """`key` recorded as present at every site of `sites` at `at_us` (the arrival that made it two)."""

    key: str
    sites: tuple[str, ...]
    at_us: int


def in_two_places(events: Iterable[Presence]) -> list[TwoPlaces]:
    """Every moment a key arrives at a site while still recorded at another (no departure recorded there).
    For items this is an item in two custodies; for people, one person at two sites."""
    by_key: dict[str, list[Presence]] = {}
    for e in events:
        by_key.setdefault(e.key, []).append(e)
    found = []
    for key, history in sorted(by_key.items()):
        history.sort(key=lambda e: (e.at_us, e.arriving))  # a departure at the same instant counts first
        present: set[str] = set()
        for e in history:
            if not e.arriving:
                present.discard(e.site)
                continue
            if present - {e.site}:
                found.append(TwoPlaces(key, tuple(sorted(present | {e.site})), e.at_us))
            present.add(e.site)
    return found


class CloneWatch:
    """`clone_suspects` as the centre applies it to records as they arrive: each new sighting is checked
    against the newest sighting of the same EPC at every other site. Records arrive in order per site but
    sites interleave (one may lag after a partition), so a late older read is checked as well. Site pairs
    without a configured distance are not checked. Remembers at most `keep` EPCs (least recent dropped)."""

    def __init__(
        self, distances_m: Mapping[frozenset[str], float], max_speed_m_per_s: float, keep: int = 200_000
    ) -> None:
        self._distances = distances_m
        self._max_speed = max_speed_m_per_s
        self._keep = keep
        self._latest: OrderedDict[str, dict[str, TagSighting]] = OrderedDict()

    def see(self, sighting: TagSighting) -> list[CloneSuspect]:
        latest = self._latest.setdefault(sighting.epc, {})
        self._latest.move_to_end(sighting.epc)
        found = []
        for site, other in sorted(latest.items()):
            if site != sighting.site and frozenset((site, sighting.site)) in self._distances:
                found += clone_suspects([other, sighting], self._distances, self._max_speed)
        newest = latest.get(sighting.site)
        if newest is None or sighting.at_us >= newest.at_us:
            latest[sighting.site] = sighting
        while len(self._latest) > self._keep:
            self._latest.popitem(last=False)
        return found


@dataclass(frozen=True, slots=True)
class Place:
    """Where the centre last has a key recorded: `site` (None: it left `left`) as of `at_us`."""

    site: str | None
    at_us: int
    left: str | None = None


class PlaceWatch:
    """`in_two_places` as the centre applies it to records as they arrive: an arrival at site B of a key the
    centre has at site A (no departure from A recorded) is reported, unless `covered(key)` (a shipment in
    transit carries it). Sites interleave (one may lag after a partition, its departure record still on the
    way), so an arrival is judged only once the other site has been heard from up to the arrival's time;
    until then it waits in `pending` (a site that stays cut off keeps it waiting: the guards see the site cut
    off). Per key the newest arrival wins: after a report the key is at B."""

    def __init__(self, places: Mapping[str, str] | None = None) -> None:
        """places: key -> site where the register has it now (at time 0)."""
        self._place: dict[str, Place] = {key: Place(site, 0) for key, site in (places or {}).items()}
        self._heard: dict[str, int] = {}  # site -> newest record time heard from it
        self.pending: list[Presence] = []

    def heard(self, site: str, at_us: int, covered: Callable[[str], bool] = lambda key: False) -> list[TwoPlaces]:
        """The centre has every record of `site` up to `at_us`: arrivals waiting for it are judged."""
        self._heard[site] = max(self._heard.get(site, 0), at_us)
        waiting, self.pending = self.pending, []
        found = []
        for arrival in waiting:
            found += self.see(arrival, covered)
        return found

    def see(self, event: Presence, covered: Callable[[str], bool] = lambda key: False) -> list[TwoPlaces]:
        place = self._place.get(event.key)
        if not event.arriving:
            if place is None or place.site == event.site or place.at_us <= event.at_us:
                self._place[event.key] = Place(None, event.at_us, event.site)
            return []
        if place is not None and place.site is None and place.at_us > event.at_us and place.left != event.site:
            # it left the other site only after arriving here (that departure came first, from a lagging site)
            found = TwoPlaces(event.key, tuple(sorted((str(place.left), event.site))), event.at_us)
            self._place[event.key] = Place(event.site, place.at_us)
            return [] if covered(event.key) else [found]
        if place is None or place.site in (None, event.site):
            self._place[event.key] = Place(event.site, event.at_us)
            return []
        if place.at_us > event.at_us:  # a late, older arrival: the newer place stands
            return []
        if self._heard.get(place.site, 0) < event.at_us:  # its departure from there may still be on the way
            self.pending.append(event)
            return []
        self._place[event.key] = Place(event.site, event.at_us)
        found = TwoPlaces(event.key, tuple(sorted((place.site, event.site))), event.at_us)
        return [] if covered(event.key) else [found]

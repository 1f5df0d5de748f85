"""People at a portal: an overhead camera's counter, and the interface any people counter presents.

A site may count with this camera counter or with a sensor it trusts more (an overhead 3-D counter
over MQTT: `firmware_bridge.people_counter_mqtt`); both are a `PeopleSource` yielding `HeadCount`s.

The camera counter keeps a background of the empty portal and updates it only where nobody is, so a
person who stands at the badge reader stays foreground (and counted) for as long as they stand; a
light switched on scales the whole scene, which is measured and divided out rather than relearned.
Foreground is what differs from that background in brightness or in colour (clothes of the floor's grey
but another colour are people too). Foreground regions are tracked from frame to frame. A region wholly
in view, large enough, with straight edges, that fills its rectangle is an object (a box, a trolley), not
a person; it stays one while its region does not grow, and a person pushing it is what its area
leaves. A region larger than one person may hold several: it is counted at the most people it can hold
and flagged `ambiguous`, so a decision built on it holds or refuses instead of rounding down.
"""

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import cv2
import numpy as np

Direction = Literal["in", "out"]
MAX_CHANGED_SHARE = 0.6  # more of the frame than this unlike the background, after light is divided out
OBJECT_FILL = 0.88  # a region filling this much of its rotated rectangle ...
STRAIGHT_SHARE = 0.8  # ... with this share of its outline along the rectangle's sides: an object
EDGE_TOLERANCE_PX = 2.0
OBJECT_MIN_SIDE_PX = 8 * EDGE_TOLERANCE_PX  # a region narrower than this is never judged an object
MERGE_SHARE = 1.35  # a region this many person areas large may be more than one person
RELIGHT_GAIN = 1.2  # the scene's light changed by this factor from one frame to the next: a lamp, not daylight
RELIGHT_RADIUS = 1.5  # around a tracked person, in person sizes: where the old background is kept
MERGE_WIDTH = 2.1  # ... and so may one wider than this many times the square root of a person's area
OBJECT_GROWTH = 1.15  # an object's region this much larger than when seen whole: someone may be with it
COLOUR_CLOSE = 5  # px: gaps closed in the colour difference (within one person's outline)
GREY_WEIGHTS = np.array([[0.114, 0.587, 0.299]], np.float32)  # B, G, R as a grey camera weighs them


@runtime_checkable
class HeadCount(Protocol):
    """One count from any people counter."""

    @property
    def source(self) -> str: ...
    @property
    def time_us(self) -> int: ...
    @property
    def count(self) -> int: ...  # people present now; when ambiguous, the most there may be
    @property
    def ambiguous(self) -> bool: ...  # the counter cannot tell exactly: decide fail-secure


@runtime_checkable
class PeopleSource(Protocol):
    """A people counter: camera, overhead sensor, anything that yields HeadCounts."""

    def counts(self) -> Iterator[HeadCount]: ...


@dataclass(frozen=True)
class PortalLine:
    """'in' is a crossing from the left of start->end to its right (image coordinates, y down)."""

    start: tuple[float, float]
    end: tuple[float, float]

    def side(self, point: np.ndarray) -> float:
        (x0, y0), (x1, y1) = self.start, self.end
        length = float(np.hypot(x1 - x0, y1 - y0)) or 1.0
        return float(((x1 - x0) * (point[1] - y0) - (y1 - y0) * (point[0] - x0)) / length)


@dataclass(frozen=True)
class PeopleConfig:
    line: PortalLine
    person_area_px: float  # one person's region area as this camera sees them
    zone: tuple[tuple[float, float], ...] = ()  # polygon where people are counted; () is the whole frame
    min_share: float = 0.35  # regions smaller than this share of a person are noise or a limb
    hysteresis_px: float = 4.0
    max_step_px: float = 60.0  # furthest a centre moves between frames and stays the same track
    warmup_frames: int = 5  # frames that only teach the background
    keep_missed: int = 5  # frames a track survives unseen (a person passing behind a pillar)
    threshold: float = 28.0  # grey levels of difference from the background that make foreground
    source: str = "camera"


@dataclass(frozen=True)
class Crossing:
    time_us: int
    direction: Direction
    track_id: int


@dataclass(frozen=True)
class FrameCount:
    """The camera counter's HeadCount for one frame."""

    time_us: int
    people: int
    crossings: tuple[Crossing, ...] = ()
    problem: str = ""
    ambiguous: bool = False
    source: str = "camera"

    @property
    def count(self) -> int:
        return self.people


@dataclass
class _Track:
    track_id: int
    centre: np.ndarray
    side: int  # -1 left of the line, +1 right, 0 not yet settled
    people: int = 1  # people the region holds now (walking abreast merges two into one region)
    missed: int = 0
    is_object: bool = False
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame, smoothed
    object_area: float = 0.0  # px, when last seen whole as an object (a box, a trolley)


@dataclass(frozen=True)
class _Region:
    centre: np.ndarray
    people: int
    ambiguous: bool
    is_object: bool
    area: float


@dataclass
class PeopleCounter:
    config: PeopleConfig
    _background: np.ndarray | None = field(default=None, init=False)
    _tracks: list[_Track] = field(default_factory=list, init=False)
    _next_id: int = field(default=0, init=False)
    _frames: int = field(default=0, init=False)

    def _relearn(self) -> None:
        self._background = None
        self._frames = 0
        self._tracks = []

    def update(self, time_us: int, frame: np.ndarray) -> FrameCount:
        source = self.config.source
        colour = _colour(frame)
        if colour is None:
            return FrameCount(time_us, 0, problem="unusable frame", source=source)
        if self._background is not None and colour.shape != self._background.shape:
            self._relearn()
            return FrameCount(time_us, 0, problem="frame size changed; relearning background", source=source)
        image = cv2.GaussianBlur(colour.astype(np.float32), (5, 5), 1.2)
        if self._background is None or self._frames < self.config.warmup_frames:
            self._background = image if self._background is None else 0.5 * (self._background + image)
            self._frames += 1
            return FrameCount(time_us, 0, problem="learning background", source=source)
        self._frames += 1
        self._relight(image)
        try:
            regions, moving, gain = self._regions(image)
        except cv2.error as error:  # a fault on one frame must not stop the portal's counting
            return FrameCount(time_us, 0, problem=f"frame rejected ({error.msg})", source=source)
        if regions is None:
            return FrameCount(
                time_us,
                0,
                problem="most of the scene changed at once; counting suspended",
                ambiguous=True,
                source=source,
            )
        crossings = self._track(regions, time_us)
        self._learn(image, moving, gain)
        people = [t for t in self._tracks if not t.is_object and t.missed == 0 and self._in_zone(t.centre)]
        ambiguous = any(r.ambiguous for r in regions if not r.is_object and self._in_zone(r.centre))
        return FrameCount(time_us, sum(t.people for t in people), tuple(crossings), ambiguous=ambiguous, source=source)

    def _relight(self, image: np.ndarray) -> None:
        """A light switched on or off changes the scene by more than a gain (saturation, an offset, the
        floor's paint unlike its tiles): the empty scene is taken afresh from this frame, except where
        the people being tracked are, which keep the old background scaled. Tracks and counts go on."""
        assert self._background is not None
        gain = self._gain(image)
        if abs(math.log(max(gain, 1e-3))) < math.log(RELIGHT_GAIN):
            return
        keep = np.zeros(image.shape[:2], np.uint8)
        radius = math.ceil(RELIGHT_RADIUS * math.sqrt(self.config.person_area_px))
        for track in self._tracks:
            if not track.is_object:
                cv2.circle(keep, (int(track.centre[0]), int(track.centre[1])), radius, 1, -1)
        self._background = np.where(keep[..., None] > 0, self._background * gain, image).astype(np.float32)

    def _gain(self, image: np.ndarray) -> float:
        """The light's change since the background: the median ratio over the scene (people are few)."""
        assert self._background is not None
        ratio = image[::4, ::4] / np.maximum(self._background[::4, ::4], 1.0)
        return float(np.median(ratio))

    def _regions(self, image: np.ndarray) -> tuple[list[_Region] | None, np.ndarray, float]:
        """The frame's foreground regions (None: most of the scene changed), its mask and the light's gain."""
        assert self._background is not None
        gain = self._gain(image)
        expected = self._background * gain
        # Brighter light raises both signal and noise: the threshold scales with it.
        limit = self.config.threshold * math.sqrt(max(1.0, gain))
        # Brightness, as a grey camera sees it, with its gaps closed wide (a trolley's grate, print on a box);
        # and colour, the largest difference of any channel: clothes as bright as the floor but of another
        # colour (green or purple on grey) are as foreground as dark ones, and grey alone loses them. Colour's
        # gaps are closed narrowly, so a person's colour does not join them to the trolley they push.
        grey = cv2.absdiff(cv2.transform(image, GREY_WEIGHTS), cv2.transform(expected, GREY_WEIGHTS))
        blue, green, red = cv2.split(cv2.absdiff(image, expected))
        colour = (cv2.max(cv2.max(blue, green), red) > limit).astype(np.uint8) * 255
        if cv2.countNonZero(colour) > MAX_CHANGED_SHARE * colour.size:
            return None, colour, gain
        mask = cv2.morphologyEx((grey > limit).astype(np.uint8) * 255, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
        colour = cv2.morphologyEx(colour, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask |= cv2.morphologyEx(colour, cv2.MORPH_CLOSE, np.ones((COLOUR_CLOSE, COLOUR_CLOSE), np.uint8))
        n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask)
        regions = []
        for i in range(1, n):
            area = stats[i, cv2.CC_STAT_AREA]
            share = area / self.config.person_area_px
            if share < self.config.min_share:
                continue
            x, y, w, h = stats[i, :4]
            contours, _ = cv2.findContours(
                (labels[y : y + h, x : x + w] == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            outline = max(contours, key=cv2.contourArea)
            rect = cv2.minAreaRect(outline)
            (_, _), (rw, rh), _ = rect
            # The outline runs through pixel centres: the pixels span one more in each direction (without
            # it, a small round person of one colour "filled" their rectangle and was taken for a box).
            fill = area / ((rw + 1.0) * (rh + 1.0))
            # Cut off by the frame's edge, a person's outline is straight there too: only what is
            # wholly in view can be told to be an object (fail-secure: otherwise it is a person).
            whole = x > 0 and y > 0 and x + w < mask.shape[1] and y + h < mask.shape[0]
            # And only what is large enough for a straight edge to be told from a round one: at a few
            # pixels across, a disc is as square as a box.
            large = min(rw, rh) + 1.0 >= OBJECT_MIN_SIDE_PX
            is_object = whole and large and fill >= OBJECT_FILL and share >= 0.5 and _straight_edged(outline, rect)
            # Two people abreast overlap into one region little larger than a person, but far wider.
            wide = max(rw, rh) > MERGE_WIDTH * math.sqrt(self.config.person_area_px)
            merged = (share >= MERGE_SHARE or wide) and not is_object
            people = 0 if is_object else _people_in(share, merged)
            regions.append(_Region(centroids[i], people, merged, is_object, float(area)))
        return regions, mask, gain

    def _learn(self, image: np.ndarray, moving: np.ndarray, gain: float) -> None:
        """Slowly follow the empty scene where nothing is, at the current light (`gain`, as `_regions` found it)."""
        assert self._background is not None
        quiet = (cv2.dilate(moving, np.ones((15, 15), np.uint8)) == 0).astype(np.uint8)
        target = (image / max(gain, 1e-3)).astype(np.float32)
        cv2.accumulateWeighted(target, self._background, 0.05, mask=quiet)  # 0.95 old + 0.05 new, where quiet

    def _in_zone(self, centre: np.ndarray) -> bool:
        if not self.config.zone:
            return True
        polygon = np.array(self.config.zone, dtype=np.float32).reshape(-1, 1, 2)
        return cv2.pointPolygonTest(polygon, (float(centre[0]), float(centre[1])), False) >= 0

    def _track(self, regions: list[_Region], time_us: int) -> list[Crossing]:
        crossings: list[Crossing] = []
        unmatched = list(range(len(regions)))
        # A region takes as many tracks as people it may hold: people who meet in one region go on
        # being tracked one by one.
        taken: dict[int, list[_Track]] = {}
        for track in sorted(self._tracks, key=lambda t: t.missed):
            guess = track.centre + track.velocity * (track.missed + 1)
            options = [i for i in range(len(regions)) if len(taken.get(i, [])) < max(1, regions[i].people)]
            distances = [
                min(float(np.linalg.norm(regions[i].centre - at)) for at in (guess, track.centre)) for i in options
            ]
            if not distances or min(distances) > self.config.max_step_px:
                track.missed += 1
                continue
            taken.setdefault(options[int(np.argmin(distances))], []).append(track)
        for index, tracks in taken.items():
            region = regions[index]
            unmatched.remove(index)
            if len(tracks) == 1:
                track = tracks[0]
                step = (region.centre - track.centre) / (track.missed + 1)
                track.velocity = 0.5 * track.velocity + 0.5 * step
                # An object seen whole stays one while its region does not grow (its outline can fray
                # over a floor of its own shade); grown, someone may have joined it: counted again.
                still_object = track.is_object and region.area <= OBJECT_GROWTH * track.object_area
                track.centre, track.is_object = region.centre, region.is_object or still_object
                track.people = 0 if track.is_object else region.people
                if region.is_object:  # its largest whole view: a frayed outline is smaller, never larger
                    track.object_area = max(track.object_area, region.area)
            else:
                # Met in one region: each walks on as they walked, and crosses the line on their own
                # (two meeting at the door from both sides are one 'in' and one 'out', not two of either).
                # A trolley being pushed stays an object; the people are what its area leaves.
                for track in tracks:
                    track.centre = track.centre + track.velocity * (track.missed + 1)
                    track.people = 0 if track.is_object else 1
                persons = [t for t in tracks if not t.is_object]
                if persons:
                    rest = region.area - sum(t.object_area for t in tracks if t.is_object)
                    share = rest / self.config.person_area_px
                    persons[0].people += max(0, _people_in(share, share >= MERGE_SHARE) - len(persons))
            for track in tracks:
                track.missed = 0
                # An object's side is followed too (it counts no crossing): should it turn out to be a
                # person later, only a crossing of their own counts.
                crossed = self._side_change(track, time_us)
                if not track.is_object:
                    crossings.extend(crossed)
        for i in list(unmatched):
            # A person unseen for a few frames (their clothes like the floor, a light just switched on)
            # walked on meanwhile: the track that lost them picks them up again, farther on, so a
            # crossing made while unseen still counts.
            region = regions[i]
            lost = [
                t
                for t in self._tracks
                if t.missed > 0
                and not t.is_object
                and not region.is_object
                and np.linalg.norm(region.centre - t.centre) <= self.config.max_step_px * (t.missed + 1)
            ]
            if not lost:
                continue
            track = min(lost, key=lambda t: float(np.linalg.norm(region.centre - t.centre)))
            track.centre, track.people, track.missed = region.centre, region.people, 0
            crossings.extend(self._side_change(track, time_us))
            unmatched.remove(i)
        for i in unmatched:
            region = regions[i]
            track = _Track(self._next_id, region.centre, 0, region.people, 0, region.is_object,
                           object_area=region.area if region.is_object else 0.0)
            self._next_id += 1
            self._side_change(track, time_us)
            self._tracks.append(track)
        self._tracks = [t for t in self._tracks if t.missed <= self.config.keep_missed]
        return crossings

    def _side_change(self, track: _Track, time_us: int) -> list[Crossing]:
        """One crossing per person the region holds, when its centre settles on the other side."""
        distance = self.config.line.side(track.centre)
        if abs(distance) < self.config.hysteresis_px:
            return []
        side = 1 if distance > 0 else -1
        previous, track.side = track.side, side
        if previous == 0 or previous == side:
            return []
        direction: Direction = "in" if side > 0 else "out"
        if track.people > 1:
            # Tracks lost in this merged region crossed with it: they must not count again on reappearing.
            for other in self._tracks:
                if other.missed and np.linalg.norm(other.centre - track.centre) < self.config.max_step_px:
                    other.side = side
        return [Crossing(time_us, direction, track.track_id)] * track.people


def _people_in(share: float, merged: bool) -> int:
    """People a region of `share` person areas may hold: a merged one at the most it can hold, never fewer
    than two."""
    return max(2, math.ceil(share - 0.35)) if merged else 1


def _straight_edged(outline: np.ndarray, rect: tuple) -> bool:  # type: ignore[type-arg]
    """The outline runs along its rotated rectangle's sides (a box, a trolley), not only touching them
    (people abreast, or a person half in view, can fill their rectangle as well)."""
    corners = cv2.boxPoints(rect).reshape(-1, 1, 2).astype(np.float32)
    points = outline.reshape(-1, 2).astype(np.float32)
    # Densify the outline: CHAIN_APPROX_SIMPLE keeps only the ends of straight runs.
    ends = np.roll(points, -1, axis=0)
    dense = np.concatenate(
        [np.linspace(a, b, max(2, int(np.hypot(*(b - a))) + 1)) for a, b in zip(points, ends, strict=True)]
    )
    near = [abs(cv2.pointPolygonTest(corners, (float(x), float(y)), True)) <= EDGE_TOLERANCE_PX for x, y in dense]
    return float(np.mean(near)) >= STRAIGHT_SHARE


def _colour(frame: np.ndarray) -> np.ndarray | None:
    """The frame as three channels (a grey camera's frame repeated in each)."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        return None
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        return frame if frame.shape[2] == 3 else cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return None


@dataclass
class CameraPeopleSource:
    """The camera counter as a PeopleSource: frames in (time, image), HeadCounts out."""

    frames: Iterable[tuple[int, np.ndarray]]
    config: PeopleConfig

    def counts(self) -> Iterator[FrameCount]:
        counter = PeopleCounter(self.config)
        for time_us, frame in self.frames:
            yield counter.update(time_us, frame)


def count_crossings(frames: Iterable[tuple[int, np.ndarray]], config: PeopleConfig) -> list[Crossing]:
    """All portal crossings in a frame sequence, in time order."""
    return [c for reading in CameraPeopleSource(frames, config).counts() for c in reading.crossings]

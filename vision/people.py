"""People passing a portal, seen by an overhead camera: background subtraction, blobs, line crossings.

A blob's size in nominal person areas gives the per-frame count (two people walking shoulder to
shoulder make one blob of twice the area); each blob is tracked by nearest centroid and a crossing is
counted when its centre changes side of the portal line by more than a small hysteresis band.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

Direction = Literal["in", "out"]
MAX_CHANGED_SHARE = 0.5  # more of the frame "moving" than this is a lighting change, not people


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
    person_area_px: float  # one person's blob area as this camera sees them
    zone: tuple[tuple[float, float], ...] = ()  # polygon where people are counted; () is the whole frame
    min_share: float = 0.35  # blobs smaller than this share of a person are noise or a limb
    hysteresis_px: float = 4.0
    max_step_px: float = 60.0  # furthest a centre moves between frames and stays the same track
    warmup_frames: int = 5  # frames that only teach the background model


@dataclass(frozen=True)
class Crossing:
    time_us: int
    direction: Direction
    track_id: int


@dataclass(frozen=True)
class FrameCount:
    time_us: int
    people: int
    crossings: tuple[Crossing, ...] = ()
    problem: str = ""


@dataclass
class _Track:
    track_id: int
    centre: np.ndarray
    side: int  # -1 left of the line, +1 right, 0 not yet settled
    people: int = 1  # people the blob holds now (walking abreast merges two into one blob)
    missed: int = 0


@dataclass
class PeopleCounter:
    config: PeopleConfig
    _subtractor: cv2.BackgroundSubtractor = field(init=False)
    _tracks: list[_Track] = field(default_factory=list, init=False)
    _next_id: int = field(default=0, init=False)
    _frames: int = field(default=0, init=False)
    _shape: tuple[int, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        self._relearn()

    def _relearn(self) -> None:
        self._subtractor = cv2.createBackgroundSubtractorMOG2(history=300, varThreshold=24, detectShadows=False)
        self._frames = 0
        self._tracks = []

    def _blobs(self, gray: np.ndarray) -> list[tuple[np.ndarray, int]] | None:
        """Foreground blobs with how many people each holds; None when most of the scene changed at once."""
        warming = self._frames < self.config.warmup_frames
        mask = self._subtractor.apply(gray, learningRate=-1 if warming else 0.002)
        if not warming and cv2.countNonZero(mask) > MAX_CHANGED_SHARE * mask.size:
            return None
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, _, stats, centroids = cv2.connectedComponentsWithStats(mask)
        found = []
        for i in range(1, n):
            share = stats[i, cv2.CC_STAT_AREA] / self.config.person_area_px
            if share >= self.config.min_share:
                found.append((centroids[i], max(1, round(share))))
        return found

    def _in_zone(self, centre: np.ndarray) -> bool:
        if not self.config.zone:
            return True
        polygon = np.array(self.config.zone, dtype=np.float32).reshape(-1, 1, 2)
        return cv2.pointPolygonTest(polygon, (float(centre[0]), float(centre[1])), False) >= 0

    def update(self, time_us: int, frame: np.ndarray) -> FrameCount:
        gray = _grey(frame)
        if gray is None:
            return FrameCount(time_us, 0, problem="unusable frame")
        if self._shape and gray.shape != self._shape:
            self._relearn()
            self._shape = gray.shape
            return FrameCount(time_us, 0, problem="frame size changed; relearning background")
        self._shape = gray.shape
        warming = self._frames < self.config.warmup_frames
        try:
            found = self._blobs(gray)
        except cv2.error as error:  # a fault on one frame must not stop the portal's counting
            self._relearn()
            return FrameCount(time_us, 0, problem=f"frame rejected ({error.msg}); relearning background")
        if found is None:
            self._relearn()
            return FrameCount(time_us, 0, problem="whole scene changed (lighting?); relearning background")
        self._frames += 1
        if warming:
            return FrameCount(time_us, 0, problem="learning background")
        crossings = self._track(found, time_us)
        return FrameCount(time_us, sum(k for c, k in found if self._in_zone(c)), tuple(crossings))

    def _track(self, found: list[tuple[np.ndarray, int]], time_us: int) -> list[Crossing]:
        crossings: list[Crossing] = []
        unmatched = list(range(len(found)))
        for track in self._tracks:
            if not unmatched:
                track.missed += 1
                continue
            distances = [float(np.linalg.norm(found[i][0] - track.centre)) for i in unmatched]
            best = int(np.argmin(distances))
            if distances[best] > self.config.max_step_px:
                track.missed += 1
                continue
            track.centre, people = found[unmatched.pop(best)]
            track.people = people
            track.missed = 0
            crossings.extend(self._side_change(track, time_us))
        for i in unmatched:
            track = _Track(self._next_id, found[i][0], 0, found[i][1])
            self._next_id += 1
            self._side_change(track, time_us)
            self._tracks.append(track)
        self._tracks = [t for t in self._tracks if t.missed <= 3]
        return crossings

    def _side_change(self, track: _Track, time_us: int) -> list[Crossing]:
        """One crossing per person the blob holds, when its centre settles on the other side."""
        distance = self.config.line.side(track.centre)
        if abs(distance) < self.config.hysteresis_px:
            return []
        side = 1 if distance > 0 else -1
        previous, track.side = track.side, side
        if previous == 0 or previous == side:
            return []
        direction: Direction = "in" if side > 0 else "out"
        if track.people > 1:
            # Tracks lost in this merged blob crossed with it: they must not count again on reappearing.
            for other in self._tracks:
                if other.missed and np.linalg.norm(other.centre - track.centre) < self.config.max_step_px:
                    other.side = side
        return [Crossing(time_us, direction, track.track_id)] * track.people


def _grey(frame: np.ndarray) -> np.ndarray | None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        return None
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    return None


def count_crossings(frames: Iterable[tuple[int, np.ndarray]], config: PeopleConfig) -> list[Crossing]:
    """All portal crossings in a frame sequence, in time order."""
    counter = PeopleCounter(config)
    crossings: list[Crossing] = []
    for time_us, frame in frames:
        crossings.extend(counter.update(time_us, frame).crossings)
    return crossings

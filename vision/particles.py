"""Shred particle size from a tray photograph, judged against a named security level.

The rule of destruction.md: every particle's area <= the level's maximum area and its width (and, for
NSA/CSS 02-01, length) <= the level's maximum. Each particle is measured with its uncertainty (edge
position, scale at its place on the tray) and the lot passes only when every particle is within the
limits by twice that uncertainty. Anything that keeps the measurement from being trustworthy makes the
verdict 'cannot_verify', never 'pass': no or inconsistent markers, too coarse a resolution, a region
that is neither clearly tray nor clearly paper, a piece too faint to measure, pieces lying on each
other (seams, no clean cut) when their union is over the limit, pieces meeting end to side that would
pass only if split without proof of two pieces, pieces cut off at the edge, a particle too close to the
limit to call. 'fail' means a particle was measured over the limit; touching pieces that the image does
not show to be two are measured whole (when in doubt, the union), so their union over the limit fails.
`analyse_frames` judges one lot from several frames of its tray (pieces spread apart, another shot);
`judge_frames` does the same from the frames' reports, for a caller that has analysed each frame already.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import cv2
import numpy as np

from vision.calibration import Calibration, MarkerBoard, calibrate
from vision.edges import edge_areas, mask_hidden
from vision.images import ImageInput, load_colour
from vision.segmentation import (
    Components,
    MedialAxis,
    Split,
    components,
    corner_contact,
    medial_axis,
    piece_mask,
    roi,
    split,
    touching_parts,
    two_strips,
    widest_px,
)
from vision.shred_levels import LEVELS, SecurityLevel, find_level
from vision.tray import Contrast, TrayFit, fit_tray

Verdict = Literal["pass", "fail", "cannot_verify"]

# The level's width limit must span this many pixels: an edge is only known to about half a pixel, so
# at 8 px the width is certain to ~12 %.
MIN_PX_ACROSS_LIMIT = 8.0
# A large frame is first measured reduced while the limit still spans this many pixels (at most
# MAX_REDUCTION times): smaller frames are quick at full resolution.
WORK_PX_ACROSS_LIMIT = 9.0
MAX_REDUCTION = 3
REDUCE_ABOVE_PX = 4_000_000
MAX_FOREGROUND_SHARE = 0.6  # more "particle" than this means no contrasting tray is in view
MIN_TRAY_SHARE = 0.25  # less of the view matching the tray colour: this is no tray
COVERAGE_K = 2.0  # a particle passes when value + 2 sigma is within the limit
STRAIGHT = (0.88, 1.12)  # pixel count over the moment rectangle: a straight, solid piece
FAINT_SHARE = 2.0  # a particle's own level below this many times the particle threshold is too faint
DUST_SHARE = 0.01  # a fleck under 1 % of the level's area cannot break it: dust, not a particle ...
DUST_MAX_MM2 = 0.3  # ... and under this it is dust whatever the level
PRINT_GAP_MM = 0.3  # a gap this narrow inside a piece is a line of print, not tray between two pieces
CORNER_CONFIDENCE = 0.5  # a T's stem shown touching the bar only at a corner this surely: two pieces
# Regions of unclassifiable pixels smaller than this share of the level's area (and 24 px) are noise.
UNSURE_SHARE = 0.15
# Pieces lying on each other, not split: they may hide up to this share of their area under each other
# (two strips crossing at 35 degrees hide a quarter of it).
HIDDEN = 0.35


@dataclass(frozen=True)
class TraySetup:
    board: MarkerBoard = field(default_factory=MarkerBoard)
    # How the media differ from the tray: 'lighter' (light paper, dark tray), 'darker', or 'either'.
    particles: Contrast = "lighter"
    empty_tray: np.ndarray | None = field(default=None, repr=False, compare=False)  # same camera, no shred


@dataclass(frozen=True)
class _Measured:
    """Particles measured in millimetres, one row each, with 1-sigma uncertainties."""

    area: np.ndarray
    width: np.ndarray
    length: np.ndarray
    area_sigma: np.ndarray
    width_sigma: np.ndarray
    length_sigma: np.ndarray
    centres_px: np.ndarray
    outlines: tuple[np.ndarray | None, ...]  # contour in image pixels where already known


@dataclass(frozen=True, eq=False)
class ParticleReport:
    verdict: Verdict
    reason: str
    level: str
    count: int = 0
    max_area_mm2: float = 0.0
    p95_area_mm2: float = 0.0
    median_area_mm2: float = 0.0
    max_width_mm: float = 0.0
    max_length_mm: float = 0.0
    offenders: int = 0  # measured over the limit
    near_limit: int = 0  # within the limit, but not by twice their uncertainty
    ambiguous: int = 0  # regions that could not be classified or separated with confidence
    # Of them: regions of paper of unknown extent (neither clearly tray nor clearly paper, or too faint to
    # measure), the first `unclassified` of `ambiguous_outlines`; the rest (`touched`) are pieces touching or
    # lying on each other, each region measured whole (`touching_areas_mm2`) and not among the particles.
    unclassified: int = 0
    touched: int = 0
    angled: int = 0  # of the touched: pieces touching at an angle, each within the level alone
    clipped: int = 0
    mm_per_px: float = 0.0
    markers_found: int = 0
    level_confirmed: bool = False  # False: the level's figures were not checked against the standard
    reduction: int = 1  # the image was measured reduced this many times (its uncertainty says so)
    areas_mm2: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    area_sigma_mm2: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    widths_mm: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    lengths_mm: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    centres_mm: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    # Each particle: measured apart from a piece it touched (spreading the touching pieces may move it).
    split_off: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)
    split_areas_mm2: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # each such region whole
    touching_areas_mm2: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    touching_most_mm2: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # pieces apart, at most
    offender_outlines: tuple[np.ndarray, ...] = field(default=(), repr=False)
    near_limit_outlines: tuple[np.ndarray, ...] = field(default=(), repr=False)
    ambiguous_outlines: tuple[np.ndarray, ...] = field(default=(), repr=False)
    marker_outlines: tuple[np.ndarray, ...] = field(default=(), repr=False)
    # Where the frame shows paper: the outline of every particle and region found (holes filled).
    paper_outlines: tuple[np.ndarray, ...] = field(default=(), repr=False)
    px_to_mm: np.ndarray | None = field(default=None, repr=False)  # the frame's homography, when calibrated

    @property
    def marker_corners_px(self) -> np.ndarray | None:
        return self.marker_outlines[0] if self.marker_outlines else None

    @property
    def unknown_outlines(self) -> tuple[np.ndarray, ...]:
        return self.ambiguous_outlines[: self.unclassified]

    @property
    def touching_outlines(self) -> tuple[np.ndarray, ...]:
        return self.ambiguous_outlines[self.unclassified :]

    def draw_evidence(self, image: np.ndarray) -> np.ndarray:
        """A BGR copy of `image`: offenders red, unclassifiable regions orange, near-limit magenta,
        markers blue, and the verdict."""
        canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if canvas.dtype != np.uint8:
            canvas = cv2.normalize(canvas, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        thickness = max(2, canvas.shape[1] // 800)
        for outlines, colour in (
            (self.ambiguous_outlines, (0, 140, 255)),
            (self.near_limit_outlines, (255, 0, 255)),
            (self.offender_outlines, (0, 0, 255)),
        ):
            cv2.drawContours(canvas, [np.round(o).astype(np.int32) for o in outlines], -1, colour, thickness)
        for quad in self.marker_outlines:
            cv2.polylines(canvas, [np.round(quad).astype(np.int32)], True, (255, 0, 0), thickness)
        banner = f"{self.level} {self.verdict}: {self.reason}"
        scale = canvas.shape[1] / 1600
        cv2.putText(
            canvas,
            banner,
            (10, int(40 * scale) + 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 255) if self.verdict != "pass" else (0, 200, 0),
            thickness,
        )
        return canvas

    def evidence_png(self, image: np.ndarray) -> bytes:
        ok, data = cv2.imencode(".png", self.draw_evidence(image))
        return data.tobytes() if ok else b""


def _cannot(level: str, reason: str, calibration: Calibration | None = None, **extra: object) -> ParticleReport:
    mm = calibration.mm_per_px if calibration else 0.0
    quads = tuple(c for _, c in calibration.found) if calibration else ()
    return ParticleReport(
        "cannot_verify",
        f"cannot verify: {reason}",
        level,
        mm_per_px=mm,
        marker_outlines=quads,
        px_to_mm=calibration.homography if calibration else None,
        **extra,  # type: ignore[arg-type]
    )


def analyse(
    image: ImageInput,
    level: str,
    setup: TraySetup = TraySetup(),
    levels: Mapping[str, SecurityLevel] = LEVELS,
) -> ParticleReport:
    """Measure every particle on the tray and judge the lot against `level` (e.g. 'P-5', 'NSA-02-01').

    `levels` is the table to look the level up in (see `vision.shred_levels.levels_with` for site additions).
    """
    spec = find_level(level, levels)
    if spec is None:
        return _cannot(level, f"unknown security level {level!r}")
    if not spec.measurable:
        return _cannot(spec.name, f"level {spec.name} is a damage level judged by eye, not by particle size")
    loaded = load_colour(image)
    if loaded.image is None:
        return _cannot(spec.name, loaded.problem)
    try:
        return _analyse(loaded.image, spec, setup)
    except Exception as error:  # the controller's boundary: any fault is a 'cannot_verify', never a raise
        return _cannot(spec.name, f"analysis failed ({type(error).__name__}: {error})")


# Frames of one tray agree that a particle did not move when it lies within this of its counterpart,
# with an area within this share of it.
SAME_PLACE_MM = 0.5
SAME_AREA = 0.1
CLEAR_OF_MM = 1.0  # a region's outline grown by this in another frame: what lies there is judged with it
# A frame that passes on its own supersedes an earlier frame's touching pieces (they were spread apart)
# only when the rest of the tray lay still and their paper is found again, spread, not moved or swapped:
MOVED_SHARE = 0.1  # at most this share of the earlier frame's clear pieces moved (spreading moves a few)
PAPER_KEPT = 0.95  # the pieces new to the later frame hold at least this share of the touching paper ...
# ... and at most this multiple of the most the touching pieces may hold (`touching_most_mm2`, measurement
# noise): more is paper added, not the same lot.
PAPER_ADDED = 1.1
LEFT_THERE = 0.2  # of each touching region, still covered by paper where it lay: part of a clump was moved
PART_OF = 0.8  # a new piece this large a share of a touching region: the clump was moved whole, not spread


@dataclass(frozen=True)
class _Block:
    """Why frame `base` does not verify the lot: `why`, and the regions of frame `frame` left uncertain
    (`unknown_only`: they are all of unknown extent)."""

    base: int
    base_passes: bool
    frame: int
    why: str
    outlines: tuple[np.ndarray, ...]
    unknown_only: bool


def analyse_frames(
    images: Sequence[ImageInput],
    level: str,
    setup: TraySetup = TraySetup(),
    levels: Mapping[str, SecurityLevel] = LEVELS,
) -> ParticleReport:
    """One lot judged from several frames of the same tray, in the order they were taken (the operator
    spread touching pieces apart, or the camera took another shot).

    A particle measured over the limit in any frame fails the lot, and one within its uncertainty of the
    limit in any frame keeps it from passing (another frame's luckier measurement of it is no proof).
    Otherwise the lot passes on one frame when every frame's uncertain regions are accounted for:
    - a region of unknown extent (neither clearly tray nor clearly paper, too faint) in one frame is
      measured clearly in another frame of the tray unmoved (every particle of both in the same place
      with the same area, nothing outlined near it there);
    - pieces touching in one frame were spread apart in a later frame that passes on its own: that frame
      supersedes them when the earlier frame held no paper of unknown extent, its clear pieces lie where
      they lay (a few may have moved), the pieces new to the later frame hold the touching paper (not
      less, not much more), part of each touching region is still where it lay, and no new piece is
      nearly as large as a touching region (moved whole).
    Anything else stays cannot_verify, outlined, the reason naming the frame and what was not shown."""
    return judge_frames([analyse(image, level, setup, levels) for image in images], level)


def judge_frames(reports: Sequence[ParticleReport], level: str) -> ParticleReport:
    """`analyse_frames` from the reports of each frame analysed on its own (`analyse`, in frame order)."""
    if not reports:
        return _cannot(level, "no frames")
    n = len(reports)
    failed = [(i, r) for i, r in enumerate(reports) if r.verdict == "fail"]
    if failed:
        i, report = failed[0]
        return replace(report, reason=f"frame {i + 1} of {n}: {report.reason}")
    near = [(i, r) for i, r in enumerate(reports) if r.near_limit]
    if near:
        i, report = near[0]
        return replace(
            report,
            verdict="cannot_verify",
            reason=f"cannot verify: frame {i + 1} of {n}: {report.near_limit} particle(s) within"
            f" the measurement uncertainty of {report.level}",
        )
    blocks: list[_Block] = []
    for k, base in enumerate(reports):
        verified = _verifies(k, reports)
        if isinstance(verified, str):
            return replace(
                base,
                verdict="pass",
                reason=f"frame {k + 1} of {n}: all {base.count} particles within {base.level} with margin{verified}",
                ambiguous=0,
                unclassified=0,
                ambiguous_outlines=(),
            )
        if verified is not None:
            blocks.append(verified)
    if not blocks:
        return replace(reports[0], reason=f"frame 1 of {n}: {reports[0].reason}")
    # The most telling: why the last frame that passes on its own does not verify the lot; else the frame
    # with the fewest regions left uncertain.
    block = min(blocks, key=lambda b: (not b.base_passes, -b.base if b.base_passes else len(b.outlines)))
    report = reports[block.frame]
    unknown = block.outlines if block.unknown_only else report.unknown_outlines
    return replace(
        report,
        verdict="cannot_verify",
        reason=f"cannot verify: {block.why}",
        ambiguous=len(block.outlines),
        unclassified=len(unknown),
        ambiguous_outlines=block.outlines,
    )


def _verifies(k: int, reports: Sequence[ParticleReport]) -> str | _Block | None:
    """Whether the lot passes on frame `k` (the others accounted for): what the pass's reason adds (str),
    or why not (a _Block); None when the frame shows nothing to judge from (no markers, no particles)."""
    n = len(reports)
    base = reports[k]
    if base.px_to_mm is None or base.count == 0:
        return None
    if base.clipped or base.touched:
        # Pieces cut off or touching in it: only a later frame that passes on its own can account for them.
        why = f"frame {k + 1} of {n}: {base.reason.removeprefix('cannot verify: ')}"
        return _Block(k, False, k, why, base.ambiguous_outlines, False)
    notes = []
    alone = base.verdict == "pass"
    if not alone:
        left = tuple(
            outline
            for outline in base.unknown_outlines
            if not any(_clear_in(base, outline, other) for j, other in enumerate(reports) if j != k)
        )
        if left:
            why = (
                f"frame {k + 1} of {n}: {len(left)} region(s) uncertain in it and not measured clearly in another"
                " frame of the tray unmoved"
            )
            return _Block(k, False, k, why, left, True)
        notes.append(f"its {base.unclassified} uncertain region(s) measured clearly in another frame unmoved")
    for j, other in enumerate(reports):
        if j == k or other.verdict == "pass":
            continue
        unknown_clear = not other.clipped and all(_clear_in(other, o, base) for o in other.unknown_outlines)
        if not other.touched and unknown_clear:
            if other.unclassified:
                notes.append(f"the {other.unclassified} uncertain region(s) of frame {j + 1} measured clearly in it")
            continue
        if not other.touched:
            why = (
                f"frame {j + 1} of {n}: {other.unclassified + other.clipped} region(s) of unknown extent in it not"
                f" measured clearly in frame {k + 1} with the tray unmoved (the tray moved, or another lot)"
            )
            return _Block(k, alone, j, why, other.ambiguous_outlines, True)
        if not alone or j > k:
            why = (
                f"frame {j + 1} of {n}: {other.reason.removeprefix('cannot verify: ')}; no later frame that passes"
                " on its own shows them spread apart, nor another frame of the tray unmoved measures them clearly"
            )
            return _Block(k, alone, j, why, other.ambiguous_outlines, False)
        not_spread = _not_superseded(other, base)
        if not_spread:
            why = f"frame {k + 1} of {n} passes on its own but does not supersede frame {j + 1}: {not_spread}"
            return _Block(k, alone, j, why, other.ambiguous_outlines, False)
        notes.append(f"the {other.touched} touching region(s) of frame {j + 1} spread apart in it")
    return "".join(f"; {note}" for note in notes)


def _not_superseded(earlier: ParticleReport, later: ParticleReport) -> str:
    """Why `later` (a frame that passes on its own) does not show `earlier`'s touching pieces spread apart,
    the rest of the tray as it lay; '' when it does."""
    if earlier.unclassified or earlier.clipped or earlier.px_to_mm is None or later.px_to_mm is None:
        return "that frame held paper of unknown extent (unclassified, too faint or cut off)"
    if not earlier.count or not later.count:
        return "no clear pieces in both to show the rest of the tray lay still"
    # Its clear lone pieces where they lay: each matched to the nearest of the later frame's; in place when
    # its area is the same too (another frame's measurement of a small piece may differ by more: moved).
    # Pieces measured apart from one they touched are spread too: they are paper to find again.
    lone = np.flatnonzero(~earlier.split_off)
    if not len(lone):
        return "no clear lone pieces in it to show the rest of the tray lay still"
    gaps = np.linalg.norm(earlier.centres_mm[lone, None, :] - later.centres_mm[None, :, :], axis=2)
    nearest = gaps.argmin(axis=1)
    there = gaps[np.arange(len(lone)), nearest] <= SAME_PLACE_MM
    areas = earlier.areas_mm2[lone]
    stayed = there & (np.abs(later.areas_mm2[nearest] - areas) <= SAME_AREA * areas)
    moved = len(lone) - int(stayed.sum())
    if not stayed.any() or moved > MOVED_SHARE * len(lone):
        return f"{moved} of its {len(lone)} clear lone pieces are not where they lay (another tray, or stirred)"
    # The paper of its touching pieces (and of those measured apart) found again: in the pieces new to the
    # later frame (none of its lone pieces where they lie), less the lone pieces that left their place.
    new = np.ones(later.count, dtype=bool)
    new[nearest[there]] = False
    gone = float(areas[~there].sum())
    found = float(later.areas_mm2[new].sum()) - gone
    least = float(earlier.touching_areas_mm2.sum() + earlier.split_areas_mm2.sum())
    if found < PAPER_KEPT * least:
        return f"only {found:.1f} of its {least:.1f} mm² of touching paper found again (pieces taken away)"
    # A lone 'piece' that left its place may have been pieces touching, within the limits together:
    # spread, they show what they hid of each other.
    split_apart = float(earlier.areas_mm2[earlier.split_off].sum())
    most = PAPER_ADDED * (float(earlier.touching_most_mm2.sum()) + split_apart) + HIDDEN * gone
    if found > most:
        return f"{found:.1f} mm² of new paper where its touching pieces hold {most:.1f} mm² at most (paper added)"
    largest = float(later.areas_mm2[new].max()) if new.any() else 0.0
    for outline, area in zip(earlier.touching_outlines, earlier.touching_areas_mm2, strict=True):
        if largest >= PART_OF * area:
            return (
                f"a new piece of {largest:.1f} mm² for a touching region of {area:.1f} mm²"
                " (the clump moved whole, not spread)"
            )
        if _covered(earlier, outline, later) < LEFT_THERE:
            return "nothing is left where one of its touching regions lay (moved whole or taken away)"
    return ""


def _covered(earlier: ParticleReport, outline: np.ndarray, later: ParticleReport) -> float:
    """The share of a region outlined in `earlier` that `later` shows covered by paper."""
    assert later.px_to_mm is not None
    there = cv2.perspectiveTransform(
        _in_mm(earlier, outline).reshape(-1, 1, 2).astype(np.float64), np.linalg.inv(later.px_to_mm)
    ).reshape(-1, 2)
    x0, y0 = np.floor(there.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(there.max(axis=0)).astype(int) + 2
    region = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(region, [np.round(there - (x0, y0)).astype(np.int32).reshape(-1, 1, 2)], 1)
    paper = np.zeros_like(region)
    for contour in later.paper_outlines:
        cx, cy, cw, ch = cv2.boundingRect(contour.reshape(-1, 1, 2))
        if cx < x1 and cy < y1 and cx + cw > x0 and cy + ch > y0:
            cv2.fillPoly(paper, [(contour - (x0, y0)).astype(np.int32).reshape(-1, 1, 2)], 1)
    total = int(region.sum())
    return float((region & paper).sum()) / total if total else 0.0


def _in_mm(report: ParticleReport, outline: np.ndarray) -> np.ndarray:
    assert report.px_to_mm is not None
    points = outline.reshape(-1, 1, 2).astype(np.float64)
    return cv2.perspectiveTransform(points, report.px_to_mm).reshape(-1, 2).astype(np.float32)


def _inside(polygon_mm: np.ndarray, points_mm: np.ndarray, grow_mm: float) -> np.ndarray:
    """Which points lie inside the polygon or within `grow_mm` of it."""
    contour = polygon_mm.reshape(-1, 1, 2)
    return np.array(
        [cv2.pointPolygonTest(contour, (float(x), float(y)), True) > -grow_mm for x, y in points_mm], dtype=bool
    )


def _clear_in(report: ParticleReport, outline: np.ndarray, other: ParticleReport) -> bool:
    """Whether `other` (a frame of the same tray) measures clearly what `report` outlined as uncertain,
    the tray unmoved between them."""
    if other.px_to_mm is None or other.verdict == "fail" or other.near_limit or other.clipped or other.count == 0:
        return False
    region = _in_mm(report, outline)
    # Nothing outlined in the other frame anywhere near the region: what lies there is measured clearly.
    for theirs in other.ambiguous_outlines:
        points = _in_mm(other, theirs)
        if _inside(region, points, CLEAR_OF_MM).any() or _inside(points, region, CLEAR_OF_MM).any():
            return False
    return _unmoved(report, other)


def _unmoved(a: ParticleReport, b: ParticleReport) -> bool:
    """Every particle clear in both frames (away from either's uncertain regions) has its counterpart
    in the other in the same place with the same area."""

    def clear(r: ParticleReport, other: ParticleReport) -> np.ndarray:
        keep = np.ones(r.count, dtype=bool)
        for source in (r, other):
            for outline in source.ambiguous_outlines:
                keep &= ~_inside(_in_mm(source, outline), r.centres_mm, CLEAR_OF_MM)
        return keep

    for one, two in ((a, b), (b, a)):
        mine = clear(one, two)
        if not mine.any():
            return False
        gaps = np.linalg.norm(one.centres_mm[mine, None, :] - two.centres_mm[None, :, :], axis=2)
        nearest = gaps.argmin(axis=1)
        areas = one.areas_mm2[mine]
        same = (gaps[np.arange(len(areas)), nearest] <= SAME_PLACE_MM) & (
            np.abs(two.areas_mm2[nearest] - areas) <= SAME_AREA * areas
        )
        if not same.all():
            return False
    return True


def _limits(spec: SecurityLevel) -> np.ndarray:
    return np.array(
        [spec.max_area_mm2 or np.inf, spec.max_width_mm or np.inf, spec.max_length_mm or np.inf], dtype=np.float64
    )


def _analyse(colour: np.ndarray, spec: SecurityLevel, setup: TraySetup) -> ParticleReport:
    gray = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    calibration = calibrate(gray, setup.board)
    if calibration.problem:
        return _cannot(spec.name, calibration.problem)
    smallest_limit = min(v for v in (spec.max_width_mm, np.sqrt(spec.max_area_mm2 or 0.0)) if v is not None)
    across = smallest_limit / calibration.mm_per_px
    if across < MIN_PX_ACROSS_LIMIT:
        return _cannot(
            spec.name, f"resolution {calibration.mm_per_px:.3f} mm/px too coarse for {spec.name}", calibration
        )
    # Where the limit spans many pixels, the tray is first measured at a reduced resolution, with the
    # uncertainty of that resolution: a lot within the limits by that margin passes, one measured over
    # them fails. Only a lot held up by particles near the limit is measured again at full resolution.
    factor = int(min(MAX_REDUCTION, max(1.0, across // WORK_PX_ACROSS_LIMIT)))
    if factor > 1 and gray.size > REDUCE_ABOVE_PX:
        h, w = gray.shape
        size = (w // factor, h // factor)
        crop = (slice(0, size[1] * factor), slice(0, size[0] * factor))
        small = cv2.resize(colour[crop], size, interpolation=cv2.INTER_AREA)
        empty = setup.empty_tray
        if empty is not None and empty.shape == colour.shape:
            empty = cv2.resize(empty[crop], size, interpolation=cv2.INTER_AREA)
        quick = _measure_tray(small, spec, replace(setup, empty_tray=empty), calibration.scaled(factor))
        near_only = quick.verdict == "cannot_verify" and quick.near_limit and not (quick.ambiguous or quick.clipped)
        if not near_only:
            return _in_full_pixels(quick, factor, calibration)
    return _measure_tray(colour, spec, setup, calibration)


def _in_full_pixels(report: ParticleReport, factor: int, calibration: Calibration) -> ParticleReport:
    """A report made on an image reduced `factor` times, its outlines in the full image's pixels."""

    def up(outlines: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        return tuple(np.round(o * factor + (factor - 1) / 2).astype(np.int32) for o in outlines)

    return replace(
        report,
        mm_per_px=calibration.mm_per_px,
        reduction=factor,
        offender_outlines=up(report.offender_outlines),
        near_limit_outlines=up(report.near_limit_outlines),
        ambiguous_outlines=up(report.ambiguous_outlines),
        paper_outlines=up(report.paper_outlines),
        marker_outlines=tuple(c for _, c in calibration.found),
        px_to_mm=calibration.homography,
    )


def _measure_tray(
    colour: np.ndarray, spec: SecurityLevel, setup: TraySetup, calibration: Calibration
) -> ParticleReport:
    """Every particle of the tray in `colour` (whatever its resolution: `calibration` is for it), judged."""
    shape = colour.shape[:2]
    zone = calibration.marker_zone_mask(shape)
    q = setup.board.quiet_zone
    ring = calibration.tray_ring_mask(shape, q + 0.1, q + 0.5)
    smooth = cv2.blur(colour, (3, 3))
    tray = fit_tray(smooth, ring, zone, setup.particles, setup.empty_tray)
    if tray.problem:
        return _cannot(spec.name, f"no contrasting tray in view ({tray.problem})", calibration)
    if tray.tray_share < MIN_TRAY_SHARE:
        return _cannot(
            spec.name, f"no contrasting tray in view ({tray.tray_share:.0%} of the view matches the tray)", calibration
        )
    cut = zone.copy()
    cut[0, :] = cut[-1, :] = 255
    cut[:, 0] = cut[:, -1] = 255
    bridge = int(np.ceil(PRINT_GAP_MM / 2 / calibration.mm_per_px))
    dust = min(DUST_SHARE * (spec.max_area_mm2 or 0.0), DUST_MAX_MM2) / calibration.mm_per_px**2
    found = components(tray.distance, tray.particle_level, cut, bridge, dust)
    if cv2.countNonZero(found.filled) > MAX_FOREGROUND_SHARE * found.filled.size:
        return _cannot(spec.name, "no contrasting tray in view (most of the view differs from the tray)", calibration)
    mm2_per_px = calibration.mm_per_px**2
    unsure = _unclassified(tray, found, zone, ring, max(24.0, UNSURE_SHARE * (spec.max_area_mm2 or 1e9) / mm2_per_px))
    if found.n == 0:
        return _cannot(
            spec.name,
            "no particles found on the tray",
            calibration,
            ambiguous=len(unsure),
            unclassified=len(unsure),
            ambiguous_outlines=_pixels(unsure),
        )
    return _judge(colour, spec, calibration, tray, found, unsure)


def _unclassified(
    tray: TrayFit, found: Components, zone: np.ndarray, ring: np.ndarray, min_px: float
) -> tuple[np.ndarray, ...]:
    """Outlines (image pixels) of regions that are neither clearly tray nor clearly a particle.

    Judged at the scale of the smallest region that matters (`min_px`): the distance is averaged over
    windows of that size, so the tray's own texture averages out while a faint piece, or a patch of
    glare, stays above the tray's spread. The blurred rim of every particle is excluded."""
    h, w = tray.distance.shape
    half = (max(1, w // 2), max(1, h // 2))
    distance = cv2.resize(tray.distance, half, interpolation=cv2.INTER_AREA)
    # Only clearly visible particles are excused: faint ones are part of what cannot be classified.
    confident = np.zeros(found.n + 1, np.uint8)
    confident[1:][found.level >= FAINT_SHARE * tray.particle_level] = 255
    particles = confident[cv2.resize(found.labels, half, interpolation=cv2.INTER_NEAREST)]
    near = cv2.dilate(particles, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    valid = ((near == 0) & (cv2.resize(zone, half, interpolation=cv2.INTER_NEAREST) == 0)).astype(np.float32)
    side = max(3, int(np.sqrt(min_px / 4.0)))
    weight = cv2.blur(valid, (side, side))
    mean = cv2.blur(distance * valid, (side, side)) / np.maximum(weight, 1e-3)
    usable = (weight > 0.5) & (valid > 0)
    if not usable.any():
        return ()
    # The tray's own spread at this scale, from the ring beside the markers (tray by construction;
    # median and MAD, so a piece lying there does not raise it).
    sample = mean[(cv2.resize(ring, half, interpolation=cv2.INTER_NEAREST) > 0) & usable]
    if sample.size < 20:
        sample = mean[usable]
    centre = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - centre)))
    level = centre + max(5.0 * spread, 2.0)
    unsure = ((mean > level) & usable).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(unsure, connectivity=8)
    outlines = []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] * 4 < min_px:
            continue
        x, y, bw, bh = stats[i, :4]
        sub = (labels[y : y + bh, x : x + bw] == i).astype(np.uint8)
        contours, _ = cv2.findContours(sub, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        outlines += [(c.reshape(-1, 2).astype(np.float64) + np.array([x, y])) * 2.0 for c in contours]
    return tuple(outlines)


def _sigma_edge(level: np.ndarray) -> np.ndarray:
    """Edge position uncertainty (px): about a third of a pixel on good contrast, more on faint paper."""
    return 0.3 + 12.0 / np.maximum(level, 1.0)


def _measure_moments(
    found: Components, distance: np.ndarray, visible: float, calibration: Calibration
) -> tuple[_Measured, np.ndarray]:
    """Every particle from its pixel moments and the coverage of its edges (`distance`: from the tray
    model; `visible`: the least distance that stands out from the tray's texture): exact for straight
    pieces; `straight` says which are."""
    centres = found.centroid
    jac = calibration.jacobians(centres)
    det = np.abs(np.linalg.det(jac))
    vx, vy, cxy = found.cov[:, 0], found.cov[:, 1], found.cov[:, 2]
    mean = (vx + vy) / 2
    diff = np.sqrt(((vx - vy) / 2) ** 2 + cxy**2)
    lam1, lam2 = mean + diff, np.maximum(mean - diff, 0.0)
    theta = 0.5 * np.arctan2(2 * cxy, vx - vy)
    e1 = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    # A pixel has its own extent: the moments of a solid band of n pixels are (n² - 1) / 12.
    length_px = np.sqrt(12 * lam1 + 1)
    width_px = np.sqrt(12 * lam2 + 1)
    stretch1 = np.linalg.norm(np.einsum("nij,nj->ni", jac, e1), axis=1)
    along_x = np.abs(e1[:, 0]) >= np.abs(e1[:, 1])
    slant = np.minimum(np.abs(e1[:, 0]), np.abs(e1[:, 1]))
    by_edges, hidden_px = edge_areas(
        distance, found.labels, found.counted, found.bbox, found.level, along_x, slant, width_px, float(visible)
    )
    area_px = np.where(by_edges >= 0, by_edges, found.area_px)
    area = area_px * det
    length = length_px * stretch1
    rect = found.area_px / np.maximum(length_px * width_px, 1.0)
    straight = (rect >= STRAIGHT[0]) & (rect <= STRAIGHT[1])
    # A piece that is not a straight strip (bent, notched, tapered): its widest inscribed disc bounds
    # its width from above, whatever its shape; pieces within the limit by that bound need no closer look.
    width = area / np.maximum(length, 1e-9)
    for i in np.flatnonzero(~straight):
        width[i] = widest_px(found, int(i)) * np.sqrt(det[i])
    measured = _uncertain(found.level, area, width, length, length_px + width_px, det, calibration, centres)
    # What the area may have left out (print at the edge reads like the blurred edge) widens its
    # uncertainty: a printed piece passes only if it would pass with all of that counted.
    # A blurred edge leaves about a pixel's band out anyway; only more than that is print.
    extra = np.maximum(found.left_out_px - 2 * (length_px + width_px), 0.0) * det
    # And on a tray that print cannot be told from, a line of text along an edge leaves no trace but the
    # gaps between its words: what lies between the edge and the line they reach (about the edge's scatter
    # on a clean edge) counts the same way.
    extra += hidden_px * det
    return _allowing(measured, extra), straight


def _allowing(measured: _Measured, hidden_mm2: np.ndarray | float) -> _Measured:
    """The measurement with paper its image may hide (mm²) in its uncertainty: it passes only if it
    would pass with all of that counted."""
    return replace(measured, area_sigma=measured.area_sigma + hidden_mm2 / COVERAGE_K)


def _uncertain(
    level: np.ndarray,
    area: np.ndarray,
    width: np.ndarray,
    length: np.ndarray,
    half_perimeter_px: np.ndarray,
    det: np.ndarray,
    calibration: Calibration,
    centres: np.ndarray,
    outlines: tuple[np.ndarray | None, ...] | None = None,
    rel: np.ndarray | None = None,
) -> _Measured:
    edge = _sigma_edge(level)
    rel = calibration.scale_uncertainty(centres) if rel is None else rel
    mm = np.sqrt(det)
    return _Measured(
        area=area,
        width=width,
        length=length,
        area_sigma=edge * 2 * half_perimeter_px * det + 2 * rel * area,
        width_sigma=2 * edge * mm + rel * width,
        length_sigma=2 * edge * mm + rel * length,
        centres_px=centres,
        outlines=outlines if outlines is not None else (None,) * len(area),
    )


def _measure_mask(
    mask: np.ndarray, offset: tuple[int, int], level: float, calibration: Calibration, bent: bool, rel: float
) -> tuple[_Measured, MedialAxis | None]:
    """One region (a split piece or a bent particle) measured in its own box, with what print along its
    edges may hide in its uncertainty if they are straight; `rel` is the scale's relative uncertainty there."""
    ys, xs = np.nonzero(mask)
    count = float(len(xs))
    centre = np.array([[xs.mean() + offset[0], ys.mean() + offset[1]]])
    jac = calibration.jacobians(centre)[0]
    det = abs(float(np.linalg.det(jac)))
    mm = np.sqrt(det)
    cov = np.cov(np.stack([xs, ys]).astype(np.float64), bias=True) if count > 1 else np.zeros((2, 2))
    lam, vec = np.linalg.eigh(cov)
    length_px = float(np.sqrt(12 * max(lam[1], 0) + 1))
    width_px = float(np.sqrt(12 * max(lam[0], 0) + 1))
    stretch1 = float(np.linalg.norm(jac @ vec[:, 1]))
    area = count * det
    rect = count / max(length_px * width_px, 1.0)
    # Print along an edge may hide paper; straight edges show how much (a kinked part's do not).
    hidden = 0.0
    if STRAIGHT[0] <= rect <= STRAIGHT[1]:
        along_x = abs(vec[0, 1]) >= abs(vec[1, 1])
        hidden = mask_hidden(mask, along_x, min(abs(vec[0, 1]), abs(vec[1, 1]))) * det
    axis = None
    if bent or not STRAIGHT[0] <= rect <= STRAIGHT[1]:
        axis = medial_axis(mask)
        length = max(length_px * stretch1, axis.length_px * mm)
        width = max(area / max(length, 1e-9), axis.width_px * mm, 0.0)
        half_perimeter = axis.length_px + axis.width_px
    else:
        length = length_px * stretch1
        width = area / max(length, 1e-9)
        half_perimeter = length_px + width_px
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64) + offset if contours else None
    measured = _uncertain(
        np.array([level]),
        np.array([area]),
        np.array([width]),
        np.array([length]),
        np.array([half_perimeter]),
        np.array([det]),
        calibration,
        centre,
        (outline,),
        np.array([rel]),
    )
    return _allowing(measured, hidden), axis


def _concat(parts: list[_Measured]) -> _Measured:
    return _Measured(
        *(
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("area", "width", "length", "area_sigma", "width_sigma", "length_sigma")
        ),
        centres_px=np.concatenate([p.centres_px for p in parts]),
        outlines=tuple(o for p in parts for o in p.outlines),
    )


def _status(m: _Measured, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.stack([m.area, m.width, m.length], axis=1)
    sigmas = np.stack([m.area_sigma, m.width_sigma, m.length_sigma], axis=1)
    over = (values > limits).any(axis=1)
    near = ~over & (values + COVERAGE_K * sigmas > limits).any(axis=1)
    return over, near


def _outline_of(found: Components, index: int) -> np.ndarray:
    mask, offset = piece_mask(found, index)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64) + offset


def _judge(
    colour: np.ndarray,
    spec: SecurityLevel,
    calibration: Calibration,
    tray: TrayFit,
    found: Components,
    unsure: tuple[np.ndarray, ...],
) -> ParticleReport:
    limits = _limits(spec)
    measured, straight = _measure_moments(found, tray.distance, tray.particle_level, calibration)
    over, near = _status(measured, limits)
    # Irregular pieces over or near a limit get a closer look (along their medial axis): are they
    # several touching pieces, is the bound too coarse?
    # A straight, solid piece is one piece: only irregular regions can be several pieces or bent.
    # Bent pieces are longer than their moments say: under a length limit each gets a closer look.
    closer = (over | near | np.isfinite(limits[2])) & ~straight
    # Splitting can only make a region's pieces smaller: a region within the limits whole is not split.
    divide = (over | near) & ~straight
    rel = calibration.scale_uncertainty(found.centroid)
    faint_level = FAINT_SHARE * tray.particle_level
    min_faint_px = max(24.0, UNSURE_SHARE * limits[0] / calibration.mm_per_px**2)
    faint = (found.level < faint_level) & (found.area_px >= min_faint_px)
    unknown = [*unsure, *(_outline_of(found, int(i)) for i in np.flatnonzero(faint))]
    # Regions of pieces touching or lying on each other: the region's index, its area measured whole, and
    # the most paper its pieces may hold.
    touching: list[tuple[int, float, float]] = []
    folds = near_touching = 0  # of them: a T contact (maybe one folded piece); split, a piece near the limit

    det = np.abs(np.linalg.det(calibration.jacobians(found.centroid)))

    def region_area(index: int) -> float:
        """A region of touching pieces measured whole: its counted pixels (no strip's edge model fits it)."""
        return float(found.area_px[index] * det[index])

    def within_alone(index: int) -> float | None:
        """The area of both parts if the region is two straight strips at an angle (an L, a V, or a contact
        the T and X tests refuse), each within the level alone: nothing is proved too big, and one strip
        folded once shows the same outline. Such a region is held for a re-image, pieces spread (where a
        part near the limit is judged again, lying alone)."""
        mask, offset = piece_mask(found, index)
        ys, xs, _ = roi(found, index)
        strips = touching_parts((found.labels[ys, xs] == index + 1).astype(np.uint8), mask)
        if strips is None:
            return None
        level = float(found.level[index])
        alone = _concat([_measure_mask(p, offset, level, calibration, True, float(rel[index]))[0] for p in strips])
        a_over, _ = _status(alone, limits)
        return None if a_over.any() else float(alone.area.sum())

    # A straight piece over or near the limit may yet be two strips whose outline fills its moment
    # rectangle (a V, a Y).
    # Those over the limit first: once one of them is no such pair, the lot fails whatever the others
    # are, and they are left as measured (a failing lot of hundreds would otherwise cost a search each).
    angled: list[int] = []
    candidates = (over | near) & straight & ~found.clipped
    for i in [*np.flatnonzero(candidates & over), *np.flatnonzero(candidates & ~over)]:
        apart = within_alone(int(i))
        if apart is not None:
            touching.append((int(i), region_area(int(i)), apart))
            angled.append(int(i))
        elif over[i]:
            break
    keep = ~closer
    keep[angled] = False
    parts = [_take(measured, keep)]
    split_off = [False] * int(keep.sum())  # each particle: measured apart from a piece it touched
    split_areas: list[float] = []  # each region so split, measured whole
    for index in np.flatnonzero(closer):
        if found.clipped[index]:
            continue  # cut off: only part of it is in view, it cannot be judged (reported as clipped)
        mask, offset = piece_mask(found, int(index))
        ys, xs, _ = roi(found, int(index))
        level = float(found.level[index])
        division = Split((mask,), False)
        tee = False
        if divide[index]:
            pair = two_strips((found.labels[ys, xs] == index + 1).astype(np.uint8), mask)
            division = Split(pair.pieces, False) if pair else split(mask, tray.distance[ys, xs], level)
            # A T is two pieces only on evidence: the stem touches the bar at a corner, tray between.
            tee = (
                pair is not None
                and not pair.crossing
                and corner_contact(pair, tray.distance[ys, xs], level) < CORNER_CONFIDENCE
            )
        pieces = [
            _measure_mask(p, offset, level, calibration, not straight[index], float(rel[index]))[0]
            for p in division.pieces
        ]
        if len(pieces) == 1:  # the region whole: at least the paper its edges' measurement allowed for
            pieces[0] = replace(pieces[0], area_sigma=np.maximum(pieces[0].area_sigma, measured.area_sigma[index]))
        group = _concat(pieces)
        g_over, g_near = _status(group, limits)
        # The most paper its pieces may hold: measured apart, each through the other; not split, as much
        # again as pieces lying across each other may hide.
        union = region_area(int(index))
        whole = (int(index), union, float(group.area.sum()) if len(division.pieces) > 1 else (1 + HIDDEN) * union)
        if division.seams and (g_over.any() or g_near.any()):
            # Pieces lying on each other with seams between them but no clean cut: which of them is
            # over the limit cannot be told. Not a 'fail' (nothing was proved too big), never a 'pass'.
            touching.append(whole)
            continue
        if tee and not g_over.any():
            # A T is not proved two pieces: a strip whose middle stretch is folded flat under another
            # shows the same outline. Split, it would pass (or be near); whole, it is over or near.
            touching.append(whole)
            folds += 1
            continue
        if len(division.pieces) > 1 and g_near.any() and not g_over.any():
            # A piece near the limit only as measured with or through the piece it touches (its covered
            # part counted): spread apart, each is measured alone. Held for a re-image, never passed.
            touching.append(whole)
            near_touching += 1
            continue
        apart = within_alone(int(index)) if len(division.pieces) == 1 and (g_over.any() or g_near.any()) else None
        if apart is not None:
            touching.append((int(index), union, apart))
            angled.append(int(index))
            continue
        parts.append(group)
        split_off += [len(division.pieces) > 1] * len(division.pieces)
        if len(division.pieces) > 1:
            split_areas.append(union)
    result = _concat(parts)
    over, near = _status(result, limits)
    clipped_idx = np.flatnonzero(found.clipped)
    offenders = int(over.sum())
    n_near = int(near.sum())
    offender_outlines = tuple(_outline_for(result, i, found) for i in np.flatnonzero(over))
    near_outlines = tuple(_outline_for(result, i, found) for i in np.flatnonzero(near))
    if offenders:
        verdict: Verdict = "fail"
        reason = f"{offenders} particle(s) exceed {spec.name}"
    elif unknown or touching:
        verdict = "cannot_verify"
        reason = (
            f"cannot verify: {len(unknown) + len(touching)} region(s) could not be classified or separated"
            " with confidence"
        )
        if folds:
            reason += (
                f"; {folds} of them: pieces touching end to side that could be one folded piece"
                " (spread them apart and take the image again)"
            )
        if near_touching:
            reason += (
                f"; {near_touching} of them: touching pieces within the measurement uncertainty of {spec.name}"
                " as measured together (spread them apart and take the image again)"
            )
        if angled:
            reason += (
                f"; {len(angled)} of them: pieces touching at an angle, each within the level alone"
                " (spread them apart and take the image again)"
            )
    elif len(clipped_idx):
        verdict = "cannot_verify"
        reason = f"cannot verify: {len(clipped_idx)} particle(s) cut off at the edge of the view, the tray or a marker"
    elif n_near:
        verdict = "cannot_verify"
        reason = f"cannot verify: {n_near} particle(s) within the measurement uncertainty of {spec.name}"
    else:
        verdict, reason = "pass", f"all {len(result.area)} particles within {spec.name} with margin"
    return ParticleReport(
        verdict,
        reason,
        spec.name,
        count=len(result.area),
        max_area_mm2=float(result.area.max()),
        p95_area_mm2=float(np.percentile(result.area, 95)),
        median_area_mm2=float(np.median(result.area)),
        max_width_mm=float(result.width.max()),
        max_length_mm=float(result.length.max()),
        offenders=offenders,
        near_limit=n_near,
        ambiguous=len(unknown) + len(touching),
        unclassified=len(unknown),
        touched=len(touching),
        angled=len(angled),
        clipped=len(clipped_idx),
        mm_per_px=calibration.mm_per_px,
        markers_found=len(calibration.found),
        level_confirmed=spec.confirmed,
        areas_mm2=result.area,
        area_sigma_mm2=result.area_sigma,
        widths_mm=result.width,
        lengths_mm=result.length,
        centres_mm=calibration.to_mm(result.centres_px),
        split_off=np.array(split_off, dtype=bool),
        split_areas_mm2=np.array(split_areas, dtype=np.float64),
        touching_areas_mm2=np.array([area for _, area, _ in touching], dtype=np.float64),
        touching_most_mm2=np.array([most for _, _, most in touching], dtype=np.float64),
        offender_outlines=_pixels(offender_outlines),
        near_limit_outlines=_pixels(near_outlines),
        ambiguous_outlines=_pixels([*unknown, *(_outline_of(found, i) for i, _, _ in touching)]),
        marker_outlines=tuple(c for _, c in calibration.found),
        paper_outlines=_paper(found),
        px_to_mm=calibration.homography,
    )


def _paper(found: Components) -> tuple[np.ndarray, ...]:
    contours, _ = cv2.findContours(found.filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return tuple(c.reshape(-1, 2) for c in contours)


def _pixels(outlines: "tuple[np.ndarray, ...] | list[np.ndarray]") -> tuple[np.ndarray, ...]:
    """Outlines as OpenCV contours (int32 pixel coordinates)."""
    return tuple(np.round(o).astype(np.int32).reshape(-1, 2) for o in outlines)


def _take(m: _Measured, keep: np.ndarray) -> _Measured:
    return _Measured(
        m.area[keep],
        m.width[keep],
        m.length[keep],
        m.area_sigma[keep],
        m.width_sigma[keep],
        m.length_sigma[keep],
        m.centres_px[keep],
        tuple(o for o, k in zip(m.outlines, keep, strict=True) if k),
    )


def _outline_for(result: _Measured, i: int, found: Components) -> np.ndarray:
    known = result.outlines[i]
    if known is not None:
        return known
    # A particle measured by its moments: find its component by the label under its centre.
    x, y = np.round(result.centres_px[i]).astype(int)
    label = int(found.labels[min(max(y, 0), found.labels.shape[0] - 1), min(max(x, 0), found.labels.shape[1] - 1)])
    if label == 0:
        return np.array([[x - 5, y - 5], [x + 5, y - 5], [x + 5, y + 5], [x - 5, y + 5]], dtype=np.float64)
    return _outline_of(found, label - 1)

"""Particles in a tray-distance image: components, their pixel statistics, splits and medial axes.

A particle is a connected region clearly unlike the tray, with every hole inside its outline filled
(print on paper is part of the paper). Its pixels are counted at half its own contrast on the
outline (unbiased under blur) and wholly inside it. Touching pieces are separated only where their
shape says they are two: two straight strips at an angle crossing (`two_strips`), or pieces at an
angle touching at a point. Strips meeting end to side (a T) are found too, but a strip folded flat
shows that outline as well: the caller must not let such a split pass. A dark line is no evidence
(printed ink is one) and parallel pieces are never split; anything less is measured as one particle.
`touching_parts` finds two straight strips at an angle however they meet (an L or a V too): no proof
of two pieces (one strip folded once shows an L), only grounds to hold the region for a re-image.
"""

from dataclasses import dataclass, field

import cv2
import numba
import numpy as np

MIN_PARTICLE_PX = 6  # smaller regions are sensor noise or dust
EDGE_BAND = 2  # px inside the outline where pixels count only above half the particle's level
# Levels along a cut, as shares of the particle's own level: paper is above CORE_LEVEL; a line of
# print is below INK_LEVEL; a seam (the shadow at the edge of a piece lying on or against another)
# is in between.
CORE_LEVEL = 0.8
SHADOW_LEVEL = 0.75
INK_LEVEL = 0.3
CORE_SHARE = 0.25  # a piece's core: thicker than this share of the region's greatest half-width
MAX_CORES = 24  # a region of more candidate pieces than this is a heap: it is measured whole
SAME_PIECE = 0.88  # parts whose union is this solid (and no thicker) are one piece
POINT_SHARE = 0.25  # a point contact: a neck this narrow
MIN_TURN = np.radians(20)  # pieces this far apart in direction are not one straight piece
COLLINEAR = np.radians(12)  # two visible ends of one piece partly covered by another


@dataclass(frozen=True, eq=False)
class Components:
    """Particles of one photograph in pixels, one row each (index i is label i + 1)."""

    labels: np.ndarray = field(repr=False)  # int32, 0 is tray
    filled: np.ndarray = field(repr=False)  # uint8 255 where any particle is detected (holes filled)
    counted: np.ndarray = field(repr=False)  # uint8 255 where a pixel belongs to its particle's area
    area_px: np.ndarray = field(repr=False)
    centroid: np.ndarray = field(repr=False)  # (n, 2) x, y
    cov: np.ndarray = field(repr=False)  # (n, 3) var x, var y, cov xy of counted pixels
    level: np.ndarray = field(repr=False)  # each particle's own distance from the tray (grey levels)
    bbox: np.ndarray = field(repr=False)  # (n, 4) x, y, w, h
    clipped: np.ndarray = field(repr=False)  # touches the image edge or a marker zone
    left_out_px: np.ndarray = field(repr=False)  # pixels unlike the tray its area leaves out (see _moments)

    @property
    def n(self) -> int:
        return len(self.area_px)


@numba.njit(cache=True, nogil=True)
def _levels(labels: np.ndarray, distance: np.ndarray, cut: np.ndarray, n: int):
    """Per particle: its own level (mean distance of its paper, away from the blurred edge and the
    print: pixels within 75 % of its peak) and whether it touches a cut."""
    peak = np.zeros(n + 1, np.float64)
    clipped = np.zeros(n + 1, np.bool_)
    rows, cols = labels.shape
    for y in range(rows):
        for x in range(cols):
            lab = labels[y, x]
            if lab == 0:
                continue
            if cut[y, x]:
                clipped[lab] = True
            if distance[y, x] > peak[lab]:
                peak[lab] = distance[y, x]
    total = np.zeros(n + 1, np.float64)
    count = np.zeros(n + 1, np.int64)
    for y in range(rows):
        for x in range(cols):
            lab = labels[y, x]
            if lab != 0 and distance[y, x] >= 0.75 * peak[lab]:
                total[lab] += distance[y, x]
                count[lab] += 1
    level = np.empty(n + 1, np.float64)
    for i in range(n + 1):
        level[i] = total[i] / count[i] if count[i] > 0 else peak[i]
    return level, clipped


@numba.njit(cache=True, nogil=True)
def _interior_levels(labels: np.ndarray, distance: np.ndarray, interior: np.ndarray, rough: np.ndarray, n: int):
    """Per particle: mean distance over its interior paper (print, below half the rough level, left out)."""
    total = np.zeros(n + 1, np.float64)
    count = np.zeros(n + 1, np.int64)
    rows, cols = labels.shape
    for y in range(rows):
        for x in range(cols):
            lab = labels[y, x]
            if lab != 0 and interior[y, x] and distance[y, x] * 2.0 >= rough[lab]:
                total[lab] += distance[y, x]
                count[lab] += 1
    level = rough.copy()
    for i in range(n + 1):
        if count[i] >= 4:
            level[i] = total[i] / count[i]
    return level


@numba.njit(cache=True, nogil=True)
def _half_level(labels: np.ndarray, distance: np.ndarray, level: np.ndarray) -> np.ndarray:
    """255 where a pixel is at least half as far from the tray as its particle's own level."""
    out = np.zeros(labels.shape, np.uint8)
    rows, cols = labels.shape
    for y in range(rows):
        for x in range(cols):
            lab = labels[y, x]
            if lab != 0 and distance[y, x] * 2.0 >= level[lab]:
                out[y, x] = 255
    return out


@numba.njit(cache=True, nogil=True)
def _edge_counts(labels: np.ndarray, half: np.ndarray, inner: np.ndarray, n: int):
    """Per particle: detected pixels, pixels at half level, and outline pixels of the detection."""
    out = np.zeros((n + 1, 3), np.int64)
    rows, cols = labels.shape
    for y in range(rows):
        for x in range(cols):
            lab = labels[y, x]
            if lab == 0:
                continue
            out[lab, 0] += 1
            if half[y, x]:
                out[lab, 1] += 1
            if not inner[y, x]:
                out[lab, 2] += 1
    return out


@numba.njit(cache=True, nogil=True)
def _moments(labels: np.ndarray, counted: np.ndarray, distance: np.ndarray, floor: float, n: int):
    """Per particle: the moments of its counted pixels (count, x, y, xx, yy, xy), and the pixels
    clearly unlike the tray (at or above `floor`) that its area does not count (print at the edge, or
    the blurred edge itself): how much larger it might be."""
    sums = np.zeros((n + 1, 7), np.float64)  # count, x, y, xx, yy, xy, left out
    rows, cols = labels.shape
    for y in range(rows):
        for x in range(cols):
            lab = labels[y, x]
            if lab == 0:
                continue
            if counted[y, x] == 0:
                if distance[y, x] >= floor:
                    sums[lab, 6] += 1.0
                continue
            fx, fy = float(x), float(y)
            sums[lab, 0] += 1.0
            sums[lab, 1] += fx
            sums[lab, 2] += fy
            sums[lab, 3] += fx * fx
            sums[lab, 4] += fy * fy
            sums[lab, 5] += fx * fy
    return sums


@numba.njit(cache=True, nogil=True)
def _relabel(labels: np.ndarray, counted: np.ndarray, lut: np.ndarray) -> None:
    """In place: each label through `lut`, and nothing counted where the label becomes 0 (dust)."""
    rows, cols = labels.shape
    for y in range(rows):
        for x in range(cols):
            lab = labels[y, x]
            if lab != 0:
                new = lut[lab]
                labels[y, x] = new
                if new == 0:
                    counted[y, x] = 0


def _disc(radius: int) -> np.ndarray:
    """A disc: a square would erode deeper along diagonals and leave print near a diagonal edge out."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _close(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.erode(cv2.dilate(mask, kernel), kernel)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """`mask` (uint8 0/255) with every region enclosed by it filled."""
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood, (0, 0), 128)
    return cv2.compare(padded[1:-1, 1:-1], 128, cv2.CMP_NE)


def components(
    distance: np.ndarray, particle_level: float, cut: np.ndarray, bridge_px: int, dust_px: float = MIN_PARTICLE_PX
) -> Components:
    """Particles of the distance image: above `particle_level`, holes filled, and gaps up to about
    2 * `bridge_px` closed (a line of print across a strip leaves such a gap: the strip is one piece);
    `cut` marks edges and zones where a particle is cut off from view; regions under `dust_px` pixels
    are dust (and sensor noise), too small to matter for any limit."""
    mask = _close(cv2.compare(distance, particle_level, cv2.CMP_GT), bridge_px)
    mask[cut > 0] = 0
    filled = fill_holes(mask)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(filled, connectivity=8, ltype=cv2.CV_32S)
    n -= 1
    touching = cv2.dilate(cut, np.ones((3, 3), np.uint8))
    level, clipped = _levels(labels, distance, touching, n)
    # A particle owns the pixels inside its outline at half its own level, print included. Print
    # (darker than the paper) near the outline cannot be told from the blurred edge, so everything
    # deeper inside than the detection outline lies outside the true edge counts as the particle's.
    half = _half_level(labels, distance, level)
    inner = cv2.erode(filled, np.ones((3, 3), np.uint8))
    counts = _edge_counts(labels, half, inner, n)[1:]
    clean = (level[1:] >= 3 * particle_level) & (counts[:, 0] >= 50)
    offsets = (counts[clean, 0] - counts[clean, 1]) / np.maximum(counts[clean, 2], 1)
    # Print near the outline adds to a piece's offset (ink below half level reads as edge): unprinted
    # pieces have the smallest, so a low percentile is the edge's own depth (taken a little deeper:
    # outline pixels undercount a diagonal edge). Much deeper, the print near every edge would be
    # left out (a piece measured smaller than it is).
    depth = int(np.ceil(1.2 * np.percentile(offsets, 20))) if len(offsets) else EDGE_BAND
    # The level again, from the paper well inside the true edge, now that the edge's depth is known.
    interior = cv2.erode(filled, _disc(depth + 2))
    level = _interior_levels(labels, distance, interior, level, n)
    half = _half_level(labels, distance, level)
    deep = cv2.erode(filled, _disc(depth))
    counted = cv2.bitwise_and(fill_holes(_close(cv2.bitwise_or(half, deep), bridge_px)), filled)  # filled: labels > 0
    sums = _moments(labels, counted, distance, 2.0 * float(particle_level), n)
    left_out = sums[1:, 6]
    sums, level, clipped, stats = sums[1:], level[1:], clipped[1:], stats[1:]
    area = sums[:, 0]
    keep = area >= max(dust_px, MIN_PARTICLE_PX)
    safe = np.maximum(area, 1.0)
    mx, my = sums[:, 1] / safe, sums[:, 2] / safe
    cov = np.stack([sums[:, 3] / safe - mx * mx, sums[:, 4] / safe - my * my, sums[:, 5] / safe - mx * my], axis=1)
    if not keep.all():
        drop = np.flatnonzero(~keep) + 1
        lut = np.zeros(n + 1, np.int32)
        lut[np.flatnonzero(keep) + 1] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        lut[drop] = 0
        _relabel(labels, counted, lut)
    return Components(
        labels=labels,
        filled=filled,
        counted=counted,
        area_px=area[keep],
        centroid=np.stack([mx, my], axis=1)[keep],
        cov=cov[keep],
        level=level[keep],
        bbox=stats[keep, :4],
        clipped=clipped[keep],
        left_out_px=left_out[keep],
    )


def roi(found: Components, index: int, pad: int = 2) -> tuple[slice, slice, tuple[int, int]]:
    x, y, w, h = (int(v) for v in found.bbox[index])
    rows, cols = found.labels.shape
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(cols, x + w + pad), min(rows, y + h + pad)
    return slice(y0, y1), slice(x0, x1), (x0, y0)


def piece_mask(found: Components, index: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The counted pixels of one particle in its bounding box (uint8 0/1) and the box's offset."""
    ys, xs, offset = roi(found, index)
    mask = ((found.labels[ys, xs] == index + 1) & (found.counted[ys, xs] > 0)).astype(np.uint8)
    return mask, offset


def widest_px(found: Components, index: int) -> float:
    """The diameter of the widest disc inside one particle: at least as wide as the piece anywhere, bent
    or not (measured in its own box: only the pieces that are no straight strip need it)."""
    mask, _ = piece_mask(found, index)
    return max(2.0 * float(cv2.distanceTransform(mask, cv2.DIST_L2, 5).max()) - 1.0, 1.0)


@dataclass(frozen=True, eq=False)
class Split:
    """How one region divides: `pieces` (uint8 masks in the region's box) when the evidence allows;
    `seams` is True when a seam runs through it that does not separate it cleanly (pieces lying on
    each other): then `pieces` is the region whole and which piece is which cannot be told."""

    pieces: tuple[np.ndarray, ...]
    seams: bool


def _orientation(mask: np.ndarray) -> float | None:
    """Principal direction (radians) of an elongated region; None for a compact one."""
    m = cv2.moments(mask, binaryImage=True)
    if m["m00"] < MIN_PARTICLE_PX:
        return None
    a, b, c = m["mu20"], m["mu02"], m["mu11"]
    spread = np.sqrt(((a - b) / 2) ** 2 + c * c)
    major, minor = (a + b) / 2 + spread, max((a + b) / 2 - spread, 1e-9)
    if major < 4 * minor:
        return None
    return 0.5 * float(np.arctan2(2 * c, a - b))


def split(mask: np.ndarray, distance: np.ndarray, level: float) -> Split:
    """Separate a region into pieces only where the evidence says they are separate pieces.

    Candidate pieces are the cores of the region (thick and bright); each cut between two of them is
    accepted when the outline is narrow there (a neck) and either a seam runs along the cut or the
    contact is a point between pieces lying at an angle. A partly cut piece (collinear halves joined
    by a bright bridge) stays one."""
    whole = Split((mask,), False)
    union_dt = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    bright = distance >= CORE_LEVEL * level
    cores = ((union_dt > max(1.5, CORE_SHARE * float(union_dt.max()))) & bright).astype(np.uint8)
    n, parts, stats, _ = cv2.connectedComponentsWithStats(cores, connectivity=8)
    big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= MIN_PARTICLE_PX]
    if len(big) < 2 or len(big) > MAX_CORES:
        return whole
    seeds = np.zeros(mask.shape, np.int32)
    for k, i in enumerate(big, 1):
        seeds[parts == i] = k
    # The region floods from its cores across the paper: the cuts settle on seams (dark lines),
    # where the pieces meet.
    relief = np.clip(255.0 - distance * (255.0 / max(level, 1.0)), 0, 255).astype(np.uint8)
    markers = seeds.astype(np.int32)
    markers[mask == 0] = len(big) + 1  # the tray floods too, so the region's outline stays put
    cv2.watershed(cv2.merge([relief, relief, relief]), markers)
    owner = np.where((mask > 0) & (markers >= 1) & (markers <= len(big)), markers, 0)
    # Watershed lines (-1) inside the region go to the nearest part.
    lines = (mask > 0) & (owner == 0)
    if lines.any():
        _, nearest = cv2.distanceTransformWithLabels(
            (owner == 0).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
        )
        label_of = np.zeros(int(nearest.max()) + 1, np.int32)
        ys, xs = np.nonzero(owner)
        label_of[nearest[ys, xs]] = owner[ys, xs]
        owner[lines] = label_of[nearest[lines]]
    cuts: dict[tuple[int, int], list[tuple[float, float]]] = {}
    rows, cols = owner.shape
    # A seam is a line a pixel or two wide; the cut between cores runs within a pixel or two of it.
    # Only the region's own pixels count: at a narrow bridge the tray beside it is no seam.
    inside = np.where(mask > 0, distance, 255).astype(np.uint8)
    darkest = cv2.erode(inside, np.ones((5, 5), np.uint8))
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = owner[0 : rows - dy, max(0, -dx) : cols - max(0, dx)]
        b = owner[dy:rows, max(0, dx) : cols - max(0, -dx)]
        ty, tx = np.nonzero((a != b) & (a > 0) & (b > 0))
        for p, q, y, x in zip(a[ty, tx], b[ty, tx], ty, tx + max(0, -dx), strict=True):
            key = (int(min(p, q)), int(max(p, q)))
            cuts.setdefault(key, []).append((float(union_dt[y, x]), float(darkest[y, x])))
    groups = [(owner == k).astype(np.uint8) for k in range(1, len(big) + 1)]
    members = [{k} for k in range(1, len(big) + 1)]
    seams = False

    def between(i: int, j: int) -> list[tuple[float, float]]:
        return [t for p in members[i] for q in members[j] for t in cuts.get((min(p, q), max(p, q)), [])]

    def merge(i: int, j: int) -> None:
        groups[i] = groups[i] | groups[j]
        members[i] |= members[j]
        del groups[j], members[j]

    # First the parts of one piece: print across a strip cuts its core, but together they are one
    # simple piece. Most solid union first, so a fragment joins its own strip, not the piece it touches.
    while True:
        pairs = [(i, j) for i in range(len(groups)) for j in range(i + 1, len(groups)) if between(i, j)]
        scored = [(_solidity(groups[i] | groups[j]), i, j) for i, j in pairs if _same_width(groups[i], groups[j])]
        best = max(scored, default=None)
        if best is None or best[0] < SAME_PIECE:
            break
        _, i, j = best
        seams |= _is_shadow(between(i, j), level)
        merge(i, j)
    # A compact fragment (print cut it off its strip) joins the neighbour it makes the most solid.
    while True:
        compact = [i for i in range(len(groups)) if _orientation(groups[i]) is None and len(groups) > 1]
        options = [
            (_solidity(groups[i] | groups[j]), i, j)
            for i in compact
            for j in range(len(groups))
            if j != i and between(i, j)
        ]
        if not options:
            break
        _, i, j = max(options)
        seams |= _is_shadow(between(i, j), level)
        merge(min(i, j), max(i, j))
    # Then the contacts between pieces: kept apart only on the evidence, otherwise one region.
    changed = True
    while changed:
        changed = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                samples = between(i, j)
                if samples and not _separate(groups[i], groups[j], samples):
                    seams |= _is_shadow(samples, level)
                    merge(i, j)
                    changed = True
                    break
            if changed:
                break
    if len(groups) == 1:
        return Split((mask,), seams)
    return Split(_rejoin_covered(groups), seams)


def _same_width(a: np.ndarray, b: np.ndarray) -> bool:
    """Parts of one strip: their union is no thicker than the thicker part."""
    widths = [float(cv2.distanceTransform(m, cv2.DIST_L2, 5).max()) for m in (a, b, a | b)]
    return widths[2] <= 1.15 * max(widths[0], widths[1]) + 0.5


def _seam(samples: list[tuple[float, float]], level: float) -> float:
    return float(np.median([d for _, d in samples])) / max(level, 1.0)


def _is_shadow(samples: list[tuple[float, float]], level: float) -> bool:
    return INK_LEVEL < _seam(samples, level) <= SHADOW_LEVEL


def _separate(a: np.ndarray, b: np.ndarray, samples: list[tuple[float, float]]) -> bool:
    half_a = float(cv2.distanceTransform(a, cv2.DIST_L2, 5).max())
    half_b = float(cv2.distanceTransform(b, cv2.DIST_L2, 5).max())
    neck = max(t for t, _ in samples) / max(min(half_a, half_b), 1.0)
    turn = _turn(_orientation(a), _orientation(b))
    # Pieces lying parallel are never split (a partly cut piece is two parallel halves). A dark line
    # alone is no evidence: printed ink reads as one. Pieces at an angle crossing or meeting end to
    # side are found by `two_strips`; here only a point contact (tray all round it) separates them.
    return bool(turn >= MIN_TURN and neck <= POINT_SHARE)


def _solidity(region: np.ndarray) -> float:
    points = np.argwhere(region)[:, ::-1].astype(np.int32)
    if len(points) < 3:
        return 1.0
    hull = cv2.convexHull(points)
    return float(len(points) / max(cv2.contourArea(hull) + cv2.arcLength(hull, True) / 2 + 1, 1.0))


def _turn(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0
    return abs((a - b + np.pi / 2) % np.pi - np.pi / 2)


def _rejoin_covered(groups: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """A piece lying across another shows the lower one as two collinear ends: they are one piece,
    measured with the covered middle (the convex hull of both ends), never as two short ones."""
    merged = list(groups)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                ta, tb = _orientation(a), _orientation(b)
                if ta is None or tb is None or _turn(ta, tb) > COLLINEAR:
                    continue
                ca = np.argwhere(a)[:, ::-1].mean(axis=0)
                cb = np.argwhere(b)[:, ::-1].mean(axis=0)
                joint = cb - ca
                if np.hypot(*joint) < 1.0 or _turn(ta, float(np.arctan2(joint[1], joint[0]))) > COLLINEAR:
                    continue
                points = np.argwhere(a | b)[:, ::-1].astype(np.int32)
                hull = np.zeros_like(a)
                cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
                merged[i] = hull | a | b
                del merged[j]
                changed = True
                break
            if changed:
                break
    return tuple(merged)


@numba.njit(cache=True, nogil=True)
def _thin(image: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a 0/1 image to a one-pixel skeleton."""
    img = image.copy()
    rows, cols = img.shape
    changed = True
    marks = np.zeros_like(img)
    while changed:
        changed = False
        for step in range(2):
            marks[:] = 0
            for y in range(1, rows - 1):
                for x in range(1, cols - 1):
                    if img[y, x] == 0:
                        continue
                    p2, p3, p4 = img[y - 1, x], img[y - 1, x + 1], img[y, x + 1]
                    p5, p6, p7 = img[y + 1, x + 1], img[y + 1, x], img[y + 1, x - 1]
                    p8, p9 = img[y, x - 1], img[y - 1, x - 1]
                    b = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
                    if b < 2 or b > 6:
                        continue
                    a = (
                        (p2 == 0 and p3 == 1)
                        + (p3 == 0 and p4 == 1)
                        + (p4 == 0 and p5 == 1)
                        + (p5 == 0 and p6 == 1)
                        + (p6 == 0 and p7 == 1)
                        + (p7 == 0 and p8 == 1)
                        + (p8 == 0 and p9 == 1)
                        + (p9 == 0 and p2 == 1)
                    )
                    if a != 1:
                        continue
                    if (step == 0 and p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0) or (
                        step == 1 and p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
                    ):
                        marks[y, x] = 1
            for y in range(rows):
                for x in range(cols):
                    if marks[y, x]:
                        img[y, x] = 0
                        changed = True
    return img


@numba.njit(cache=True, nogil=True)
def _farthest(skeleton: np.ndarray, sy: int, sx: int):
    """Breadth-first search over the skeleton from (sy, sx): the farthest pixel and the parent links."""
    rows, cols = skeleton.shape
    dist = np.full((rows, cols), -1, np.int64)
    parent = np.full((rows, cols), -1, np.int64)
    queue = np.empty(rows * cols, np.int64)
    head, tail = 0, 0
    queue[tail] = sy * cols + sx
    tail += 1
    dist[sy, sx] = 0
    last = sy * cols + sx
    while head < tail:
        cur = queue[head]
        head += 1
        last = cur
        cy, cx = cur // cols, cur % cols
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                ny, nx = cy + dy, cx + dx
                if 0 <= ny < rows and 0 <= nx < cols and skeleton[ny, nx] and dist[ny, nx] < 0:
                    dist[ny, nx] = dist[cy, cx] + 1
                    parent[ny, nx] = cur
                    queue[tail] = ny * cols + nx
                    tail += 1
    return last, parent


@dataclass(frozen=True)
class MedialAxis:
    length_px: float  # along the medial axis, end to end
    width_px: float  # 90th percentile of the width along the middle of the axis
    path: np.ndarray  # (k, 2) x, y of the axis in the mask's box


def medial_axis(mask: np.ndarray) -> MedialAxis:
    """Length along the skeleton (plus the distance from its ends to the outline) and width from the
    distance transform along it: what a bent strip measures, not its bounding rectangle."""
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dt = cv2.distanceTransform(padded, cv2.DIST_L2, 5)
    skeleton = _thin(padded.astype(np.uint8))
    ys, xs = np.nonzero(skeleton)
    if len(xs) == 0:
        peak = float(dt.max())
        return MedialAxis(2 * peak, 2 * peak - 1, np.zeros((0, 2)))
    cols = skeleton.shape[1]
    first, _ = _farthest(skeleton, int(ys[0]), int(xs[0]))
    end, parent = _farthest(skeleton, int(first // cols), int(first % cols))
    path = []
    cur = end
    while cur >= 0:
        path.append((cur % cols, cur // cols))
        cur = parent[cur // cols, cur % cols]
    pts = np.array(path, dtype=np.float64)
    simplified = cv2.approxPolyDP(pts.reshape(-1, 1, 2).astype(np.float32), 0.8, False).reshape(-1, 2)
    along = float(np.sum(np.linalg.norm(np.diff(simplified, axis=0), axis=1))) if len(simplified) > 1 else 0.0
    ends = float(dt[int(pts[0, 1]), int(pts[0, 0])] + dt[int(pts[-1, 1]), int(pts[-1, 0])]) - 1.0
    radii = dt[pts[:, 1].astype(int), pts[:, 0].astype(int)]
    k = len(radii)
    middle = radii[k // 5 : k - k // 5] if k >= 5 else radii
    width = 2.0 * float(np.percentile(middle, 90)) - 1.0
    return MedialAxis(along + max(ends, 0.0), max(width, 1.0), pts - 1.0)


# Two pieces lying across each other (X) or one's end against the other's side (T) are two straight
# strips at an angle, and no single piece makes that shape: a fold makes a V or an L (both arms end at
# the crease), a partly cut piece stays collinear, a curl is no pair of straight strips.
STRIP_FILL = 0.8  # a strip's rectangle is this full of the region's pixels (ink notches its edges)
STRIP_RESIDUE_PX = 0.75  # pixels outside both strips, per pixel of their outlines (ragged edges)
STRIP_ELONGATION = 2.0  # a strip is at least this many times as long as it is wide
# Paper outside both strips (clear of their ragged edges) in one place, as a share of a strip's width
# squared: more is a third stretch of paper (between two folds of one strip), not an edge.
LOOSE_SHARE = 0.2


@dataclass(frozen=True)
class _Strip:
    theta: float  # direction of its length (radians)
    v: tuple[float, float]  # its band across, in the coordinate across `theta`
    u: tuple[float, float]  # its extent along


def _along_across(xs: np.ndarray, ys: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(theta), np.sin(theta)
    return xs * c + ys * s, ys * c - xs * s


def _run(profile: np.ndarray, level: float, at: int) -> tuple[int, int]:
    """The run of bins at or above `level` around bin `at`."""
    lo = hi = at
    while lo > 0 and profile[lo - 1] >= level:
        lo -= 1
    while hi < len(profile) - 1 and profile[hi + 1] >= level:
        hi += 1
    return lo, hi


def _histogram(values: np.ndarray) -> np.ndarray:
    """Counts in unit bins from 0, each value shared between its two nearest bins (no aliasing at
    diagonal directions)."""
    whole = np.floor(values).astype(np.int64)
    share = values - whole
    return np.bincount(whole, 1.0 - share, len_ := int(whole.max()) + 2) + np.bincount(whole + 1, share, len_)


@numba.njit(cache=True, nogil=True)
def _concentration(xs: np.ndarray, ys: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """For each direction, the sum of squares of the pixels' profile across it (as `_histogram` bins
    it): the higher, the more the pixels crowd into full rows. One pass per direction, no arrays."""
    out = np.zeros(len(thetas))
    n = len(xs)
    if n == 0:
        return out
    for a in range(len(thetas)):
        c, s = np.cos(thetas[a]), np.sin(thetas[a])
        low = np.inf
        high = -np.inf
        for i in range(n):
            v = ys[i] * c - xs[i] * s
            low = min(low, v)
            high = max(high, v)
        low = np.floor(low)
        bins = np.zeros(int(np.floor(high - low)) + 2)
        for i in range(n):
            v = ys[i] * c - xs[i] * s - low
            whole = int(np.floor(v))
            share = v - whole
            bins[whole] += 1.0 - share
            bins[whole + 1] += share
        out[a] = np.sum(bins * bins)
    return out


def _strongest_band(xs: np.ndarray, ys: np.ndarray, along: float | None = None) -> tuple[float, tuple[float, float]]:
    """The direction in which these pixels are most concentrated across (a strip's rows are all full
    only along its own direction), or `along` if given, and the band of its fullest rows: as wide as
    their pixels over their length (a ragged or blurred edge row counts by its share), about their middle."""

    def profile_at(theta: float) -> tuple[np.ndarray, float]:
        _, v = _along_across(xs, ys, theta)
        low = float(np.floor(v.min()))
        return _histogram(v - low), low

    px, py = xs.astype(np.float64), ys.astype(np.float64)
    if along is None:
        coarse = np.radians(np.arange(0.0, 180.0, 2.0))
        along = float(coarse[int(np.argmax(_concentration(px, py, coarse)))])
    fine = along + np.radians(np.arange(-2.0, 2.01, 0.5))
    theta = fine[int(np.argmax(_concentration(px, py, fine)))]
    profile, low = profile_at(theta)
    at = int(np.argmax(profile))
    lo, hi = _run(profile, 0.5 * float(profile[at]), at)
    full_length = float(np.median(profile[lo : hi + 1]))
    lo, hi = max(lo - 2, 0), min(hi + 2, len(profile) - 1)  # and its blurred edges
    rows = np.arange(lo, hi + 1)
    weights = profile[lo : hi + 1]
    middle = low + float(np.sum(rows * weights) / np.sum(weights)) + 0.5
    half_width = 0.5 * float(np.sum(weights)) / max(full_length, 1.0)
    return float(theta), (middle - half_width, middle + half_width)


def _extent(xs: np.ndarray, ys: np.ndarray, theta: float, band: tuple[float, float], other: _Strip) -> _Strip:
    """A strip's extent along its band: its own rows (clear of the other strip's band) at least half
    full, across any gap where the other strip covers its line; it ends at its last own full row."""
    u, v = _along_across(xs, ys, theta)
    own = (v >= band[0]) & (v < band[1]) & ~_in_strip(xs, ys, _padded(other, 2))
    if not own.any():
        return _Strip(theta, band, (0.0, 0.0))
    first = float(np.floor(u[own].min())) - 1
    full = _histogram(u[own] - first) >= 0.5 * (band[1] - band[0])
    # Where the other strip's band crosses this strip's middle line.
    along = first + np.arange(len(full)) + 0.5
    middle = 0.5 * (band[0] + band[1])
    c, s = np.cos(theta), np.sin(theta)
    covered = _in_strip(along * c - middle * s, along * s + middle * c, _padded(other, 3))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (full | covered).astype(np.int8), [0]])))
    best, start, end = 0, 0, 0
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        rows = np.flatnonzero(full[a:b])
        if len(rows) > best:
            best, start, end = len(rows), a + int(rows[0]), a + int(rows[-1]) + 1
    return _Strip(theta, band, (first + start, first + end))


def _full_extent(xs: np.ndarray, ys: np.ndarray, theta: float, band: tuple[float, float]) -> _Strip:
    """A strip's extent along its band: the longest run of its rows at least half full, whatever paper."""
    u, v = _along_across(xs, ys, theta)
    inside = (v >= band[0]) & (v < band[1])
    if not inside.any():
        return _Strip(theta, band, (0.0, 0.0))
    first = float(np.floor(u[inside].min()))
    full = _histogram(u[inside] - first) >= 0.5 * (band[1] - band[0])
    if not full.any():
        return _Strip(theta, band, (0.0, 0.0))
    runs = np.flatnonzero(np.diff(np.concatenate([[0], full.astype(np.int8), [0]]))).reshape(-1, 2)
    start, end = runs[int(np.argmax(runs[:, 1] - runs[:, 0]))]
    return _Strip(theta, band, (first + float(start), first + float(end)))


def _padded(strip: _Strip, px: float) -> _Strip:
    return _Strip(strip.theta, (strip.v[0] - px, strip.v[1] + px), (strip.u[0] - px, strip.u[1] + px))


def _in_strip(xs: np.ndarray, ys: np.ndarray, strip: _Strip) -> np.ndarray:
    u, v = _along_across(xs, ys, strip.theta)
    return (v >= strip.v[0]) & (v < strip.v[1]) & (u >= strip.u[0]) & (u < strip.u[1])


def _through(strip: _Strip, xs: np.ndarray, ys: np.ndarray, other: np.ndarray) -> _Strip:
    """`strip` extended along its band across the pixels of `other`."""
    u, v = _along_across(xs, ys, strip.theta)
    crossing = u[(v >= strip.v[0]) & (v < strip.v[1]) & other]
    if len(crossing) == 0:
        return strip
    return _Strip(strip.theta, strip.v, (min(strip.u[0], float(crossing.min())), max(strip.u[1], crossing.max() + 1.0)))


def _groups(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The pixel counts of the separate (8-connected) groups these pixels form."""
    if len(xs) == 0:
        return np.zeros(0, np.int64)
    x0, y0 = int(xs.min()), int(ys.min())
    mask = np.zeros((int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1), np.uint8)
    mask[ys.astype(np.int64) - y0, xs.astype(np.int64) - x0] = 1
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return stats[1:, cv2.CC_STAT_AREA].astype(np.int64)


def _places(xs: np.ndarray, ys: np.ndarray) -> int:
    return len(_groups(xs, ys))


def _largest_group(xs: np.ndarray, ys: np.ndarray) -> int:
    groups = _groups(xs, ys)
    return int(groups.max()) if len(groups) else 0


def _free_ends(xs: np.ndarray, ys: np.ndarray, strip: _Strip, other: _Strip) -> bool:
    """Around each end of `strip` (beside it and up to a width beyond it) no paper but its own, its
    ragged edge, and the other strip's: a strip that runs on past the other ends in tray, where
    a folded strip's stretch that it covers would show."""
    width = strip.v[1] - strip.v[0]
    u, v = _along_across(xs, ys, strip.theta)
    foreign = ~_in_strip(xs, ys, _padded(strip, 2)) & ~_in_strip(xs, ys, _padded(other, 2))
    beside = (v >= strip.v[0] - width) & (v < strip.v[1] + width)
    for end, outward in ((strip.u[0], -1.0), (strip.u[1], 1.0)):
        near = beside & ((u - end) * outward >= -width) & ((u - end) * outward < width)
        if int(np.sum(foreign & near)) > max(4.0, 0.5 * width):
            return False
    return True


def _pokes_through(xs: np.ndarray, ys: np.ndarray, strip: _Strip, other: _Strip) -> bool:
    """Whether `strip` shows on both sides of `other`'s band, clear of its ragged edges (3 px), by more
    than a pixel and a half across its width."""
    _, v = _along_across(xs, ys, other.theta)
    own = _in_strip(xs, ys, strip)
    sides = np.sum(own & (v < other.v[0] - 3)), np.sum(own & (v >= other.v[1] + 3))
    return bool(min(sides) > 1.5 * (strip.v[1] - strip.v[0]))


@dataclass(frozen=True)
class StripPair:
    """Two straight strips found in one region: the `counted` pixels of each, in the region's box.
    `crossing` is True for an X (every arm free and longer than a strip is wide), which only two pieces
    make; False for a T (one strip's end against the other's side), which a strip with its middle
    stretch folded flat under another also shows from above."""

    pieces: tuple[np.ndarray, np.ndarray]
    crossing: bool
    bar: _Strip  # the strip that runs on past the meeting on both sides (either one, for an X)
    stem: _Strip  # the strip whose end meets the bar's side (for a T)


def _strips_at_an_angle(
    xs: np.ndarray, ys: np.ndarray, along: float | None = None
) -> tuple[_Strip, _Strip, float] | None:
    """The region's pixels as two straight strips at an angle, each clear of the other (the strongest
    band of rows first, about `along` if given, then the strongest of the rest), and the half-perimeter
    of both; None unless both are solid strips at least twice as long as wide. With `along` each strip
    runs as far as its rows are at least half full, the other's pixels counted (at a shallow crossing
    the other covers much of its rows, on a long stretch, not only its middle line)."""
    n = len(xs)
    bar_theta, bar_band = _strongest_band(xs, ys, along)
    _, v = _along_across(xs, ys, bar_theta)
    # The stem is sought clear of the bar's band and its ragged edges (rows beside it, parallel to it).
    rest = (v < bar_band[0] - 2) | (v >= bar_band[1] + 2)
    if rest.sum() < 0.1 * n:
        return None  # one strip
    stem_theta, stem_band = _strongest_band(xs[rest], ys[rest])
    turn = _turn(bar_theta, stem_theta)
    if turn < MIN_TURN:
        return None  # parallel or collinear: never split
    # Each strip's extent clear of the other: first of the other's whole band, then of its rectangle.
    bar, stem = _Strip(bar_theta, bar_band, (-np.inf, np.inf)), _Strip(stem_theta, stem_band, (-np.inf, np.inf))
    if along is None:
        for _ in range(2):
            bar, stem = _extent(xs, ys, bar_theta, bar_band, stem), _extent(xs, ys, stem_theta, stem_band, bar)
    else:
        bar, stem = _full_extent(xs, ys, bar_theta, bar_band), _full_extent(xs, ys, stem_theta, stem_band)
    in_bar, in_stem = _in_strip(xs, ys, bar), _in_strip(xs, ys, stem)
    perimeter = 0.0
    for strip, inside in ((bar, in_bar), (stem, in_stem)):
        width, length = strip.v[1] - strip.v[0], strip.u[1] - strip.u[0]
        if length < STRIP_ELONGATION * width or inside.sum() < STRIP_FILL * width * length:
            return None
        perimeter += 2 * (width + length)
    return bar, stem, perimeter


def _measured_through(
    xs: np.ndarray, ys: np.ndarray, bar: _Strip, stem: _Strip, perimeter: float, counted: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], _Strip, _Strip] | None:
    """The counted pixels of each strip, measured through the other (one of them may lie under the other,
    its end anywhere beneath it) and with whatever lies outside both, and the strips so extended; None if
    more lies outside both than their ragged edges."""
    in_bar, in_stem = _in_strip(xs, ys, bar), _in_strip(xs, ys, stem)
    bar, stem = _through(bar, xs, ys, in_stem), _through(stem, xs, ys, in_bar)
    in_bar, in_stem = _in_strip(xs, ys, bar), _in_strip(xs, ys, stem)
    # Outside both strips only their ragged edges: under a pixel along their outlines.
    residue = ~(in_bar | in_stem)
    if residue.sum() > STRIP_RESIDUE_PX * perimeter:
        return None
    pieces = []
    for inside in (in_bar, in_stem):
        # What lies outside both strips is counted in each: neither is measured smaller than it may be.
        piece = np.zeros_like(counted)
        take = inside | residue
        piece[ys[take].astype(np.int64), xs[take].astype(np.int64)] = 1
        pieces.append(piece & counted)
    return (pieces[0], pieces[1]), bar, stem


def _loose(xs: np.ndarray, ys: np.ndarray, bar: _Strip, stem: _Strip) -> bool:
    """Paper outside both strips in one place, more than a ragged edge: a third stretch (of a folded strip)."""
    loose = ~_in_strip(xs, ys, _padded(bar, 2)) & ~_in_strip(xs, ys, _padded(stem, 2))
    return _largest_group(xs[loose], ys[loose]) > LOOSE_SHARE * min(bar.v[1] - bar.v[0], stem.v[1] - stem.v[0]) ** 2


def two_strips(region: np.ndarray, counted: np.ndarray) -> StripPair | None:
    """The region (its detected outline, print bridged) as two straight strips crossing (X) or meeting
    end to side (T); None unless the region is clearly that. The strip that may lie under the other is
    measured through it (its covered part counted), so neither is measured smaller than it can be."""
    ys, xs = np.nonzero(region)
    if len(xs) < 4 * MIN_PARTICLE_PX:
        return None
    xs, ys = xs.astype(np.float64), ys.astype(np.float64)
    found = _strips_at_an_angle(xs, ys)
    if found is None:
        return None
    bar, stem, perimeter = found
    # A T or an X, not an L or a V: one strip runs on past where the other meets it, on both sides (a
    # fold's crease ends both arms).
    meet = _in_strip(xs, ys, _padded(bar, 3)) & _in_strip(xs, ys, _padded(stem, 3))
    if not meet.any():
        return None
    runs = []
    for strip in (bar, stem):
        u, _ = _along_across(xs[meet], ys[meet], strip.theta)
        runs.append((u.min() - strip.u[0], strip.u[1] - u.max()))
    through = [min(r) >= max(3.0, 0.25 * (s.v[1] - s.v[0])) for r, s in zip(runs, (bar, stem), strict=True)]
    if not any(through):
        return None
    # An X: every arm longer than a strip is wide. A strip folded twice can hide the stretch between
    # its folds under its last stretch, which then seems to cross the first near the first one's end,
    # poking out past it by a stub (a Z folded back: an X joined at the ends). A stem that pokes out
    # past the far edge of the strip it meets crosses it: it is an X, whatever its stub's length.
    crossing = all(through) or _pokes_through(xs, ys, *((stem, bar) if through[0] else (bar, stem)))
    arm = 3.0 + max(bar.v[1] - bar.v[0], stem.v[1] - stem.v[0])
    if crossing and min(min(r) for r in runs) < arm:
        return None
    # Two pieces meet in one place. A strip folded twice so that its last stretch lies across its first
    # (a Z folded back) makes an X whose arms are also joined at their ends: a second place where they
    # meet, or paper beside an end that belongs to neither (the stretch between the folds).
    through_strips = [(s, o) for s, o, t in ((bar, stem, through[0]), (stem, bar, through[1])) if t]
    if _places(xs[meet], ys[meet]) > 1 or not all(_free_ends(xs, ys, s, o) for s, o in through_strips):
        return None
    if _loose(xs, ys, bar, stem):
        return None
    measured = _measured_through(xs, ys, bar, stem, perimeter, counted)
    if measured is None:
        return None
    pair, bar, stem = measured
    pieces = list(pair)
    if not through[0]:
        bar, stem = stem, bar
        pieces.reverse()
    return StripPair((pieces[0], pieces[1]), crossing, bar, stem)


def _edge_direction(region: np.ndarray) -> float:
    """The direction (radians) the region's outline runs along the most: both long edges of a strip run
    along it. From the gradient of the blurred outline, each edge pixel weighted by its strength."""
    soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 2.0)
    gx, gy = cv2.Sobel(soft, cv2.CV_32F, 1, 0), cv2.Sobel(soft, cv2.CV_32F, 0, 1)
    strength = np.hypot(gx, gy).ravel()
    degrees = np.round(np.degrees(np.arctan2(gy, gx)).ravel() + 90.0).astype(np.int64) % 180
    weights = np.bincount(degrees, strength, 180)
    # Summed over 5 degrees either side (a ragged edge wavers), round the half turn.
    near = np.convolve(np.concatenate([weights[-5:], weights, weights[:5]]), np.ones(11), "valid")
    return float(np.radians(int(np.argmax(near))))


def touching_parts(region: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The region as two straight strips touching at an angle, however they meet (an L, a V, a T, an X,
    one's end near the other's): the counted pixels of each (uint8 0/1 in the region's box), each measured
    through the other and with whatever lies outside both, so neither is smaller than it may be. None
    unless two solid strips at an angle and their ragged edges make the whole region.

    No proof of two pieces: one strip folded once shows an L or a V. A caller may only hold such a region
    for a re-image (the pieces spread apart), never pass it."""
    ys, xs = np.nonzero(region)
    if len(xs) < 4 * MIN_PARTICLE_PX:
        return None
    xs, ys = xs.astype(np.float64), ys.astype(np.float64)
    # Strips crossing at a shallow angle crowd their pixels most along the angle's bisector: then the
    # first strip lies along the outline's longest straight edges.
    found = _strips_at_an_angle(xs, ys) or _strips_at_an_angle(xs, ys, _edge_direction(region))
    if found is None or _loose(xs, ys, found[0], found[1]):
        return None
    measured = _measured_through(xs, ys, *found, counted)
    return measured[0] if measured else None


# Evidence that a T is two pieces: the stem's end is a straight cut at an angle to the bar, so it touches
# the bar at a corner and a wedge of tray opens between them across the rest of its width. A strip folded
# under the bar, or one branched piece, is paper across its whole width where it meets the bar.
WEDGE_GAP_PX = 2.0  # tray this far along the stem (beyond the blurred edges) in a row: the row is open
WEDGE_SHARE = 0.4  # open rows: at least this share of the stem's width, in one run from one of its sides
WEDGE_ORDER = 0.6  # the gap widens toward the open side in at least this share of row pairs (Kendall)
SAMPLE_STEP = 0.5  # px between samples along the stem


def corner_contact(pair: StripPair, distance: np.ndarray, level: float) -> float:
    """How surely the stem of this T touches the bar only at a corner, tray showing between its end and
    the bar's side: 0 (no such wedge) to 1. `distance` is the region's box of the tray-distance image
    (raw, nothing closed), `level` the region's own level."""
    if not pair.pieces[1].any():
        return 0.0
    # Paper and tray at half the dimmer paper's level: a stem of darker paper than the bar (the region's
    # level is the union's) would otherwise read as tray, its end nowhere.
    level = min(level, _stem_level(pair, distance))
    xs, ys, inside = _end_lines(pair, distance.shape)
    paper = np.zeros(xs.shape, bool)
    paper[inside] = distance[ys[inside], xs[inside]].astype(np.float64) * 2.0 >= level
    # Per row: the first sample on paper (the stem's end); the outermost rows are its ragged edges.
    first = np.where(paper.any(axis=1), paper.argmax(axis=1), paper.shape[1] - 1)[1:-1]
    if len(first) < 4:
        return 0.0
    # Tray joined to the tray round the region: print inside the paper is no gap.
    tray = (distance.astype(np.float64) * 2.0 < level).astype(np.uint8)
    _, labels = cv2.connectedComponents(tray, connectivity=8)
    border = np.unique(np.concatenate([labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0])
    rows = np.arange(1, len(first) + 1)
    middle = np.clip(first // 2, 0, xs.shape[1] - 1)
    mx, my = xs[rows, middle], ys[rows, middle]
    ok = inside[rows, middle]
    gap = first * SAMPLE_STEP
    open_ = (gap >= WEDGE_GAP_PX) & ok
    open_[open_] = outside[my[open_], mx[open_]]
    best = 0.0
    for flip in (False, True):
        rows_open, profile = (open_[::-1], gap[::-1]) if flip else (open_, gap)
        run = len(rows_open) if rows_open.all() else int(np.argmin(rows_open[::-1]))
        if run < WEDGE_SHARE * len(profile):
            continue  # the open rows ending at this side of the stem
        wedge = profile[len(profile) - run :]
        i, j = np.triu_indices(len(wedge), 1)
        steps = np.sign(wedge[j] - wedge[i])
        order = float(np.sum(steps)) / max(float(np.sum(steps != 0)), 1.0)
        if order >= WEDGE_ORDER:
            best = max(best, run / len(profile) * order)
    return best


def _stem_level(pair: StripPair, distance: np.ndarray) -> float:
    """The stem's own level (as `components` finds a particle's): the mean distance of its paper clear of
    the bar, within 75 % of its peak (print and blurred edges left out)."""
    py, px = np.nonzero(pair.pieces[1])
    own = ~_in_strip(px.astype(np.float64), py.astype(np.float64), _padded(pair.bar, 3))
    values = distance[py[own], px[own]].astype(np.float64)
    if len(values) < 4 * MIN_PARTICLE_PX:
        return np.inf
    values = values[values >= 0.75 * float(np.percentile(values, 99))]
    return float(values.mean())


def _end_lines(pair: StripPair, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample pixels (x, y and whether in the box) on lines along the stem, one per row across its width,
    each from the bar's edge (a pixel clear of it) outward along the stem for two of its widths."""
    bar, stem = pair.bar, pair.stem
    delta = stem.theta - bar.theta
    sin_d, cos_d = np.sin(delta), np.cos(delta)
    # Which side of the bar the stem lies on: where its pixels are, across the bar.
    py, px = np.nonzero(pair.pieces[1])
    _, across = _along_across(px.astype(np.float64), py.astype(np.float64), bar.theta)
    side = np.sign(float(np.median(across)) - 0.5 * (bar.v[0] + bar.v[1]))
    edge = (bar.v[1] + 1.0) if side > 0 else (bar.v[0] - 1.0)
    rows = np.arange(np.ceil(stem.v[0]), np.floor(stem.v[1]) + 1.0)
    t = np.arange(0.0, 2.0 * (stem.v[1] - stem.v[0]) + 4.0, SAMPLE_STEP)
    c, s = np.cos(stem.theta), np.sin(stem.theta)
    u = (edge - rows * cos_d)[:, None] / sin_d + side * np.sign(sin_d) * t[None, :]
    x = np.round(u * c - rows[:, None] * s).astype(np.int64)
    y = np.round(u * s + rows[:, None] * c).astype(np.int64)
    inside = (x >= 0) & (y >= 0) & (x < shape[1]) & (y < shape[0])
    return np.clip(x, 0, shape[1] - 1), np.clip(y, 0, shape[0] - 1), inside

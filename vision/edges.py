"""Sub-pixel particle areas from the coverage of their edge pixels, with a straight-edge prior.

A pixel on a particle's edge is partly paper and partly tray; its distance from the tray model is
linear in how much of it the paper covers, so the coverage of the pixels across an edge, summed, puts
the edge at a fraction of a pixel however blurred. A particle is scanned in cross-sections along the
image axis nearest its length: each cross-section runs between two edges, each placed by that sum
(everything between them is the piece's, print included).

Print near a cut edge darkens that sum, and print reaching the edge leaves no trace of it (ink on a
dark tray reads as tray): the edge seems to step inward. An edge is clean where the paper just inside
it is as bright as its section's paper. Elsewhere the edge is at least the counted pixels, or the
region as detected at a low threshold (print on paper still stands out from the tray) at the offset
the clean edges have from it. A cut edge is straight or gently curved, and print only moves it
inward: where it lies inward of the curve through its neighbours by more than a torn edge wanders, or
at all where print is near it, it is put on that curve. That catches a line of text running along an
edge, too, where the paper inside the ink reads clean again (an edge under print over most of its
length stays hidden: on a black tray ink reads as tray). A restored edge only ever moves outward, so
print cannot make a piece measure smaller than what its edges show.

Where the tray is coloured, print stands out from it as a third colour: an edge whose outermost counted
pixel is print (below half the paper's level), with the profile only falling from there to the tray,
is where the print meets the tray, placed by the coverage of print (its level on that piece) across
the pixels beyond. On a black tray print reads as tray and that evidence is absent.
"""

import numba
import numpy as np

BAND = 5  # px of an edge's blur (and the colour channels' smoothing) summed outside the detected edge
INNER = 1  # px inside the outermost counted one where an edge's blur ends
PROBE = 3  # px inside it, paper clear of the colour channels' smoothing tells whether print is near
MIN_WIDTH_PX = 9.0  # narrower pieces hold no paper clear of both edges' blur: left to their pixel count
# An edge further inward of its neighbours' curve than this, or than three times their scatter up to
# twice this, has print at it.
INWARD_PX = 1.0
CLEAN = 0.9  # paper just inside an edge at this share of its section's brightest: no print near it
INK_MIN_PX = 8  # fewer print pixels than this on a piece: no print level to measure an edge by
INK_QUANTILE = 0.25
# Of an edge's sections, the share inside the line the outer ones reach: the gaps between words of a
# line of text along the edge are more than a tenth of it.
HIDDEN_Q = 0.9
# Sections a stretch of edge holds at the least: a line of text is assumed to break between words within
# it (3 mm at 16 px/mm).
HIDDEN_STRETCH = 48
INK_RISE = 3.0  # grey levels (half) of noise: beyond the print, a rise more than this is paper, not tray


@numba.njit(cache=True, nogil=True)
def _coverage(value: float, tray: float, level: float) -> float:
    c = (value - tray) / max(level - tray, 1.0)
    return min(c, 1.0)


@numba.njit(cache=True, nogil=True)
def _value(distance, labels, lab, t, fixed, along_x, limit) -> float:
    """The distance at position `t` of a cross-section; another particle's pixel counts as tray."""
    if t < 0 or t >= limit:
        return 0.0
    y, x = (t, fixed) if along_x else (fixed, t)
    return float(distance[y, x]) if labels[y, x] == 0 or labels[y, x] == lab else 0.0


@numba.njit(cache=True, nogil=True)
def _ink(distance, labels, counted, lab, x0, y0, w, h, level) -> float:
    """The level of solid print on particle `lab`: a low quantile of its counted pixels below half its
    paper's level (a stroke's core; its blurred sides read brighter). The paper's level without print."""
    values = np.empty(w * h)
    n = 0
    for y in range(y0, y0 + h):
        for x in range(x0, x0 + w):
            if labels[y, x] == lab and counted[y, x] > 0 and 2.0 * distance[y, x] < level:
                values[n] = distance[y, x]
                n += 1
    if n < INK_MIN_PX:
        return level
    return float(np.sort(values[:n])[int(INK_QUANTILE * n)])


@numba.njit(cache=True, nogil=True)
def _print_beyond(distance, labels, lab, at, step, fixed, along_x, limit, level, tray, ink_scale) -> float:
    """How far (px) print reaches beyond the outermost counted pixel `at` (going `step`), by the coverage
    of print across the pixels there: only where that pixel is print itself (below half the paper's
    level) and the profile only falls from it to the tray (no paper beyond the print); else 0."""
    edge = _value(distance, labels, lab, at, fixed, along_x, limit)
    if ink_scale <= 0.0 or 2.0 * edge >= level:
        return 0.0
    total, lowest = 0.0, edge
    for i in range(1, BAND + 1):
        v = _value(distance, labels, lab, at + step * i, fixed, along_x, limit)
        if v > lowest + INK_RISE:
            return 0.0
        lowest = min(lowest, v)
        total += min((v - tray) * ink_scale, 1.0)
    return max(total, 0.0)


@numba.njit(cache=True, nogil=True)
def _piece(distance, labels, counted, lab, x0, y0, w, h, level, along_x, slant, visible):
    """The area (px) of particle `lab` in its box, from cross-sections across its length, and the paper
    its edges may hide (px, `_hidden`); (-1, 0) where nothing of it is counted."""
    rows, cols = labels.shape
    n_sec = w if along_x else h
    span = h if along_x else w
    start = y0 if along_x else x0
    limit = rows if along_x else cols
    firsts = np.full(n_sec, -1, np.int64)
    lasts = np.full(n_sec, -1, np.int64)
    outer_first = np.full(n_sec, -1, np.int64)  # the region as detected (a low threshold, print included)
    outer_last = np.full(n_sec, -1, np.int64)
    # The tray's own distance beside the piece (noise and texture are not paper).
    tray_sum, tray_n = 0.0, 0
    for s in range(n_sec):
        fixed = x0 + s if along_x else y0 + s
        for t in range(start, start + span):
            y, x = (t, fixed) if along_x else (fixed, t)
            if labels[y, x] == lab:
                if outer_first[s] < 0:
                    outer_first[s] = t
                outer_last[s] = t
                if counted[y, x] > 0:
                    if firsts[s] < 0:
                        firsts[s] = t
                    lasts[s] = t
        if firsts[s] < 0:
            continue
        for t in (firsts[s] - BAND - 3, firsts[s] - BAND - 2, lasts[s] + BAND + 2, lasts[s] + BAND + 3):
            if 0 <= t < limit:
                y, x = (t, fixed) if along_x else (fixed, t)
                if labels[y, x] == 0:
                    tray_sum += distance[y, x]
                    tray_n += 1
    tray = tray_sum / tray_n if tray_n >= 8 else 0.0
    scale = 1.0 / max(level - tray, 1.0)
    ink = _ink(distance, labels, counted, lab, x0, y0, w, h, level)
    # Print reaching an edge is a third colour there: where it stands out from the tray (a coloured
    # tray), the edge is where the print meets the tray, placed by the coverage of print across it.
    ink_scale = 1.0 / (ink - tray) if ink - tray >= visible else 0.0
    valid = np.flatnonzero(outer_first >= 0)
    m = len(valid)
    counted_sections = firsts >= 0
    if m == 0 or not counted_sections.any():
        return -1.0, 0.0
    lo = np.empty(m)
    hi = np.empty(m)
    clean_lo = np.zeros(m, np.bool_)
    clean_hi = np.zeros(m, np.bool_)
    for k in range(m):
        s = valid[k]
        first, last = firsts[s], lasts[s]
        if first < 0:  # detected, but nothing counted: the blurred rim of an end
            lo[k], hi[k] = np.inf, -np.inf
            continue
        fixed = x0 + s if along_x else y0 + s
        peak = 0.0
        for t in range(first, last + 1):
            peak = max(peak, _value(distance, labels, lab, t, fixed, along_x, limit))
        # An edge is clean where the paper just inside it is as bright as the section's own paper: no
        # print near enough to darken what is summed across it. Its coverage is then measured against
        # that paper (a photo print is not one tone); elsewhere against the piece's level.
        # (and nearly as bright as the piece's paper: a dark stretch of a photo has little contrast)
        floor = tray + max(CLEAN * (peak - tray), CLEAN * CLEAN * (level - tray))
        if last - first < 2 * PROBE + 2:  # too narrow to hold paper clear of both edges: all of it summed
            total = 0.0
            for t in range(first - BAND, last + BAND + 1):
                total += min((_value(distance, labels, lab, t, fixed, along_x, limit) - tray) * scale, 1.0)
            # Print may darken it anywhere: never less than its counted pixels.
            short = max(last - first + 1 - total, 0.0)
            lo[k], hi[k] = first + 0.5 * short, last + 1 - 0.5 * short
            continue
        inner_lo = min(
            _value(distance, labels, lab, first + PROBE, fixed, along_x, limit),
            _value(distance, labels, lab, first + PROBE + 1, fixed, along_x, limit),
        )
        inner_hi = min(
            _value(distance, labels, lab, last - PROBE, fixed, along_x, limit),
            _value(distance, labels, lab, last - PROBE - 1, fixed, along_x, limit),
        )
        clean_lo[k], clean_hi[k] = inner_lo >= floor, inner_hi >= floor
        scale_lo = 1.0 / max(inner_lo - tray, 1.0) if clean_lo[k] else scale
        scale_hi = 1.0 / max(inner_hi - tray, 1.0) if clean_hi[k] else scale
        # Each edge at the sum of the coverage across it: the pixels from BAND outside the outermost
        # counted one to INNER inside it (further in, a pixel is wholly paper).
        below, above = 0.0, 0.0
        for t in range(first - BAND, first + INNER + 1):
            below += min((_value(distance, labels, lab, t, fixed, along_x, limit) - tray) * scale_lo, 1.0)
        for t in range(last - INNER, last + BAND + 1):
            above += min((_value(distance, labels, lab, t, fixed, along_x, limit) - tray) * scale_hi, 1.0)
        lo[k] = first + INNER + 1 - below
        hi[k] = last - INNER + above
        # Print near an edge darkens the sum across it: there the edge is at least the counted one.
        if not clean_lo[k]:
            lo[k] = min(
                lo[k],
                first - _print_beyond(distance, labels, lab, first, -1, fixed, along_x, limit, level, tray, ink_scale),
            )
        if not clean_hi[k]:
            hi[k] = max(
                hi[k],
                last + 1 + _print_beyond(distance, labels, lab, last, 1, fixed, along_x, limit, level, tray, ink_scale),
            )
    # Where print reaches an edge, the region as detected (print on paper stands out from the tray
    # more than the tray's noise) still shows the edge, at the offset the clean edges have from it.
    outer_lo = outer_first[valid].astype(np.float64)
    outer_hi = outer_last[valid].astype(np.float64) + 1.0
    if clean_lo.sum() >= 3 and clean_hi.sum() >= 3:
        shift_lo = float(np.median(lo[clean_lo] - outer_lo[clean_lo]))
        shift_hi = float(np.median(outer_hi[clean_hi] - hi[clean_hi]))
        for k in range(m):
            if not np.isfinite(lo[k]):
                continue
            if not clean_lo[k]:
                lo[k] = min(lo[k], outer_lo[k] + shift_lo)
            if not clean_hi[k]:
                hi[k] = max(hi[k], outer_hi[k] - shift_hi)
    keep = np.isfinite(lo) & (lo < hi)
    lo, hi, clean_lo, clean_hi = lo[keep], hi[keep], clean_lo[keep], clean_hi[keep]
    m = len(lo)
    if m == 0:
        return -1.0, 0.0
    extent = float(np.median(hi - lo))
    # The piece's ends cross the sections obliquely (`slant`: the sine of the angle between the piece
    # and the sections' normal): over so many sections the edges are its ends, not its sides.
    end = int(np.ceil(extent * min(1.0, 1.5 * slant))) + 3
    half = max(5, int(2 * extent))
    # Print only ever moves an edge inward, and a cut edge is straight or gently curved: a section whose
    # edge lies well inward of the curve through its neighbours has print at its edge (a line of text
    # along it hides the edge's band wholly, and the paper inside the ink then reads clean again), and
    # its edge is put on that curve. Sections at the ends, where the sections cross the piece's ends
    # obliquely, are left as they are.
    lo = _restored(lo, clean_lo, end, half, -1.0)
    hi = _restored(hi, clean_hi, end, half, 1.0)
    area = 0.0
    for k in range(m):
        area += max(hi[k] - lo[k], 0.0)
    return area, _hidden(lo, end, -1.0) + _hidden(hi, end, 1.0)


@numba.njit(cache=True, nogil=True)
def _counted_hidden(labels, counted, lab, x0, y0, w, h, along_x, slant):
    """`_hidden` for a piece left to its pixel count: its edges are its outermost counted pixels."""
    n_sec = w if along_x else h
    span = h if along_x else w
    start = y0 if along_x else x0
    lo = np.empty(n_sec)
    hi = np.empty(n_sec)
    m = 0
    for s in range(n_sec):
        fixed = x0 + s if along_x else y0 + s
        first, last = -1, -1
        for t in range(start, start + span):
            y, x = (t, fixed) if along_x else (fixed, t)
            if labels[y, x] == lab and counted[y, x] > 0:
                if first < 0:
                    first = t
                last = t
        if first >= 0:
            lo[m], hi[m] = first, last + 1
            m += 1
    if m == 0:
        return 0.0
    lo, hi = lo[:m], hi[:m]
    end = int(np.ceil(float(np.median(hi - lo)) * min(1.0, 1.5 * slant))) + 3
    return _hidden(lo, end, -1.0) + _hidden(hi, end, 1.0)


def mask_hidden(mask: np.ndarray, along_x: bool, slant: float) -> float:
    """`_hidden` (px) of the one piece in `mask` (non-zero), its edges its outermost pixels; `along_x` and
    `slant` as for `edge_areas`."""
    h, w = mask.shape
    return float(_counted_hidden(mask, mask, mask.max(), 0, 0, w, h, along_x, slant))


@numba.njit(cache=True, nogil=True)
def _hidden(edge, end, outward):
    """Paper (px) an edge may hide under print that reads as tray: the area between the edge and the
    line its outer sections reach (the HIDDEN_Q quantile of their offsets from the quadratic through the
    whole edge, in each stretch of it). A cut edge is straight or gently curved, so where a line of text
    runs along it the gaps between its words still show how far out the paper reaches; on a clean edge
    this is about its scatter. It widens the area's uncertainty, never the area."""
    m = len(edge)
    n = m - 2 * end
    if n < 8:
        return 0.0
    w = np.zeros(8)
    c = 0.5 * m
    for j in range(end, m - end):
        d = float(j) - c
        e = edge[j]
        w[0] += 1.0
        w[1] += d
        w[2] += d * d
        w[3] += d * d * d
        w[4] += d * d * d * d
        w[5] += e
        w[6] += d * e
        w[7] += d * d * e
    offsets = np.empty(n)
    for j in range(end, m - end):
        offsets[j - end] = (edge[j] - _quadratic(w, float(j) - c)) * outward
    # The reach must hold along the whole edge: the least of its stretches' of HIDDEN_STRETCH sections or
    # more, so a bump or the wedge a neighbour's piece leaves on a split part is not taken for it.
    parts = max(1, n // HIDDEN_STRETCH)
    reach = np.inf
    for p in range(parts):
        stretch = np.sort(offsets[p * n // parts : (p + 1) * n // parts])
        reach = min(reach, stretch[int(HIDDEN_Q * (len(stretch) - 1))])
    hidden = 0.0
    for k in range(n):
        hidden += max(reach - offsets[k], 0.0)
    return hidden


@numba.njit(cache=True, nogil=True)
def _fits(edge, keep, end, half):
    """At each section k (clear of the ends), the quadratic through the kept sections within `half` of
    it other than k itself, evaluated at k; NaN without two kept sections on each side of k."""
    m = len(edge)
    out = np.full(m, np.nan)
    # Prefix sums of the kept sections' powers of their position (centred) and of their edges.
    sums = np.zeros((m + 1, 8))
    c = 0.5 * m
    for j in range(m):
        for p in range(8):
            sums[j + 1, p] = sums[j, p]
        if keep[j] and end <= j < m - end:
            d = float(j) - c
            e = edge[j]
            sums[j + 1, 0] += 1.0
            sums[j + 1, 1] += d
            sums[j + 1, 2] += d * d
            sums[j + 1, 3] += d * d * d
            sums[j + 1, 4] += d * d * d * d
            sums[j + 1, 5] += e
            sums[j + 1, 6] += d * e
            sums[j + 1, 7] += d * d * e
    w = np.empty(8)  # the window's sums, k's own left out (one buffer: this runs for every section)
    for k in range(end, m - end):
        j0, j1 = max(end, k - half), min(m - end, k + half + 1)
        for p in range(8):
            w[p] = sums[j1, p] - sums[j0, p]
        d = float(k) - c
        if keep[k]:
            e = edge[k]
            w[0] -= 1.0
            w[1] -= d
            w[2] -= d * d
            w[3] -= d * d * d
            w[4] -= d * d * d * d
            w[5] -= e
            w[6] -= d * e
            w[7] -= d * d * e
        before = sums[k, 0] - sums[j0, 0]
        after = w[0] - before
        if before < 2 or after < 2:
            continue
        if w[0] < 5:  # too few for a curve: a line
            out[k] = _line(w[0], w[1], w[2], w[5], w[6], d)
        else:
            out[k] = _quadratic(w, d)
    return out


@numba.njit(cache=True, nogil=True)
def _line(s0, s1, s2, t0, t1, d):
    slope = (s0 * t1 - s1 * t0) / max(s0 * s2 - s1 * s1, 1e-9)
    return (t0 - slope * s1) / s0 + slope * d


@numba.njit(cache=True, nogil=True)
def _quadratic(w, d):
    """The least-squares quadratic from its sums (`w`: 1, d .. d^4, e, d e, d^2 e), at d (Cramer's rule)."""
    a, b, c, e, f = w[0], w[1], w[2], w[3], w[4]
    t0, t1, t2 = w[5], w[6], w[7]
    det = a * (c * f - e * e) - b * (b * f - e * c) + c * (b * e - c * c)
    if abs(det) < 1e-9:
        return _line(a, b, c, t0, t1, d)
    q0 = t0 * (c * f - e * e) - b * (t1 * f - e * t2) + c * (t1 * e - c * t2)
    q1 = a * (t1 * f - t2 * e) - t0 * (b * f - e * c) + c * (b * t2 - t1 * c)
    q2 = a * (c * t2 - e * t1) - b * (b * t2 - t1 * c) + t0 * (b * e - c * c)
    return (q0 + q1 * d + q2 * d * d) / det


@numba.njit(cache=True, nogil=True)
def _restored(edge, clean, end, half, outward):
    """The edge of each section (`outward`: the sign of a step away from the piece), put on the curve
    through its neighbours where it lies inward of that curve by more than the edge's own scatter
    (torn fibres wander a little either way; print moves an edge only inward), or inward of it at all
    where print is near the edge (`clean` False). The sections furthest inward are set aside first, so
    a run of them does not bend the curve their way."""
    m = len(edge)
    keep = np.ones(m, np.bool_)
    curve = np.full(m, np.nan)
    for step in (4.0, 3.0, 2.0, 1.5, 1.0, 1.0):
        curve = _fits(edge, keep, end, half)
        residual = (edge - curve) * outward  # < 0: inward of the curve
        known = np.isfinite(residual) & keep
        if known.sum() < 8:
            return edge
        # The edge's scatter from its outward side: print drags only the inward side out.
        r = residual[known]
        r = r - np.median(r)
        scatter = 3.0 * 1.4826 * np.median(r[r >= 0.0])
        limit = max(step * INWARD_PX, min(max(INWARD_PX, scatter), 2.0 * INWARD_PX))
        deepest = 0.0
        for k in range(m):
            if keep[k] and np.isfinite(residual[k]):
                deepest = min(deepest, residual[k])
                if residual[k] < -limit:
                    keep[k] = False
        if deepest >= -INWARD_PX:
            break  # nothing is, or can come to be, set aside: the curve stands
    else:
        curve = _fits(edge, keep, end, half)
    out = edge.copy()
    for k in range(m):
        if (not keep[k] or not clean[k]) and np.isfinite(curve[k]) and (edge[k] - curve[k]) * outward < 0.0:
            out[k] = curve[k]
    return out


@numba.njit(cache=True, nogil=True)
def edge_areas(distance, labels, counted, bbox, level, along_x, slant, width_px, visible):
    """Per particle (label i + 1): its area in pixels from the coverage of its edges (see the module),
    -1 where it is narrower than MIN_WIDTH_PX (`width_px`) or nothing of it is counted; and the paper in
    pixels its edges may hide under print (`_hidden`; for a narrow piece, of its counted pixels' edges)."""
    n = len(level)
    out = np.full(n, -1.0)
    hidden = np.zeros(n)
    for i in range(n):
        x, y, w, h = bbox[i, 0], bbox[i, 1], bbox[i, 2], bbox[i, 3]
        if width_px[i] < MIN_WIDTH_PX:
            hidden[i] = _counted_hidden(labels, counted, i + 1, x, y, w, h, along_x[i], float(slant[i]))
            continue
        out[i], hidden[i] = _piece(
            distance, labels, counted, i + 1, x, y, w, h, float(level[i]), along_x[i], float(slant[i]), visible
        )
    return out, hidden

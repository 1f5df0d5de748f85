"""A second image generator for the vision tests and benchmark, written apart from `vision.synthetic`.

It shares no code with the product and does not import `vision`: pieces are ragged polygons along a
(possibly curled) centre line, rasterised by their own supersampling, with printed text, photo prints,
coloured and dark paper, cut-edge rims and cast shadows, touching and overlapping pieces, a tray with
texture, four ArUco markers at the tray corners, perspective, vignetting, shot and read noise, and JPEG.
Label photos take the label as a picture (whatever the product prints) and photograph it the way a
phone would; portal sequences are rendered as an overhead camera sees heads and shoulders.

Every generator is seeded and returns what it drew, in the units of the physical world (mm, people,
crossings), so tests compare measurements against the world rather than against the drawing code.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

SS = 5  # supersampling factor of the piece rasteriser
ARUCO_DICT = cv2.aruco.DICT_4X4_50


# ---------------------------------------------------------------- shred trays


@dataclass(frozen=True)
class BoardMarker:
    """One printed ArUco marker: its id, side and top-left corner on the tray, in millimetres."""

    marker_id: int
    side_mm: float
    x_mm: float
    y_mm: float


@dataclass(frozen=True)
class Piece:
    """One piece of shred as it lies on the tray (board millimetres)."""

    centre_mm: tuple[float, float]
    width_mm: float  # nominal cut width (mean across the piece)
    length_mm: float  # along the centre line, however curled
    area_mm2: float  # of the ragged outline
    paper: str  # 'white', 'pastel', 'dark', 'near_tray'
    print: str  # 'none', 'text', 'photo'
    group: int  # pieces that touch or overlap share a group; -1 for a piece lying alone
    curl_deg: float = 0.0


@dataclass(frozen=True, eq=False)
class Lot:
    image: np.ndarray = field(repr=False)  # BGR uint8, as decoded from the camera's JPEG
    pieces: tuple[Piece, ...]
    markers: tuple[BoardMarker, ...]
    px_per_mm: float  # nominal, at the tray centre
    mm_to_px: np.ndarray = field(repr=False)  # true homography from board millimetres to image pixels
    tray_bgr: tuple[float, float, float] = (0.0, 0.0, 0.0)
    empty_tray: np.ndarray | None = field(default=None, repr=False)  # the same camera, no shred


@dataclass(frozen=True)
class Cut:
    """A kind of shred: nominal width and length in mm and their spread."""

    width_mm: float
    length_mm: float
    spread: float = 0.12


PAPERS = {
    "white": [(235, 238, 240), (222, 228, 232), (210, 218, 225)],
    "pastel": [(170, 225, 240), (225, 200, 170), (190, 235, 190), (215, 190, 235)],
    # Dark blue, dark red, dark green, brown: 1.6-3x the tray's brightness
    "dark": [(110, 52, 30), (40, 40, 105), (50, 85, 40), (45, 60, 80)],
}
INK = (38, 36, 40)


def _rough(rng: np.random.Generator, n: int, amplitude: float, correlation: int) -> np.ndarray:
    """Zero-mean, spatially correlated edge noise (fibre tears on a cut edge)."""
    raw = rng.normal(0.0, 1.0, n + 2 * correlation)
    kernel = np.hanning(2 * correlation + 1)
    smooth = np.convolve(raw, kernel / kernel.sum(), mode="same")[correlation : correlation + n]
    smooth -= smooth.mean()
    scale = smooth.std() or 1.0
    return smooth / scale * amplitude


def _outline(
    rng: np.random.Generator,
    centre: np.ndarray,
    angle: float,
    width: float,
    length: float,
    curl_deg: float,
    rough: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ragged outline polygon (mm) and its centre line, for a strip bent along a circular arc."""
    n = max(12, int(length / 0.25))
    s = np.linspace(-length / 2, length / 2, n)
    curvature = math.radians(curl_deg) / length if curl_deg else 0.0
    heading = angle + curvature * s
    # Integrate the centre line from its middle so `centre` stays the piece's midpoint.
    step = np.diff(s, prepend=s[0])
    dx, dy = np.cos(heading) * step, np.sin(heading) * step
    x, y = np.cumsum(dx), np.cumsum(dy)
    mid = n // 2
    line = np.stack([x - x[mid], y - y[mid]], axis=1) + centre
    normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    left = line + normal * (width / 2 + _rough(rng, n, rough, 3))[:, None]
    right = line - normal * (width / 2 + _rough(rng, n, rough, 3))[:, None]
    # Knife-cut ends: straight with a slight jitter.
    end_jitter = rng.normal(0.0, rough * 0.5, size=4)
    tangent = np.stack([np.cos(heading), np.sin(heading)], axis=1)
    left[0] -= tangent[0] * end_jitter[0]
    right[0] -= tangent[0] * end_jitter[1]
    left[-1] += tangent[-1] * end_jitter[2]
    right[-1] += tangent[-1] * end_jitter[3]
    return np.concatenate([left, right[::-1]]), line


def _folded(
    rng: np.random.Generator,
    start: np.ndarray,
    angle: float,
    width: float,
    stretches: list[tuple[float, float]],
    rough: float,
) -> list[np.ndarray]:
    """A strip folded flat at creases: one ragged outline (mm) per stretch between folds, each running
    on half a width into the fold so the paper at the crease is covered (the upper layer on top)."""
    polys = []
    point, heading = np.asarray(start, float), angle
    for k, (length, turn) in enumerate(stretches):
        heading += math.radians(turn)
        d = np.array([math.cos(heading), math.sin(heading)])
        before = width / 2 if k > 0 else 0.0
        after = width / 2 if k < len(stretches) - 1 else 0.0
        middle = point + d * (length + after - before) / 2
        poly, _ = _outline(rng, middle, heading, width, length + before + after, 0.0, rough)
        polys.append(poly)
        point = point + d * length
    return polys


def _shoelace(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _project(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.asarray(pts, dtype=np.float64)
    w = h[2, 0] * p[:, 0] + h[2, 1] * p[:, 1] + h[2, 2]
    return np.stack(
        [(h[0, 0] * p[:, 0] + h[0, 1] * p[:, 1] + h[0, 2]) / w, (h[1, 0] * p[:, 0] + h[1, 1] * p[:, 1] + h[1, 2]) / w],
        axis=1,
    )


def _coverage(poly_px: np.ndarray, pad: int) -> tuple[np.ndarray, int, int]:
    """Fractional pixel coverage of a polygon (pixel (i, j) spans [j, j+1) x [i, i+1)), with its offset."""
    x0 = math.floor(poly_px[:, 0].min()) - pad
    y0 = math.floor(poly_px[:, 1].min()) - pad
    x1 = math.ceil(poly_px[:, 0].max()) + pad
    y1 = math.ceil(poly_px[:, 1].max()) + pad
    w, h = x1 - x0, y1 - y0
    fine = np.zeros((h * SS, w * SS), np.uint8)
    pts = (poly_px - [x0, y0]) * SS - 0.5  # sample points at the centres of the fine cells
    cv2.fillPoly(fine, [np.round(pts * 256).astype(np.int32)], 1, cv2.LINE_8, 8)
    cover = fine.reshape(h, SS, w, SS).mean(axis=(1, 3), dtype=np.float32)
    return cover, x0, y0


def _albedo(
    rng: np.random.Generator, shape: tuple[int, int], base: np.ndarray, kind: str, px_per_mm: float
) -> np.ndarray:
    """The printed face of a piece in its bounding box: plain paper, text lines or a photo print."""
    h, w = shape
    face = np.empty((h, w, 3), np.float32)
    face[:] = base
    if kind == "text":
        line_gap = max(3, round(rng.uniform(1.2, 1.8) * px_per_mm))
        stroke = max(1, round(0.25 * px_per_mm))
        phase = int(rng.integers(0, line_gap))
        for y in range(phase, h, line_gap):
            x = int(rng.integers(0, max(1, w // 6)))
            while x < w:
                word = int(rng.integers(2, 7) * 0.35 * px_per_mm)
                cv2.line(face, (x, y), (min(w - 1, x + word), y), INK, stroke)
                # letters: vertical ticks
                for tx in range(x, min(w - 1, x + word), max(2, int(0.4 * px_per_mm))):
                    cv2.line(face, (tx, y - stroke), (tx, y + stroke), INK, 1)
                x += word + int(0.5 * px_per_mm)
    elif kind == "photo":
        coarse = rng.uniform(0, 1, size=(max(2, h // 12), max(2, w // 12), 3)).astype(np.float32)
        field_ = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        field_ = cv2.GaussianBlur(field_, (0, 0), 2.0)
        # Photo tones from ink black (~2x a black tray) to highlights, in colour, with halftone grain.
        tones = 55 + 190 * np.clip(field_, 0, 1)
        grain = rng.normal(0, 9, size=(h, w, 1)).astype(np.float32)
        face[:] = np.clip(tones + grain, 50, 250)
    return face


@dataclass
class _Canvas:
    colour: np.ndarray  # float32 BGR
    px_per_mm: float
    h: np.ndarray
    print_turn: np.random.Generator | None = None  # set: text square to each piece (LotSpec.print_square_to_piece)

    def paint(self, rng: np.random.Generator, poly_mm: np.ndarray, base: tuple[int, int, int], kind: str) -> None:
        poly = _project(self.h, poly_mm)
        cover, x0, y0 = _coverage(poly, pad=4)
        ch, cw = cover.shape
        H, W = self.colour.shape[:2]
        if x0 < 0 or y0 < 0 or x0 + cw > W or y0 + ch > H:
            cx0, cy0 = max(0, -x0), max(0, -y0)
            cx1, cy1 = min(cw, W - x0), min(ch, H - y0)
            if cx1 <= cx0 or cy1 <= cy0:
                return
        else:
            cx0, cy0, cx1, cy1 = 0, 0, cw, ch
        cover = cover[cy0:cy1, cx0:cx1]
        ox, oy = x0 + cx0, y0 + cy0
        region = self.colour[oy : oy + cover.shape[0], ox : ox + cover.shape[1]]
        # Cast shadow, slightly offset and soft, darkens whatever lies beneath (tray or other paper).
        shift = np.float32([[1, 0, 0.25 * self.px_per_mm], [0, 1, 0.35 * self.px_per_mm]])
        shadow = cv2.warpAffine(cover, shift, (cover.shape[1], cover.shape[0]))
        shadow = cv2.GaussianBlur(shadow, (0, 0), 0.25 * self.px_per_mm + 0.5)
        region *= (1.0 - 0.45 * shadow)[:, :, None]
        # At the step of a sheet's edge lying on paper, a thin line of shade (ambient occlusion).
        step = cv2.GaussianBlur(cv2.dilate(cover, np.ones((3, 3), np.uint8)), (0, 0), 0.6) - cover
        region *= (1.0 - 0.3 * np.clip(step, 0, 1))[:, :, None]
        if kind == "text" and self.print_turn is not None:
            face = self._square_text(rng, poly, cover.shape, np.array(base, np.float32))
        else:
            face = _albedo(rng, cover.shape, np.array(base, np.float32), kind, self.px_per_mm)
        # Light falls off where the paper curls away; the cut edge itself reads a little darker.
        tilt = np.linspace(rng.uniform(0.86, 1.0), rng.uniform(0.94, 1.04), cover.shape[1], dtype=np.float32)
        face *= tilt[None, :, None]
        rim = np.clip(4.0 * cover * (1.0 - cover), 0, 1)
        face *= (1.0 - 0.08 * rim)[:, :, None]
        a = cover[:, :, None]
        region[:] = region * (1 - a) + face * a


    def _square_text(
        self, rng: np.random.Generator, poly: np.ndarray, shape: tuple[int, int], base: np.ndarray
    ) -> np.ndarray:
        """Text lines along the piece's long axis or across it (either, as the sheet was fed), skewed a little."""
        assert self.print_turn is not None
        centred = poly - poly.mean(axis=0)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        axis = math.degrees(math.atan2(vectors[1, 1], vectors[0, 1]))  # the long axis, in image pixels
        turn = axis + (90.0 if self.print_turn.random() < 0.5 else 0.0) + self.print_turn.normal(0.0, 2.0)
        h, w = shape
        side = math.ceil(math.hypot(h, w)) + 2
        face = _albedo(rng, (side, side), base, "text", self.px_per_mm)
        # Rows of the square face turned onto the piece's axis (cv2 turns counter-clockwise for a positive angle,
        # with y down), then its middle cut to the piece's box.
        turned = cv2.warpAffine(face, cv2.getRotationMatrix2D((side / 2, side / 2), -turn, 1.0), (side, side),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        y0, x0 = (side - h) // 2, (side - w) // 2
        return np.ascontiguousarray(turned[y0 : y0 + h, x0 : x0 + w])


def _board(tray_mm: tuple[float, float], side: float, inset: float) -> tuple[BoardMarker, ...]:
    w, h = tray_mm
    return (
        BoardMarker(0, side, inset, inset),
        BoardMarker(1, side, w - inset - side, inset),
        BoardMarker(2, side, w - inset - side, h - inset - side),
        BoardMarker(3, side, inset, h - inset - side),
    )


def _camera(
    rng: np.random.Generator, size_px: tuple[int, int], tray_mm: tuple[float, float], tilt: float
) -> np.ndarray:
    """Homography from tray millimetres to image pixels: the tray fills the frame, seen slightly off axis."""
    w, h = size_px
    margin = 0.015
    dst = np.float32(
        [
            [w * margin, h * margin],
            [w * (1 - margin), h * margin],
            [w * (1 - margin), h * (1 - margin)],
            [w * margin, h * (1 - margin)],
        ]
    )
    dst += rng.uniform(-tilt, tilt, size=(4, 2)).astype(np.float32) * np.float32([w, h])
    src = np.float32([[0, 0], [tray_mm[0], 0], [tray_mm[0], tray_mm[1]], [0, tray_mm[1]]])
    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


def _finish(
    rng: np.random.Generator,
    colour: np.ndarray,
    blur: float,
    vignette: float,
    noise: float,
    jpeg: int,
    noise_seed: int = 0,
    shot: float = 0.05,
) -> np.ndarray:
    h, w = colour.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
    r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (0.25 * (w * w + h * h))
    light = (1.0 - vignette * r2) * (1.0 + rng.uniform(-0.08, 0.08) * (xx / w - 0.5))
    image = colour * light[:, :, None]
    if blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    # Shot noise grows with the signal, read noise does not.
    grain = np.random.default_rng([int(rng.integers(0, 2**31)), noise_seed])
    image = image + grain.normal(0, 1, image.shape).astype(np.float32) * np.sqrt(noise**2 + shot * np.maximum(image, 0))
    out = np.clip(image, 0, 255).astype(np.uint8)
    if jpeg:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        assert ok
        out = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return out


def _tray_canvas(
    rng: np.random.Generator, size_px: tuple[int, int], tray_bgr: tuple[float, float, float]
) -> np.ndarray:
    w, h = size_px
    colour = np.empty((h, w, 3), np.float32)
    colour[:] = tray_bgr
    # Felt-like texture: a few levels of low-contrast, fine-grained variation.
    texture = cv2.GaussianBlur(rng.normal(0, 1, (h // 2, w // 2)).astype(np.float32), (0, 0), 1.2)
    texture = cv2.resize(texture, (w, h)) * (1.5 / (texture.std() or 1.0))
    colour += texture[:, :, None]
    return colour


def _draw_markers(colour: np.ndarray, h: np.ndarray, markers: tuple[BoardMarker, ...], quiet_mm: float) -> None:
    dictionary = cv2.aruco.getPredefinedDictionary(ARUCO_DICT)
    for m in markers:
        cells = 6  # 4x4 data + border
        side_px = 60 * cells
        img = cv2.aruco.generateImageMarker(dictionary, m.marker_id, side_px, borderBits=1)
        q = round(quiet_mm / m.side_mm * side_px)
        sheet = np.full((side_px + 2 * q, side_px + 2 * q), 245, np.uint8)
        sheet[q : q + side_px, q : q + side_px] = img
        scale = m.side_mm / side_px
        src = np.float32([[0, 0], [sheet.shape[1], 0], [sheet.shape[1], sheet.shape[0]], [0, sheet.shape[0]]])
        corners_mm = np.float64(
            [
                [m.x_mm - q * scale, m.y_mm - q * scale],
                [m.x_mm + (side_px + q) * scale, m.y_mm - q * scale],
                [m.x_mm + (side_px + q) * scale, m.y_mm + (side_px + q) * scale],
                [m.x_mm - q * scale, m.y_mm + (side_px + q) * scale],
            ]
        )
        dst = _project(h, corners_mm).astype(np.float32)
        warp = cv2.getPerspectiveTransform(src, dst)
        size = (colour.shape[1], colour.shape[0])
        warped = cv2.warpPerspective(sheet.astype(np.float32), warp, size, flags=cv2.INTER_AREA)
        inside = cv2.warpPerspective(np.ones_like(sheet, np.float32), warp, size, flags=cv2.INTER_LINEAR)
        colour[:] = colour * (1 - inside[:, :, None]) + (warped * inside)[:, :, None]


class _Layout:
    """Free space on the tray on a 0.5 mm grid, so pieces only touch where a lot means them to."""

    def __init__(
        self, tray_mm: tuple[float, float], markers: tuple[BoardMarker, ...], quiet_mm: float, cell: float
    ) -> None:
        self.cell = cell
        self.free = np.ones((int(tray_mm[1] / self.cell), int(tray_mm[0] / self.cell)), bool)
        edge = int(5 / self.cell)
        self.free[:edge, :] = self.free[-edge:, :] = False
        self.free[:, :edge] = self.free[:, -edge:] = False
        for m in markers:
            keep = quiet_mm + 0.3 * m.side_mm
            self._take(
                np.float64([[m.x_mm - keep, m.y_mm - keep], [m.x_mm + m.side_mm + keep, m.y_mm + m.side_mm + keep]]),
                0.0,
            )

    def _cells(self, poly: np.ndarray, gap: float, clip: bool = False) -> tuple[slice, slice] | None:
        lo = np.floor((poly.min(axis=0) - gap) / self.cell).astype(int)
        hi = np.ceil((poly.max(axis=0) + gap) / self.cell).astype(int)
        if clip:
            lo = np.maximum(lo, 0)
            hi = np.minimum(hi, [self.free.shape[1] - 1, self.free.shape[0] - 1])
        if lo.min() < 0 or hi[0] >= self.free.shape[1] or hi[1] >= self.free.shape[0]:
            return None
        return slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1)

    def _take(self, poly: np.ndarray, gap: float) -> None:
        cells = self._cells(poly, gap, clip=True)
        if cells is not None:
            self.free[cells] = False

    def fits(self, poly: np.ndarray, gap: float) -> bool:
        cells = self._cells(poly, gap)
        if cells is None:
            return False
        mask = np.zeros(self.free[cells].shape, np.uint8)
        lo = np.array([cells[1].start, cells[0].start]) * self.cell
        pts = ((poly - lo) / self.cell).reshape(-1, 1, 2)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
        mask = cv2.dilate(mask, np.ones((2 * int(gap / self.cell) + 1,) * 2, np.uint8))
        return bool(self.free[cells][mask > 0].all())

    def take(self, poly: np.ndarray, gap: float) -> None:
        cells = self._cells(poly, gap)
        if cells is None:
            return
        mask = np.zeros(self.free[cells].shape, np.uint8)
        lo = np.array([cells[1].start, cells[0].start]) * self.cell
        cv2.fillPoly(mask, [np.round(((poly - lo) / self.cell).reshape(-1, 1, 2)).astype(np.int32)], 1)
        mask = cv2.dilate(mask, np.ones((2 * int(gap / self.cell) + 1,) * 2, np.uint8))
        view = self.free[cells]
        view[mask > 0] = False


@dataclass(frozen=True)
class LotSpec:
    """What to put on the tray. Counts are targets: a crowded tray takes what fits."""

    seed: int = 0
    size_px: tuple[int, int] = (1600, 1200)
    px_per_mm: float = 10.0
    cut: Cut = Cut(1.6, 12.0)
    count: int = 80
    touching_pairs: int = 2
    overlapping_pairs: int = 0
    angled_pairs: int = 0  # two pieces meeting end to end at an angle (an L or a V), as two strips fall
    curled_share: float = 0.15  # share of pieces bent along an arc (up to 70 degrees)
    printed_share: float = 0.6
    photo_share: float = 0.05
    coloured_share: float = 0.15  # pastel; `dark_share` of the compliant pieces are dark paper
    dark_share: float = 0.05
    extra: tuple[ExtraPiece, ...] = ()
    tray_bgr: tuple[float, float, float] = (30.0, 31.0, 34.0)
    tilt: float = 0.02
    blur_px: float = 1.0
    vignette: float = 0.25
    noise: float = 2.0  # read noise (grey levels)
    shot_noise: float = 0.05  # shot-noise variance per grey level of signal (0: none, for measurement studies)
    jpeg: int = 90
    marker_side_mm: float = 0.0  # 0: 14 % of the tray's short side, 10..40 mm
    with_empty_tray: bool = False
    # The same lot after the operator pulled each touching or overlapping group apart: every piece drawn as
    # without it, all but the first of each group moved whole to free tray (same paper, print, light, camera).
    spread: bool = False
    # Text lines drawn square to the piece, as on a sheet the shredder cut along its sides (lines along the
    # strip or across it, a few degrees of skew), instead of along the image rows whatever the piece's angle.
    # Off by default: every test and bench lot is drawn as before; bench/vision_size_causes.py compares them.
    print_square_to_piece: bool = False


@dataclass(frozen=True)
class ExtraPiece:
    """A deliberately placed piece (an adversary): size, paper, print, curl; `bridge_mm` > 0 cuts it in two
    halves joined by a bridge that wide (a partly cut piece)."""

    width_mm: float
    length_mm: float
    paper: str = "white"
    print: str = "none"
    curl_deg: float = 0.0
    bridge_mm: float = 0.0
    bgr: tuple[int, int, int] | None = None
    # A strip folded flat: after `length_mm` it runs on through each (length mm, turn degrees) in turn,
    # each fold a crease across it (its `length_mm` is then the first stretch only).
    folds: tuple[tuple[float, float], ...] = ()


def make_lot(spec: LotSpec) -> Lot:
    rng = np.random.default_rng(spec.seed)
    w_px, h_px = spec.size_px
    tray_mm = (w_px / spec.px_per_mm, h_px / spec.px_per_mm)
    side = spec.marker_side_mm or float(np.clip(0.14 * min(tray_mm), 10.0, 40.0))
    quiet = 0.15 * side
    markers = _board(tray_mm, side, 4.0)
    h = _camera(rng, spec.size_px, tray_mm, spec.tilt)
    canvas = _Canvas(_tray_canvas(rng, spec.size_px, spec.tray_bgr), spec.px_per_mm, h,
                     np.random.default_rng([spec.seed, 11]) if spec.print_square_to_piece else None)
    empty = canvas.colour.copy() if spec.with_empty_tray else None
    _draw_markers(canvas.colour, h, markers, quiet)
    if empty is not None:
        _draw_markers(empty, h, markers, quiet)
    layout = _Layout(tray_mm, markers, quiet, 0.25 if spec.cut.width_mm < 1.0 else 0.5)
    pieces: list[Piece] = []
    drawn: list[tuple[np.ndarray, tuple[int, int, int], str]] = []

    def paper_of(kind: str) -> tuple[int, int, int]:
        # A compliant lot uses paper unlike the tray (a site picks its tray so): near-tray paper is an
        # adversarial case of its own.
        choices = [c for c in PAPERS[kind] if np.abs(np.subtract(c, spec.tray_bgr)).max() > 45]
        b = np.array(choices[int(rng.integers(0, len(choices)))], float)
        return tuple(int(v) for v in np.clip(b + rng.normal(0, 4, 3), 0, 255))  # type: ignore[return-value]

    def random_style() -> tuple[str, str]:
        u = rng.random()
        paper = "dark" if u < spec.dark_share else ("pastel" if u < spec.dark_share + spec.coloured_share else "white")
        v = rng.random()
        kind = "photo" if v < spec.photo_share else ("text" if v < spec.photo_share + spec.printed_share else "none")
        return paper, kind

    def sized() -> tuple[float, float]:
        width = spec.cut.width_mm * rng.uniform(1 - spec.cut.spread, 1.0)
        length = spec.cut.length_mm * rng.uniform(1 - spec.cut.spread, 1.0)
        return width, length

    def place(
        width: float, length: float, curl: float, gap: float, tries: int = 60
    ) -> tuple[np.ndarray, np.ndarray, float] | None:
        for _ in range(tries):
            centre = rng.uniform([0, 0], tray_mm)
            angle = rng.uniform(0, math.pi)
            poly, line = _outline(rng, centre, angle, width, length, curl, rough=min(0.06, 0.05 * width))
            if layout.fits(poly, gap):
                layout.take(poly, gap)
                return poly, line, angle
        return None

    group = 0
    for extra in spec.extra:
        if extra.folds:
            stretches = [(extra.length_mm, 0.0), *extra.folds]
            for _ in range(400):
                start, angle = rng.uniform([0, 0], tray_mm), rng.uniform(0, math.pi)
                polys = _folded(rng, start, angle, extra.width_mm, stretches, min(0.06, 0.05 * extra.width_mm))
                hull = np.concatenate(polys)
                if layout.fits(hull[cv2.convexHull(hull.astype(np.float32), returnPoints=False).ravel()], 1.5):
                    break
            else:
                raise RuntimeError("no room for the folded piece")
            for poly in polys:
                layout.take(poly, 1.5)
            base = extra.bgr or paper_of(extra.paper if extra.paper in PAPERS else "white")
            drawn += [(poly, base, extra.print) for poly in polys]
            total = sum(length for length, _ in stretches)
            # Its centre: the middle of the first stretch, which lies on paper whatever the folds.
            first = start + np.array([math.cos(angle), math.sin(angle)]) * extra.length_mm / 2
            pieces.append(
                Piece(tuple(first), extra.width_mm, total, extra.width_mm * total, extra.paper, extra.print, -1)  # type: ignore[arg-type]
            )
            continue
        got = place(extra.width_mm, extra.length_mm, extra.curl_deg, 1.5, tries=400)
        if got is None:
            raise RuntimeError("no room for the extra piece")
        poly, line, _ = got
        base = extra.bgr or paper_of(extra.paper if extra.paper in PAPERS else "white")
        drawn.append((poly, base, extra.print))
        area = _shoelace(poly)
        if extra.bridge_mm > 0:
            # A partly cut piece: a kerf from each side at mid-length leaves a bridge of paper.
            mid = len(line) // 2
            centre = line[mid]
            direction = line[min(mid + 1, len(line) - 1)] - line[mid - 1]
            direction /= np.linalg.norm(direction)
            normal = np.array([-direction[1], direction[0]])
            kerf = 0.12
            depth = (extra.width_mm - extra.bridge_mm) / 2
            for sign in (1, -1):
                a = centre + normal * sign * (extra.width_mm / 2 + 0.2)
                b = centre + normal * sign * (extra.bridge_mm / 2)
                notch = np.array(
                    [a - direction * kerf, a + direction * kerf, b + direction * kerf, b - direction * kerf]
                )
                drawn.append((notch, (0, 0, 0), "cut"))
            area -= 2 * depth * 2 * kerf
        pieces.append(
            Piece(
                tuple(line[len(line) // 2]),
                extra.width_mm,
                extra.length_mm,
                area,
                extra.paper,
                extra.print,
                -1,
                extra.curl_deg,
            )
        )  # type: ignore[arg-type]

    def place_group(make, tries: int = 80) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """Place pieces built by `make(centre, angle)` together, clear of everything else on the tray."""
        for _ in range(tries):
            outlines = make(rng.uniform([0, 0], tray_mm), rng.uniform(0, math.pi))
            if all(layout.fits(poly, 1.0) for poly, _ in outlines):
                for poly, _ in outlines:
                    layout.take(poly, 1.0)
                return outlines
        return None

    def rough_of(width: float) -> float:
        return min(0.06, 0.05 * width)

    def touching(width: float, length: float):  # type: ignore[no-untyped-def]
        def make(centre: np.ndarray, a1: float) -> list[tuple[np.ndarray, np.ndarray]]:
            # The corner of the second piece rests against the long edge of the first, as pieces fall.
            d1 = np.array([math.cos(a1), math.sin(a1)])
            n1 = np.array([-d1[1], d1[0]])
            a2 = a1 + rng.choice([-1, 1]) * rng.uniform(0.5, 1.3)
            d2 = np.array([math.cos(a2), math.sin(a2)])
            if np.dot(d2, n1) < 0:
                d2 = -d2
                a2 += math.pi
            n2 = np.array([-d2[1], d2[0]])
            sigma = 1.0 if np.dot(n2, n1) > 0 else -1.0
            contact = centre + d1 * rng.uniform(-0.25, 0.25) * length + n1 * (width / 2 - 0.12)
            c2 = contact + d2 * length / 2 + n2 * sigma * width / 2
            first = _outline(rng, centre, a1, width, length, 0.0, rough_of(width))
            second = _outline(rng, c2, a2, width, length, 0.0, rough_of(width))
            return [first, second]

        return make

    def crossing(width: float, length: float):  # type: ignore[no-untyped-def]
        def make(centre: np.ndarray, a1: float) -> list[tuple[np.ndarray, np.ndarray]]:
            a2 = a1 + rng.uniform(0.6, 1.4)
            offset = rng.normal(0, 0.2 * length, 2)
            return [
                _outline(rng, centre, a1, width, length, 0.0, rough_of(width)),
                _outline(rng, centre + offset, a2, width, length, 0.0, rough_of(width)),
            ]

        return make

    def angled(width: float, length: float):  # type: ignore[no-untyped-def]
        def make(centre: np.ndarray, a1: float) -> list[tuple[np.ndarray, np.ndarray]]:
            # The second piece's end lies on the first's end, turned 35..115 degrees from it: an L or a V.
            d1 = np.array([math.cos(a1), math.sin(a1)])
            a2 = a1 + math.pi - rng.choice([-1, 1]) * rng.uniform(0.6, 2.0)
            d2 = np.array([math.cos(a2), math.sin(a2)])
            corner = centre + d1 * (length - width) / 2
            return [
                _outline(rng, centre, a1, width, length, 0.0, rough_of(width)),
                _outline(rng, corner + d2 * (length - width) / 2, a2, width, length, 0.0, rough_of(width)),
            ]

        return make

    followers: list[tuple[int, int]] = []  # (in `drawn`, in `pieces`) all but the first piece of each group
    builders = ((touching, spec.touching_pairs), (crossing, spec.overlapping_pairs), (angled, spec.angled_pairs))
    for builder, n_groups in builders:
        for _ in range(n_groups):
            width, length = sized()
            got_group = place_group(builder(width, length))
            if got_group is None:
                continue
            for k, (poly, line) in enumerate(got_group):
                if k:
                    followers.append((len(drawn), len(pieces)))
                paper, kind = random_style()
                drawn.append((poly, paper_of(paper), kind))
                pieces.append(Piece(tuple(line[len(line) // 2]), width, length, _shoelace(poly), paper, kind, group))  # type: ignore[arg-type]
            group += 1

    for _ in range(spec.count):
        width, length = sized()
        curl = float(rng.uniform(25, 70)) if rng.random() < spec.curled_share else 0.0
        got = place(width, length, curl, 0.6)
        if got is None:
            continue
        poly, line, _ = got
        paper, kind = random_style()
        drawn.append((poly, paper_of(paper), kind))
        pieces.append(Piece(tuple(line[len(line) // 2]), width, length, _shoelace(poly), paper, kind, -1, curl))  # type: ignore[arg-type]

    if spread_these := (followers if spec.spread else []):
        # Its own generator, so all drawn after (print, light, noise) is as in the frame before spreading.
        mover = np.random.default_rng([spec.seed, 7])
        for i, j in spread_these:
            poly, base, kind = drawn[i]
            moved = _moved_to_free_tray(mover, layout, poly, tray_mm)
            drawn[i] = (moved, base, kind)
            x, y = pieces[j].centre_mm + moved.mean(axis=0) - poly.mean(axis=0)
            pieces[j] = replace(pieces[j], centre_mm=(float(x), float(y)), group=-1)

    for poly, base, kind in drawn:
        if kind == "cut":
            _paint_tray(canvas, poly, spec.tray_bgr)
        else:
            canvas.paint(rng, poly, base, kind)
    light = int(rng.integers(0, 2**31))  # the same lamp lights the lot and the empty tray
    camera = (spec.blur_px, spec.vignette, spec.noise, spec.jpeg)
    image = _finish(np.random.default_rng(light), canvas.colour, *camera, shot=spec.shot_noise)
    empty_image = None
    if empty is not None:
        empty_image = _finish(np.random.default_rng(light), empty, *camera, noise_seed=1, shot=spec.shot_noise)
    return Lot(image, tuple(pieces), markers, spec.px_per_mm, h, spec.tray_bgr, empty_image)


def _moved_to_free_tray(
    rng: np.random.Generator, layout: _Layout, poly: np.ndarray, tray_mm: tuple[float, float]
) -> np.ndarray:
    """The piece's outline moved whole (slid and turned) to free tray, clear of everything on it by the gap
    lone pieces keep: random spots first, then every free cell in turn (a crowded tray has little room)."""
    around = poly - poly.mean(axis=0)

    def turned(angle: float) -> np.ndarray:
        c, s = math.cos(angle), math.sin(angle)
        return around @ np.array([[c, s], [-s, c]])

    for _ in range(500):
        moved = turned(rng.uniform(0, math.pi)) + rng.uniform([0, 0], tray_mm)
        if layout.fits(moved, 0.6):
            layout.take(moved, 0.6)
            return moved
    for angle in np.linspace(0, math.pi, 6, endpoint=False):
        # Where the whole footprint (grown by the gap) lies on free cells: the free map eroded by it.
        shape = turned(float(angle))
        lo = shape.min(axis=0) - 0.6 - layout.cell
        size = np.ceil((shape.max(axis=0) + 0.6 + layout.cell - lo) / layout.cell).astype(int) + 1
        footprint = np.zeros((size[1], size[0]), np.uint8)
        cv2.fillPoly(footprint, [np.round((shape - lo) / layout.cell).astype(np.int32).reshape(-1, 1, 2)], 1)
        footprint = cv2.dilate(footprint, np.ones((2 * int(0.6 / layout.cell) + 1,) * 2, np.uint8))
        origin = np.round(-lo / layout.cell).astype(int)
        room = cv2.erode(
            layout.free.astype(np.uint8), footprint, anchor=(int(origin[0]), int(origin[1])), borderValue=0
        )
        for cell in np.argwhere(room)[rng.permutation(int(room.sum()))][:50]:
            moved = shape + cell[::-1] * layout.cell
            if layout.fits(moved, 0.6):
                layout.take(moved, 0.6)
                return moved
    raise RuntimeError("no free tray to spread a piece onto")


def _paint_tray(canvas: _Canvas, poly_mm: np.ndarray, tray_bgr: tuple[float, float, float]) -> None:
    """A knife cut through paper: the tray shows through the kerf."""
    poly = _project(canvas.h, poly_mm)
    cover, x0, y0 = _coverage(poly, pad=2)
    region = canvas.colour[y0 : y0 + cover.shape[0], x0 : x0 + cover.shape[1]]
    a = cover[: region.shape[0], : region.shape[1], None]
    region[:] = region * (1 - a) + np.array(tray_bgr, np.float32) * a


# Lots by security level: cuts comfortably inside each level's limits, as a shredder rated for it makes.
LEVEL_CUTS = {
    "P-4": (Cut(4.0, 24.0), 10.0),  # 96 mm², 4 mm wide (limit 160 mm², 6 mm)
    "P-5": (Cut(1.5, 12.0), 12.0),  # 18 mm², 1.5 mm (limit 30 mm², 2 mm)
    "P-7": (Cut(0.75, 4.0), 16.0),  # 3 mm², 0.75 mm (limit 5 mm², 1 mm)
    "NSA-02-01": (Cut(0.75, 4.0), 16.0),  # 1 x 5 mm
}


TRAYS = {
    "black": (30.0, 31.0, 34.0),  # black felt: white paper stands out, black ink does not
    "blue": (150.0, 92.0, 34.0),  # a blue cutting mat: paper, ink and dark paper all differ from it
}


def realistic_lot(
    level: str,
    seed: int,
    size_px: tuple[int, int] = (1600, 1200),
    count: int | None = None,
    tray: str = "blue",
    **options: object,
) -> Lot:
    """A compliant lot for `level` as an operator spreads it: print, colour, curl, a few touching pieces."""
    cut, px_per_mm = LEVEL_CUTS[level]
    rng = np.random.default_rng(seed + 1000)
    tray_mm2 = size_px[0] * size_px[1] / px_per_mm**2
    default_count = int(0.12 * tray_mm2 / (cut.width_mm * cut.length_mm))
    spec = LotSpec(
        seed=seed,
        size_px=size_px,
        px_per_mm=px_per_mm,
        cut=cut,
        count=count if count is not None else default_count,
        touching_pairs=int(rng.integers(1, 5)),
        overlapping_pairs=int(rng.random() < 0.25),
        blur_px=float(rng.uniform(0.7, 1.4)),
        noise=float(rng.uniform(1.5, 3.5)),
        jpeg=int(rng.integers(80, 96)),
        vignette=float(rng.uniform(0.1, 0.35)),
        tilt=float(rng.uniform(0.0, 0.03)),
        tray_bgr=TRAYS[tray],
    )
    for key, value in options.items():
        spec = _with(spec, key, value)
    return make_lot(spec)


def _with(spec: LotSpec, key: str, value: object) -> LotSpec:
    return replace(spec, **{key: value})


def adversarial_lots(
    size_px: tuple[int, int] = (1600, 1200), seed: int = 0, spread: bool = False
) -> dict[str, tuple[str, Lot]]:
    """Named lots that must never pass, each with the level it is judged against (`spread`: the same lots
    with their touching pieces pulled apart)."""

    def nsa(extra: ExtraPiece, tray: str = "black", **kw: object) -> Lot:
        return realistic_lot("NSA-02-01", seed, size_px, extra=(extra,), tray=tray, spread=spread, **kw)

    lots = {
        "dark_blue_paper": ("NSA-02-01", nsa(ExtraPiece(10, 40, bgr=(110, 52, 30)))),
        "dark_red_paper": ("NSA-02-01", nsa(ExtraPiece(10, 40, bgr=(40, 40, 105)))),
        "dark_green_paper": ("NSA-02-01", nsa(ExtraPiece(10, 40, bgr=(50, 85, 40)))),
        "printed_photo_fragment": ("NSA-02-01", nsa(ExtraPiece(10, 30, print="photo"))),
        "bridged_piece": ("NSA-02-01", nsa(ExtraPiece(0.9, 9.0, bridge_mm=0.3))),
        "curled_long_strip": ("NSA-02-01", nsa(ExtraPiece(0.8, 10.0, curl_deg=120))),
        # Print across a bent strip must not cut it into compliant halves.
        "curled_printed_strip": ("NSA-02-01", nsa(ExtraPiece(0.8, 10.0, curl_deg=90, print="text"))),
        "near_tray_paper": ("NSA-02-01", nsa(ExtraPiece(10, 30, bgr=(40, 41, 44)))),
        "near_blue_tray_paper": ("NSA-02-01", nsa(ExtraPiece(10, 30, bgr=(140, 90, 40)), tray="blue")),
        "dark_blue_paper_on_blue_tray": ("NSA-02-01", nsa(ExtraPiece(10, 40, bgr=(110, 52, 30)), tray="blue")),
        "printed_photo_on_blue_tray": ("NSA-02-01", nsa(ExtraPiece(10, 30, print="photo"), tray="blue")),
        # Strips folded flat twice or more: no stretch may be measured apart from the others. A letter
        # Z (two parallel stretches joined by a diagonal); a Z whose last stretch folds back across its
        # first, hiding the short stretch between the folds (it looks like two strips meeting, the
        # shape two_strips splits: 0.7 x 8.1 mm as two compliant 3.6 mm strips); a zigzag.
        "z_fold": ("NSA-02-01", nsa(ExtraPiece(0.9, 4.5, folds=((5.0, 145.0), (4.5, -145.0))))),
        "z_fold_crossing": ("NSA-02-01", nsa(ExtraPiece(0.7, 3.6, folds=((0.9, -90.0), (3.6, -150.0))))),
        "s_zigzag": ("NSA-02-01", nsa(ExtraPiece(0.9, 3.5, folds=((3.5, 120.0), (3.5, -120.0), (3.5, 120.0))))),
        "wide_strip_p5": (
            "P-5",
            realistic_lot("P-5", seed, size_px, extra=(ExtraPiece(3.0, 8.0, print="text"),), spread=spread),
        ),
    }
    return lots


def thousands_with_one_oversized(
    seed: int = 0, size_px: tuple[int, int] = (4000, 3000), oversized: bool = True, spread: bool = False
) -> Lot:
    """NSA-02-01 micro-cut: a few thousand compliant particles and (optionally) one 0.9 x 14 mm strip."""
    extra = (ExtraPiece(0.9, 14.0, print="text"),) if oversized else ()
    return realistic_lot("NSA-02-01", seed, size_px, count=3000, extra=extra, curled_share=0.05, spread=spread)


# ---------------------------------------------------------------- label photos


@dataclass(frozen=True, eq=False)
class LabelShot:
    image: np.ndarray = field(repr=False)  # BGR uint8
    degradation: str
    target_visible: bool  # False when the target's codes are covered (a neighbour may be in view)


DEGRADATIONS = ("clean", "tilt", "rotation", "defocus", "low_light", "jpeg30", "motion_blur", "covered", "glare_noise")


def _bench(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    bench = np.full((h, w, 3), (120, 125, 118), np.float32)
    bench += cv2.resize(
        rng.normal(0, 12, (h // 40, w // 40, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    for _ in range(8):  # clutter: cables, tools, other labels' backs
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(bench, p1, p2, tuple(float(v) for v in rng.uniform(20, 200, 3)), int(rng.integers(3, 15)))
    return bench


def _place_label(canvas: np.ndarray, label: np.ndarray, quad: np.ndarray, shade: float) -> None:
    lh, lw = label.shape[:2]
    src = np.float32([[0, 0], [lw, 0], [lw, lh], [0, lh]])
    warp = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    size = (canvas.shape[1], canvas.shape[0])
    lab = label if label.ndim == 3 else cv2.cvtColor(label, cv2.COLOR_GRAY2BGR)
    warped = cv2.warpPerspective(lab.astype(np.float32), warp, size, flags=cv2.INTER_AREA)
    inside = cv2.warpPerspective(np.ones((lh, lw), np.float32), warp, size, flags=cv2.INTER_LINEAR)[:, :, None]
    canvas[:] = canvas * (1 - inside) + warped * shade * inside


def _quad(
    rng: np.random.Generator, centre: np.ndarray, width: float, aspect: float, angle: float, tilt: float
) -> np.ndarray:
    h = width * aspect
    box = np.array([[-width / 2, -h / 2], [width / 2, -h / 2], [width / 2, h / 2], [-width / 2, h / 2]])
    # Tilt: one side farther from the camera than the other (a keystone).
    box[1:3, 1] *= 1 - tilt
    box[1:3, 0] -= tilt * width * 0.2
    c, s = math.cos(angle), math.sin(angle)
    return box @ np.array([[c, s], [-s, c]]) + centre


def _motion(image: np.ndarray, length: int, angle: float) -> np.ndarray:
    k = np.zeros((length * 2 + 1, length * 2 + 1), np.float32)
    c = length
    dx, dy = math.cos(angle), math.sin(angle)
    for t in np.linspace(-length / 2, length / 2, 4 * length):
        k[round(c + dy * t), round(c + dx * t)] += 1
    return cv2.filter2D(image, -1, k / k.sum())


def label_shot(
    label: np.ndarray,
    degradation: str,
    seed: int,
    size_px: tuple[int, int] = (1920, 1080),
    neighbour: np.ndarray | None = None,
    label_width_share: float = 0.36,
) -> LabelShot:
    """A phone/fixed-camera photo of `label` (grey or BGR picture of the printed label) under one degradation.

    'covered' lays a thumb over 10-20 % of the label, over a code. With `neighbour` (another label's
    picture) a second label lies beside the first; with degradation 'target_covered' the target's codes
    are hidden entirely under a hand while the neighbour stays in view.
    """
    rng = np.random.default_rng(seed)
    w, h = size_px
    canvas = _bench(rng, size_px)
    aspect = label.shape[0] / label.shape[1]
    width = label_width_share * w * rng.uniform(0.85, 1.1)
    centre = np.array([w * rng.uniform(0.35, 0.5), h * rng.uniform(0.4, 0.6)])
    angle = math.radians(rng.uniform(-8, 8))
    tilt = 0.0
    if degradation == "rotation":
        angle = math.radians(rng.uniform(20, 340))
    if degradation == "tilt":
        tilt = rng.uniform(0.25, 0.4)
    quad = _quad(rng, centre, width, aspect, angle, tilt)
    shade = rng.uniform(0.8, 0.95)
    _place_label(canvas, label, quad, shade)
    if neighbour is not None:
        ncentre = centre + np.array([width * 1.15, rng.uniform(-0.1, 0.1) * h])
        _place_label(canvas, neighbour, _quad(rng, ncentre, width, aspect, angle, 0.0), shade)
    visible = True
    if degradation == "covered":
        # A thumb: a skin-toned ellipse over 10-20 % of the label, landing on one of its codes.
        area = width * width * aspect * rng.uniform(0.10, 0.20)
        ax = math.sqrt(area / math.pi * 1.6)
        ay = area / (math.pi * ax)
        u = rng.uniform(0.15, 0.85)
        v = rng.uniform(0.2, 0.8)
        spot = quad[0] + (quad[1] - quad[0]) * u + (quad[3] - quad[0]) * v
        cv2.ellipse(
            canvas,
            (int(spot[0]), int(spot[1])),
            (int(ax), int(ay)),
            float(rng.uniform(0, 180)),
            0,
            360,
            (120, 150, 200),
            -1,
            cv2.LINE_AA,
        )
    if degradation == "target_covered":
        cv2.fillConvexPoly(
            canvas,
            np.round(_quad(rng, centre, width * 1.08, aspect * 1.1, angle, 0.0)).astype(np.int32),
            (110, 140, 190),
            cv2.LINE_AA,
        )
        visible = False
    image = canvas
    if degradation == "defocus":
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.8, 2.5))
    elif degradation == "motion_blur":
        image = _motion(image, 10, rng.uniform(0, math.pi))
    else:
        image = cv2.GaussianBlur(image, (0, 0), 0.7)
    if degradation == "low_light":
        image = image * rng.uniform(0.18, 0.28)
        noise = 4.0
    else:
        noise = 2.5 if degradation != "glare_noise" else 7.0
    if degradation == "glare_noise":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        g = quad.mean(axis=0) + rng.uniform(-0.25, 0.25, 2) * width
        image = image + 80 * np.exp(-((xx - g[0]) ** 2 + (yy - g[1]) ** 2) / (2 * (0.15 * width) ** 2))[:, :, None]
    image = image + rng.normal(0, noise, image.shape).astype(np.float32)
    out = np.clip(image, 0, 255).astype(np.uint8)
    quality = 30 if degradation == "jpeg30" else 88
    ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return LabelShot(cv2.imdecode(data, cv2.IMREAD_COLOR), degradation, visible)


# ---------------------------------------------------------------- portal sequences


@dataclass(frozen=True)
class Walker:
    """Someone (or something) moving through the portal's view; positions in pixels per frame index."""

    kind: str  # 'person' or 'trolley' or 'box'
    path: tuple[tuple[int, float, float], ...]  # (frame, x, y) key points; linear between them


@dataclass(frozen=True, eq=False)
class PortalSequence:
    frames: tuple[tuple[int, np.ndarray], ...] = field(repr=False)
    people_per_frame: tuple[int, ...]
    crossings_in: int  # left-to-right crossings of the line x = line_x
    crossings_out: int
    line_x: float
    person_radius_px: float
    name: str = ""


def _interp(path: tuple[tuple[int, float, float], ...], frame: int) -> tuple[float, float] | None:
    if frame < path[0][0] or frame > path[-1][0]:
        return None
    for (f0, x0, y0), (f1, x1, y1) in itertools.pairwise(path):
        if f0 <= frame <= f1:
            t = 0.0 if f1 == f0 else (frame - f0) / (f1 - f0)
            return x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
    return None


def _floor(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    floor = np.full((h, w, 3), (150, 146, 140), np.float32)
    tiles = 40
    for ty in range(0, h, tiles):
        for tx in range(0, w, tiles):
            floor[ty : ty + tiles, tx : tx + tiles] += rng.normal(0, 5)
    floor[:, :, :] += cv2.GaussianBlur(rng.normal(0, 6, (h, w)).astype(np.float32), (0, 0), 2)[:, :, None]
    cv2.line(floor, (w // 2, 0), (w // 2, h), (60, 160, 200), 3)  # painted line at the door
    cv2.rectangle(floor, (w - 40, h // 2 - 30), (w - 5, h // 2 + 30), (70, 70, 75), -1)  # badge reader post
    return floor


def _draw_person(
    frame: np.ndarray,
    x: float,
    y: float,
    r: float,
    heading: float,
    clothes: tuple[float, ...],
    hair: tuple[float, ...],
    phase: float,
) -> None:
    """Overhead: shoulders (an ellipse across the heading), a head, arms swinging; a soft shadow."""
    across = heading + math.pi / 2
    shadow = frame.copy()
    cv2.ellipse(
        shadow,
        (int(x + 4), int(y + 5)),
        (int(r * 1.15), int(r * 0.65)),
        math.degrees(across),
        0,
        360,
        (0, 0, 0),
        -1,
        cv2.LINE_AA,
    )
    frame[:] = frame * 0.75 + shadow * 0.25
    swing = math.sin(phase) * r * 0.35
    for side in (-1, 1):
        ax = x + math.cos(across) * side * r * 0.95 + math.cos(heading) * swing * side
        ay = y + math.sin(across) * side * r * 0.95 + math.sin(heading) * swing * side
        cv2.circle(frame, (int(ax), int(ay)), int(r * 0.28), clothes, -1, cv2.LINE_AA)
    cv2.ellipse(
        frame, (int(x), int(y)), (int(r), int(r * 0.55)), math.degrees(across), 0, 360, clothes, -1, cv2.LINE_AA
    )
    shade = tuple(c * 0.8 for c in clothes)
    cv2.ellipse(
        frame,
        (int(x - 2), int(y - 2)),
        (int(r * 0.6), int(r * 0.3)),
        math.degrees(across),
        0,
        360,
        shade,
        -1,
        cv2.LINE_AA,
    )
    cv2.circle(
        frame,
        (int(x + math.cos(heading) * r * 0.1), int(y + math.sin(heading) * r * 0.1)),
        int(r * 0.42),
        hair,
        -1,
        cv2.LINE_AA,
    )


def _draw_object(frame: np.ndarray, kind: str, x: float, y: float, r: float) -> None:
    if kind == "trolley":
        w, h = r * 2.2, r * 1.3
        cv2.rectangle(frame, (int(x - w / 2), int(y - h / 2)), (int(x + w / 2), int(y + h / 2)), (90, 95, 100), -1)
        for gx in np.linspace(x - w / 2 + 4, x + w / 2 - 4, 5):
            cv2.line(frame, (int(gx), int(y - h / 2)), (int(gx), int(y + h / 2)), (160, 165, 170), 2)
        cv2.rectangle(
            frame, (int(x - w / 2 + 6), int(y - h / 2 + 6)), (int(x + w / 6), int(y + h / 2 - 6)), (60, 130, 170), -1
        )  # a box on it
    else:
        cv2.rectangle(
            frame, (int(x - r * 0.8), int(y - r * 0.6)), (int(x + r * 0.8), int(y + r * 0.6)), (70, 140, 185), -1
        )
        cv2.line(frame, (int(x - r * 0.8), int(y)), (int(x + r * 0.8), int(y)), (40, 90, 140), 2)


def portal_sequence(
    name: str,
    seed: int,
    size_px: tuple[int, int] = (320, 240),
    fps: float = 10.0,
) -> PortalSequence:
    """A named overhead-camera sequence at a portal with its truth.

    Names: 'single', 'two_lanes', 'abreast', 'tailgate', 'still_at_reader' (someone waits 30 s at the
    badge reader, then leaves), 'lights_on' (a lamp switches on mid-crossing), 'trolley' (a person
    pushes a trolley through), 'box_left' (a box is set down and left), 'crowd' (three, then one back).
    """
    rng = np.random.default_rng(seed)
    w, h = size_px
    r = 16.0 * rng.uniform(0.9, 1.1)
    line_x = w / 2
    walkers: list[Walker] = []
    speed = rng.uniform(9, 14)  # px per frame: a brisk walk at 10 frames per second
    span = w + 4 * r
    frames_to_cross = int(span / speed)
    lead = 12  # empty frames first
    n_frames = lead + frames_to_cross + 10
    lanes = rng.permutation(np.linspace(h * 0.22, h * 0.78, 4))

    def across(start: int, lane: float, direction: int, v: float = speed, kind: str = "person") -> Walker:
        x0 = -2 * r if direction > 0 else w + 2 * r
        x1 = w + 2 * r if direction > 0 else -2 * r
        frames = int(abs(x1 - x0) / v)
        return Walker(kind, ((start, x0, lane), (start + frames, x1, lane)))

    direction = 1 if rng.random() < 0.5 else -1
    lights: tuple[int, float] | None = None
    if name == "single":
        walkers.append(across(lead, lanes[0], direction))
    elif name == "two_lanes":
        walkers += [across(lead, lanes[0], direction), across(lead + int(rng.integers(0, 8)), lanes[1], -direction)]
    elif name == "abreast":
        lane = h / 2 + rng.uniform(-10, 10)
        walkers += [across(lead, lane - r * 1.05, direction), across(lead, lane + r * 1.05, direction)]
    elif name == "tailgate":
        lane = lanes[0]
        gap = math.ceil(2.6 * r / speed)
        walkers += [across(lead, lane, direction), across(lead + gap, lane, direction)]
    elif name == "still_at_reader":
        # Walk to the reader (right of the line... wherever the post is), stand 30 s, then walk on through.
        stand = int(30 * fps)
        ry = h / 2
        x0 = -2 * r
        xs = line_x - 2.2 * r
        t1 = lead + int((xs - x0) / speed)
        t2 = t1 + stand
        t3 = t2 + int((w + 2 * r - xs) / speed)
        walkers.append(Walker("person", ((lead, x0, ry), (t1, xs, ry), (t2, xs + 0.5, ry + 0.5), (t3, w + 2 * r, ry))))
        n_frames = t3 + 10
    elif name == "lights_on":
        walkers.append(across(lead, lanes[0], direction))
        lights = (lead + frames_to_cross // 2 - 2, rng.uniform(1.5, 1.9))
    elif name == "trolley":
        lane = h / 2
        person = across(lead, lane, direction)
        offset = direction * 2.4 * r
        trolley = Walker("trolley", tuple((f, x + offset, y) for f, x, y in person.path))
        walkers += [person, trolley]
        n_frames += 8
    elif name == "box_left":
        ry = lanes[0]
        x0 = -2 * r
        xs = line_x - 3 * r
        t1 = lead + int((xs - x0) / speed)
        person = Walker("person", ((lead, x0, ry), (t1, xs, ry), (t1 + int((w + 2 * r - xs) / speed), w + 2 * r, ry)))
        box = Walker("box", ((t1, xs, ry + 1.8 * r), (10_000, xs, ry + 1.8 * r)))
        walkers += [person, box]
        n_frames = t1 + int((w + 2 * r - xs) / speed) + 40
    elif name == "crowd":
        walkers += [across(lead + int(rng.integers(0, 6)), lanes[i], direction) for i in range(3)]
        walkers.append(across(lead + frames_to_cross // 2, lanes[3], -direction))
        n_frames += frames_to_cross // 2
    else:
        raise ValueError(name)

    floor = _floor(rng, size_px)
    styles = [
        (tuple(float(v) for v in rng.uniform(20, 230, 3)), tuple(float(v) for v in rng.uniform(10, 90, 3)))
        for _ in walkers
    ]
    frames: list[tuple[int, np.ndarray]] = []
    counts: list[int] = []
    last_side: dict[int, int] = {}
    n_in = n_out = 0
    for f in range(n_frames):
        frame = floor.copy()
        visible = 0
        for i, walker in enumerate(walkers):
            pos = _interp(walker.path, f)
            if pos is None:
                continue
            x, y = pos
            if walker.kind == "person":
                previous = _interp(walker.path, f - 1) or pos
                heading = math.atan2(y - previous[1], x - previous[0]) if previous != pos else 0.0
                _draw_person(frame, x, y, r, heading, styles[i][0], styles[i][1], f * 0.6)
                if r <= x <= w - r:  # the whole body in view
                    visible += 1
                side = 1 if x > line_x else -1
                if i in last_side and last_side[i] != side:
                    n_in += side > 0
                    n_out += side < 0
                last_side[i] = side
            else:
                _draw_object(frame, walker.kind, x, y, r)
        if lights is not None and f >= lights[0]:
            frame = frame * lights[1] + 10
        frame = cv2.GaussianBlur(frame, (0, 0), 0.6) + rng.normal(0, 2.5, frame.shape).astype(np.float32)
        counts.append(visible)
        frames.append((int(f * 1e6 / fps), np.clip(frame, 0, 255).astype(np.uint8)))
    return PortalSequence(tuple(frames), tuple(counts), n_in, n_out, line_x, r, name)


PORTAL_SCENES = (
    "single",
    "two_lanes",
    "abreast",
    "tailgate",
    "still_at_reader",
    "lights_on",
    "trolley",
    "box_left",
    "crowd",
)

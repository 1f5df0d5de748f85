"""Synthetic camera images with ground truth: shred trays, photographed labels, portal scenes.

Product code: the tests, the benchmark and the demo all draw from here, so every generator is seeded
and returns the truth it drew alongside the image.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from vision.calibration import MarkerSpec

TRAY_GREY = 38
FLOOR_GREY = 62
PAPER_GREY = 222
SUPERSAMPLE = 8


@dataclass(frozen=True)
class TrueParticle:
    centre_mm: tuple[float, float]
    length_mm: float
    width_mm: float
    angle_deg: float

    @property
    def area_mm2(self) -> float:
        return self.length_mm * self.width_mm


@dataclass(frozen=True, eq=False)
class ShredTray:
    image: np.ndarray = field(repr=False)  # BGR uint8
    particles: tuple[TrueParticle, ...]
    marker: MarkerSpec
    px_per_mm: float
    mm_to_px: np.ndarray = field(repr=False)  # true homography from tray millimetres to image pixels


def _rect_corners(p: TrueParticle) -> np.ndarray:
    ((cx, cy), (w, h), a) = ((p.centre_mm[0], p.centre_mm[1]), (p.length_mm, p.width_mm), p.angle_deg)
    return cv2.boxPoints(((cx, cy), (w, h), a))


class _Occupancy:
    """A 1 mm grid of taken tray area, so particles only touch where a generator means them to."""

    def __init__(self, width_mm: float, height_mm: float, border_mm: float) -> None:
        self.taken = np.zeros((int(height_mm) + 1, int(width_mm) + 1), dtype=bool)
        b = int(np.ceil(border_mm))
        self.taken[:b, :] = self.taken[-b:, :] = True
        self.taken[:, :b] = self.taken[:, -b:] = True

    def try_take(self, corners_mm: np.ndarray, gap_mm: float) -> bool:
        x0, y0 = np.floor(corners_mm.min(axis=0) - gap_mm).astype(int)
        x1, y1 = np.ceil(corners_mm.max(axis=0) + gap_mm).astype(int)
        if x0 < 0 or y0 < 0 or y1 >= self.taken.shape[0] or x1 >= self.taken.shape[1]:
            return False
        window = self.taken[y0 : y1 + 1, x0 : x1 + 1]
        if window.any():
            return False
        window[:] = True
        return True


def _place(
    rng: np.random.Generator, grid: _Occupancy, group: list[TrueParticle], size_mm: tuple[float, float],
    tries: int = 400,
) -> list[TrueParticle]:
    """Move a group of particles (given around the origin) to a free random spot; [] if none found."""
    for _ in range(tries):
        dx, dy = rng.uniform(0, size_mm[0]), rng.uniform(0, size_mm[1])
        moved = [
            TrueParticle((p.centre_mm[0] + dx, p.centre_mm[1] + dy), p.length_mm, p.width_mm, p.angle_deg)
            for p in group
        ]
        corners = np.concatenate([_rect_corners(p) for p in moved])
        if grid.try_take(corners, gap_mm=1.0):
            return moved
    return []


def _touching_pair(rng: np.random.Generator, length: float, width: float) -> list[TrueParticle]:
    """Two particles meeting corner to corner: a narrow neck, the case watershed has to split."""
    angle = float(rng.uniform(0, 180))
    along = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    across = np.array([-along[1], along[0]])
    offset = along * length * 0.97 + across * width * 0.85
    return [
        TrueParticle((0.0, 0.0), length, width, angle),
        TrueParticle((float(offset[0]), float(offset[1])), length, width, angle),
    ]


def _fill_exact(canvas: np.ndarray, corners_px: np.ndarray, tone: int) -> None:
    """Blend a polygon by its true pixel coverage (pixel i spans [i-0.5, i+0.5]), found by supersampling.

    OpenCV's own fill adds about a pixel to every edge; ground truth must not carry that bias.
    """
    x0, y0 = np.floor(corners_px.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners_px.max(axis=0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    s = SUPERSAMPLE
    fine = np.zeros(((y1 - y0) * s, (x1 - x0) * s), dtype=np.uint8)
    centre = corners_px.mean(axis=0)
    # Pull edges in by half a fine pixel to undo the fill's inclusive edges.
    inset = corners_px - np.sign(corners_px - centre) * (0.5 / s)
    fine_pts = (inset - np.array([x0, y0]) + 0.5) * s - 0.5
    cv2.fillPoly(fine, [np.round(fine_pts * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    coverage = cv2.resize(fine, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = np.round(region + (tone - region) * coverage).astype(np.uint8)


def _perspective(size: tuple[int, int], amount: float, rng: np.random.Generator) -> np.ndarray:
    w, h = size
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(0.3, 1.0, size=(4, 2)) * amount * np.array([w, h])
    inward = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    return cv2.getPerspectiveTransform(src, (src + inward * jitter).astype(np.float32))


def _finish(
    gray: np.ndarray, rng: np.random.Generator, gradient: float, blur_px: float, noise_sigma: float,
) -> np.ndarray:
    """Lighting gradient, optics blur and sensor noise, then a faint colour cast."""
    h, w = gray.shape
    image = gray.astype(np.float32)
    if gradient > 0:
        ramp_x = np.linspace(1.0 - gradient, 1.0, w, dtype=np.float32)
        ramp_y = np.linspace(1.0, 1.0 - gradient / 2, h, dtype=np.float32)
        image *= ramp_y[:, None]
        image *= ramp_x[None, :]
    if blur_px > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur_px)
    if noise_sigma > 0:
        image += rng.normal(0.0, noise_sigma, size=image.shape).astype(np.float32)
    gray8 = np.clip(image, 0, 255).astype(np.uint8)
    return cv2.merge([gray8, cv2.add(gray8, 4), cv2.subtract(gray8, 3)])


def shred_tray(
    *,
    seed: int = 0,
    size_px: tuple[int, int] = (4000, 3000),
    px_per_mm: float = 10.0,
    particle_mm: tuple[float, float] = (4.0, 30.0),
    count: int = 200,
    size_jitter: float = 0.15,
    touching_pairs: int = 0,
    oversized_mm: Sequence[tuple[float, float]] = (),
    perspective: float = 0.0,
    blur_px: float = 0.8,
    noise_sigma: float = 3.0,
    gradient: float = 0.25,
    shadows: bool = True,
    marker: MarkerSpec = MarkerSpec(),
) -> ShredTray:
    """A dark tray photographed from above with light particles of known size (width, length in mm)."""
    rng = np.random.default_rng(seed)
    width_px, height_px = size_px
    tray_mm = (width_px / px_per_mm, height_px / px_per_mm)
    border = 6.0 + perspective * max(tray_mm) * 1.2
    grid = _Occupancy(tray_mm[0], tray_mm[1], border)
    marker_xy = (border + 0.5 * marker.side_mm, border + 0.5 * marker.side_mm)
    quiet = 0.3 * marker.side_mm
    zone = np.array([[marker_xy[0] - quiet, marker_xy[1] - quiet],
                     [marker_xy[0] + marker.side_mm + quiet, marker_xy[1] + marker.side_mm + quiet]])
    grid.try_take(zone, gap_mm=1.0)

    particles: list[TrueParticle] = []
    for width, length in oversized_mm:
        particles += _place(rng, grid, [TrueParticle((0, 0), length, width, float(rng.uniform(0, 180)))], tray_mm)
    base_width, base_length = particle_mm
    for _ in range(touching_pairs):
        particles += _place(rng, grid, _touching_pair(rng, base_length, base_width), tray_mm)
    for _ in range(count):
        scale_l, scale_w = rng.uniform(1.0 - size_jitter, 1.0, size=2)
        single = TrueParticle((0, 0), base_length * scale_l, base_width * scale_w, float(rng.uniform(0, 180)))
        particles += _place(rng, grid, [single], tray_mm, tries=60)

    canvas = np.full((height_px, width_px), TRAY_GREY, dtype=np.uint8)
    outlines = [_rect_corners(p) * px_per_mm for p in particles]
    if shadows:
        offset = np.array([0.5, 0.7]) * px_per_mm
        for corners in outlines:
            _fill_exact(canvas, corners + offset, 18)
    for corners in outlines:
        _fill_exact(canvas, corners, int(PAPER_GREY - rng.integers(0, 25)))

    dictionary = cv2.aruco.getPredefinedDictionary(marker.dictionary)
    side = int(round(marker.side_mm * px_per_mm))
    x0, y0 = (int(round(v * px_per_mm)) for v in marker_xy)
    q = int(round(quiet * px_per_mm * 0.8))
    canvas[y0 - q : y0 + side + q, x0 - q : x0 + side + q] = 235
    canvas[y0 : y0 + side, x0 : x0 + side] = cv2.aruco.generateImageMarker(dictionary, marker.marker_id or 0, side)
    # The marker's nominal corners sit at whole pixels; record the truth from where it really is.
    marker_origin = np.array([x0, y0]) / px_per_mm
    particles = [
        TrueParticle((p.centre_mm[0] - marker_origin[0], p.centre_mm[1] - marker_origin[1]),
                     p.length_mm, p.width_mm, p.angle_deg)
        for p in particles
    ]

    warp = _perspective(size_px, perspective, rng) if perspective > 0 else np.eye(3)
    if perspective > 0:
        canvas = cv2.warpPerspective(canvas, warp, size_px, flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=FLOOR_GREY)
    mm_to_canvas = np.array([[px_per_mm, 0, x0], [0, px_per_mm, y0], [0, 0, 1]], dtype=np.float64)
    image = _finish(canvas, rng, gradient, blur_px, noise_sigma)
    return ShredTray(image, tuple(particles), marker, px_per_mm, warp @ mm_to_canvas)

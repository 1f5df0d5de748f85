"""Synthetic camera images with ground truth: shred trays, photographed labels, portal scenes.

Product code: the tests, the benchmark and the demo all draw from here, so every generator is seeded
and returns the truth it drew alongside the image.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import zxingcpp

from vision.calibration import MarkerBoard
from vision.labels import QR_SIDE_PX, LabelData, Symbology, render_label

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


@dataclass(frozen=True)
class FoldedStrip:
    """A strip folded flat: `stretches` are (length mm, turn degrees at the fold before it), the first
    turn ignored. Drawn as one paper; no stretch of it is a particle of its own."""

    width_mm: float
    stretches: tuple[tuple[float, float], ...]

    @property
    def length_mm(self) -> float:
        return sum(length for length, _ in self.stretches)


# Strips folded flat that must never pass NSA/CSS 02-01 (1 x 5 mm): a letter Z, a Z whose last stretch
# folds back across its first over the short stretch between the folds (two strips meeting, to the
# eye), a zigzag.
FOLDS = {
    "z_fold": FoldedStrip(0.9, ((4.5, 0.0), (5.0, 145.0), (4.5, -145.0))),
    "z_fold_crossing": FoldedStrip(0.7, ((3.6, 0.0), (0.9, -90.0), (3.6, -150.0))),
    "s_zigzag": FoldedStrip(0.9, ((3.5, 0.0), (3.5, 120.0), (3.5, -120.0), (3.5, 120.0))),
}


@dataclass(frozen=True)
class TrueFold:
    strip: FoldedStrip
    centre_mm: tuple[float, float]  # the middle of its first stretch (paper whatever the folds)


@dataclass(frozen=True, eq=False)
class ShredTray:
    image: np.ndarray = field(repr=False)  # BGR uint8
    particles: tuple[TrueParticle, ...]
    board: MarkerBoard  # one marker, at the board's origin
    px_per_mm: float
    mm_to_px: np.ndarray = field(repr=False)  # true homography from tray millimetres to image pixels
    folded: tuple[TrueFold, ...] = ()


def _fold_stretches(strip: FoldedStrip, angle: float) -> list[TrueParticle]:
    """The stretches of a folded strip as rectangles from the origin, each running half a width into its
    folds so the crease is covered."""
    out = []
    point, heading = np.zeros(2), angle
    for k, (length, turn) in enumerate(strip.stretches):
        heading += turn if k else 0.0
        d = np.array([np.cos(np.radians(heading)), np.sin(np.radians(heading))])
        before = strip.width_mm / 2 if k else 0.0
        after = strip.width_mm / 2 if k < len(strip.stretches) - 1 else 0.0
        middle = point + d * (length + after - before) / 2
        out.append(TrueParticle((float(middle[0]), float(middle[1])), length + before + after, strip.width_mm, heading))
        point = point + d * length
    return out


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
    rng: np.random.Generator,
    grid: _Occupancy,
    group: list[TrueParticle],
    size_mm: tuple[float, float],
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


def _spread_onto(
    rng: np.random.Generator, grid: _Occupancy, piece: TrueParticle, size_mm: tuple[float, float]
) -> TrueParticle:
    """`piece` moved to free tray: a random spot, else the first free one lying square to the tray (a
    crowded tray has little room left, as an operator finds)."""
    moved = _place(rng, grid, [replace(piece, centre_mm=(0.0, 0.0))], size_mm, tries=200)
    if moved:
        return moved[0]
    for angle in (0.0, 90.0):
        for y in np.arange(0.0, size_mm[1], 0.5):
            for x in np.arange(0.0, size_mm[0], 0.5):
                candidate = replace(piece, centre_mm=(float(x), float(y)), angle_deg=angle)
                if grid.try_take(_rect_corners(candidate), gap_mm=1.0):
                    return candidate
    raise RuntimeError("no free tray to spread a touching piece onto")


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


def _t_pair(rng: np.random.Generator, length: float, width: float, corner: bool = False) -> list[TrueParticle]:
    """Two particles at an angle, the end of one resting on the long side of the other (a T): the middle
    of its end just over the other's edge, or (`corner`) only its corner, tray between the rest of its
    end and the other's side, as a piece that fell against another lies."""
    angle = float(rng.uniform(0, 180))
    turn = float(rng.choice([-1, 1]) * rng.uniform(35, 75))
    along = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    across = np.array([-along[1], along[0]])
    stem = np.array([np.cos(np.radians(angle + turn)), np.sin(np.radians(angle + turn))])
    if stem @ across < 0:
        stem = -stem
    contact = along * length * rng.uniform(-0.2, 0.2) + across * width * 0.45
    if corner:
        # The end's middle half a width from the corner that touches, on the side away from the bar.
        normal = np.array([-stem[1], stem[0]])
        contact = contact + normal * np.sign(normal @ across) * width / 2
    centre = contact + stem * length / 2
    return [
        TrueParticle((0.0, 0.0), length, width, angle),
        TrueParticle(
            (float(centre[0]), float(centre[1])), length, width, float(np.degrees(np.arctan2(stem[1], stem[0])))
        ),
    ]


def _angle_pair(rng: np.random.Generator, length: float, width: float) -> list[TrueParticle]:
    """Two particles meeting end to end at an angle (an L or a V): the end of the second lies across the
    end of the first, the two 40 to 110 degrees apart, as two strips that fell against each other."""
    angle = float(rng.uniform(0, 180))
    apart = float(rng.uniform(40, 110))
    along = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    other = angle + 180.0 - apart * float(rng.choice([-1, 1]))
    back = np.array([np.cos(np.radians(other)), np.sin(np.radians(other))])
    # Both ends a half width past the corner where their centre lines meet.
    corner = along * (length - width) / 2
    centre = corner + back * (length - width) / 2
    return [
        TrueParticle((0.0, 0.0), length, width, angle),
        TrueParticle((float(centre[0]), float(centre[1])), length, width, other),
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
    gray: np.ndarray,
    rng: np.random.Generator,
    gradient: float,
    blur_px: float,
    noise_sigma: float,
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
    t_pairs: int = 0,
    corner_pairs: int = 0,
    angle_pairs: int = 0,
    oversized_mm: Sequence[tuple[float, float]] = (),
    folded: Sequence[FoldedStrip] = (),
    perspective: float = 0.0,
    blur_px: float = 0.8,
    noise_sigma: float = 3.0,
    gradient: float = 0.25,
    shadows: bool = True,
    board: MarkerBoard = MarkerBoard(),
    spread: bool = False,
) -> ShredTray:
    """A dark tray photographed from above with light particles of known size (width, length in mm).

    `spread`: the same tray after the operator has pulled each touching pair apart: every piece as without
    it, but the second of each pair moved to free tray (the same paper, lit and photographed alike)."""
    if len(board.markers) != 1:
        raise ValueError("shred_tray draws a one-marker board")
    marker = board.markers[0]
    rng = np.random.default_rng(seed)
    width_px, height_px = size_px
    tray_mm = (width_px / px_per_mm, height_px / px_per_mm)
    border = 6.0 + perspective * max(tray_mm) * 1.2
    grid = _Occupancy(tray_mm[0], tray_mm[1], border)
    marker_xy = (border + 0.5 * marker.side_mm, border + 0.5 * marker.side_mm)
    quiet = 0.3 * marker.side_mm
    # Keep particles clear of the whole zone the analyser masks around the marker, not just the print.
    keep_out = 0.45 * marker.side_mm
    zone = np.array(
        [
            [marker_xy[0] - keep_out, marker_xy[1] - keep_out],
            [marker_xy[0] + marker.side_mm + keep_out, marker_xy[1] + marker.side_mm + keep_out],
        ]
    )
    grid.try_take(zone, gap_mm=1.0)

    particles: list[TrueParticle] = []
    for width, length in oversized_mm:
        particles += _place(rng, grid, [TrueParticle((0, 0), length, width, float(rng.uniform(0, 180)))], tray_mm)
    folds: list[list[TrueParticle]] = []
    for strip in folded:
        stretches = _place(rng, grid, _fold_stretches(strip, float(rng.uniform(0, 180))), tray_mm)
        if not stretches:
            raise RuntimeError("no room for the folded strip")
        folds.append(stretches)
    base_width, base_length = particle_mm
    seconds: list[int] = []  # the second piece of each touching pair, in `particles`
    for make, n in (
        (lambda: _touching_pair(rng, base_length, base_width), touching_pairs),
        (lambda: _t_pair(rng, base_length, base_width), t_pairs),
        (lambda: _t_pair(rng, base_length, base_width, corner=True), corner_pairs),
        (lambda: _angle_pair(rng, base_length, base_width), angle_pairs),
    ):
        for _ in range(n):
            placed = _place(rng, grid, make(), tray_mm)
            if placed:
                seconds.append(len(particles) + 1)
            particles += placed
    for _ in range(count):
        scale_l, scale_w = rng.uniform(1.0 - size_jitter, 1.0, size=2)
        single = TrueParticle((0, 0), base_length * scale_l, base_width * scale_w, float(rng.uniform(0, 180)))
        particles += _place(rng, grid, [single], tray_mm, tries=60)
    if spread:
        # Its own generator, so everything drawn after (tones, light, noise) is the same as unspread.
        mover = np.random.default_rng([seed, 1])
        for i in seconds:
            particles[i] = _spread_onto(mover, grid, particles[i], tray_mm)

    canvas = np.full((height_px, width_px), TRAY_GREY, dtype=np.uint8)
    outlines = [[_rect_corners(p) * px_per_mm] for p in particles]
    outlines += [[_rect_corners(p) * px_per_mm for p in stretches] for stretches in folds]
    if shadows:
        offset = np.array([0.5, 0.7]) * px_per_mm
        for corners in (c for paper in outlines for c in paper):
            _fill_exact(canvas, corners + offset, 18)
    for paper in outlines:
        tone = int(PAPER_GREY - rng.integers(0, 25))  # one paper, one tone, however folded
        for corners in paper:
            _fill_exact(canvas, corners, tone)

    dictionary = cv2.aruco.getPredefinedDictionary(board.dictionary)
    side = round(marker.side_mm * px_per_mm)
    x0, y0 = (round(v * px_per_mm) for v in marker_xy)
    q = round(quiet * px_per_mm * 0.8)
    canvas[y0 - q : y0 + side + q, x0 - q : x0 + side + q] = 235
    canvas[y0 : y0 + side, x0 : x0 + side] = cv2.aruco.generateImageMarker(dictionary, marker.marker_id, side)
    # Truth is relative to the marker's outer corner as printed: pixel x0 spans [x0 - 0.5, x0 + 0.5].
    corner_px = np.array([x0, y0], dtype=np.float64) - 0.5
    marker_origin = corner_px / px_per_mm
    particles = [
        TrueParticle(
            (p.centre_mm[0] - marker_origin[0], p.centre_mm[1] - marker_origin[1]),
            p.length_mm,
            p.width_mm,
            p.angle_deg,
        )
        for p in particles
    ]
    true_folds = tuple(
        TrueFold(strip, (stretches[0].centre_mm[0] - marker_origin[0], stretches[0].centre_mm[1] - marker_origin[1]))
        for strip, stretches in zip(folded, folds, strict=True)
    )

    warp = _perspective(size_px, perspective, rng) if perspective > 0 else np.eye(3)
    if perspective > 0:
        canvas = cv2.warpPerspective(
            canvas,
            warp,
            size_px,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=FLOOR_GREY,
        )
    mm_to_canvas = np.array([[px_per_mm, 0, corner_px[0]], [0, px_per_mm, corner_px[1]], [0, 0, 1]])
    image = _finish(canvas, rng, gradient, blur_px, noise_sigma)
    # The tray as drawn, in the marker's millimetres: the analyser ignores the floor beyond it.
    extent = (-marker_origin[0], -marker_origin[1], tray_mm[0] - marker_origin[0], tray_mm[1] - marker_origin[1])
    drawn_board = MarkerBoard(board.markers, board.dictionary, board.quiet_zone, tuple(float(v) for v in extent))
    return ShredTray(image, tuple(particles), drawn_board, px_per_mm, warp @ mm_to_canvas, true_folds)


@dataclass(frozen=True, eq=False)
class LabelPhoto:
    image: np.ndarray = field(repr=False)  # BGR uint8
    data: LabelData  # what was printed
    corners_px: np.ndarray = field(repr=False)  # where the label's corners landed


def label_photo(
    data: LabelData,
    *,
    seed: int = 0,
    size_px: tuple[int, int] = (1920, 1080),
    label_share: float = 0.45,
    perspective: float = 0.12,
    blur_px: float = 1.0,
    noise_sigma: float = 4.0,
    glare: float = 90.0,
    occlusion: float = 0.0,
    thumb: bool = False,
    distractor: bool = True,
    symbology: Symbology = "qr",
) -> LabelPhoto:
    """A handheld-style photo of a printed label on a cluttered bench, with the printed data as truth.

    `occlusion` covers that share of the label's text side, as a cable would; `thumb` presses a dark
    ellipse onto a corner of the code (within what error correction restores); `glare` is the peak
    brightness added by a specular highlight; `distractor` adds a foreign Code 128 barcode, like a
    drive's serial label.
    """
    rng = np.random.default_rng(seed)
    width, height = size_px
    scene = np.full((height, width), 120, dtype=np.float32)
    scene += np.linspace(-30, 30, width, dtype=np.float32)[None, :]
    for _ in range(12):
        x, y = rng.integers(0, width), rng.integers(0, height)
        cv2.rectangle(
            scene,
            (int(x), int(y)),
            (int(x + rng.integers(40, 300)), int(y + rng.integers(40, 200))),
            float(rng.integers(60, 200)),
            -1,
        )
    if distractor:
        serial = zxingcpp.create_barcode(f"SN{rng.integers(10**9, 10**10)}", zxingcpp.BarcodeFormat.Code128)
        bars = np.array(serial.to_image(scale=3))
        bh, bw = bars.shape
        if bw < width and bh < height // 3:
            scene[height - bh - 20 : height - 20, 20 : 20 + bw] = bars
    label = cv2.imdecode(np.frombuffer(render_label(data, symbology), np.uint8), cv2.IMREAD_GRAYSCALE)
    if occlusion > 0:
        # Over the text between the two codes, as a cable would lie.
        lw = int(label.shape[1] * 0.4 * min(occlusion, 1.0))
        label[:, QR_SIDE_PX + 15 : QR_SIDE_PX + 15 + lw] = 40
    if thumb:
        # The QR code fills the left of the label; its lower right corner holds no finder pattern.
        side = QR_SIDE_PX
        corner = (10 + side - side // 5, (label.shape[0] + side) // 2 - side // 5)
        cv2.ellipse(label, corner, (side // 7, side // 5), 30, 0, 360, 60, -1)
    target_w = label_share * width
    target_h = target_w * label.shape[0] / label.shape[1]
    cx, cy = width / 2 + rng.uniform(-0.1, 0.1) * width, height / 2 + rng.uniform(-0.1, 0.1) * height
    box = np.float32(
        [
            [cx - target_w / 2, cy - target_h / 2],
            [cx + target_w / 2, cy - target_h / 2],
            [cx + target_w / 2, cy + target_h / 2],
            [cx - target_w / 2, cy + target_h / 2],
        ]
    )
    box += rng.uniform(-perspective, perspective, size=(4, 2)).astype(np.float32) * target_h
    angle = np.radians(rng.uniform(-20, 20))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
    box = (box - [cx, cy]) @ rotation.T + [cx, cy]
    src = np.float32([[0, 0], [label.shape[1], 0], [label.shape[1], label.shape[0]], [0, label.shape[0]]])
    warp = cv2.getPerspectiveTransform(src, box.astype(np.float32))
    warped = cv2.warpPerspective(label, warp, size_px, flags=cv2.INTER_AREA, borderValue=0).astype(np.float32)
    inside = cv2.warpPerspective(np.ones_like(label, dtype=np.float32), warp, size_px, flags=cv2.INTER_LINEAR)
    scene = scene * (1 - inside) + warped * inside * rng.uniform(0.75, 0.95)
    if glare > 0:
        gx, gy = box[rng.integers(0, 4)] * 0.3 + np.array([cx, cy]) * 0.7
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        radius = target_h * 0.35
        scene += glare * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * radius**2))
    image = _finish(np.clip(scene, 0, 255).astype(np.uint8), rng, 0.0, blur_px, noise_sigma)
    return LabelPhoto(image, data, box)


@dataclass(frozen=True)
class TrueCrossing:
    time_us: int
    direction: str  # 'in' (left to right across the portal line) or 'out'


@dataclass(frozen=True, eq=False)
class PortalScene:
    frames: tuple[tuple[int, np.ndarray], ...] = field(repr=False)  # (time_us, BGR frame)
    people_per_frame: tuple[int, ...]
    crossings: tuple[TrueCrossing, ...]
    line_x: float
    person_area_px: float


PERSON_AXES = (22, 13)  # shoulder ellipse half-axes seen from an overhead camera, pixels


def portal_scene(
    *,
    seed: int = 0,
    people: int = 2,
    size_px: tuple[int, int] = (320, 240),
    frame_count: int = 90,
    fps: float = 15.0,
    empty_frames: int = 8,
    noise_sigma: float = 3.0,
    formation: str = "lanes",
) -> PortalScene:
    """Overhead view of a portal: 0-4 figures walk across a vertical line at mid-frame, each in its lane.

    `formation` changes the first two walkers: 'abreast' puts the second shoulder to shoulder with the
    first (one merged blob), 'tailgate' puts it close behind the first in the same lane. Truth per frame
    counts the figures at least half in view; a crossing is when a centre passes the line.
    """
    rng = np.random.default_rng(seed)
    width, height = size_px
    floor = np.full((height, width), 95, dtype=np.float32)
    floor += cv2.GaussianBlur(rng.normal(0, 12, size=(height, width)).astype(np.float32), (0, 0), 3)
    cv2.line(floor, (width // 2, 0), (width // 2, height), 70, 2)
    lanes = np.linspace(height * 0.18, height * 0.82, 4)
    rng.shuffle(lanes)
    walkers = []
    active = frame_count - empty_frames
    for lane in lanes[:people]:
        direction = 1 if rng.random() < 0.5 else -1
        speed = rng.uniform(0.8, 1.2) * (width + 4 * PERSON_AXES[0]) / (active * 0.7)
        start = empty_frames + int(rng.integers(0, max(1, int(active * 0.25))))
        tone = float(rng.choice([30, 45, 170, 200, 220]))
        walkers.append((float(lane), direction, speed, start, tone))
    a, b = PERSON_AXES
    if len(walkers) >= 2 and formation != "lanes":
        lane, direction, speed, start, _ = walkers[0]
        if formation == "abreast":
            beside = lane + 2 * a - 4 if lane < height / 2 else lane - 2 * a + 4
            walkers[1] = (beside, direction, speed, start, walkers[1][4])
        else:
            walkers[1] = (lane, direction, speed, start + int(np.ceil((2 * b + 8) / speed)), walkers[1][4])
    frames, counts, crossings = [], [], []
    for index in range(frame_count):
        time_us = round(index * 1e6 / fps)
        frame = floor.copy()
        visible = 0
        for lane, direction, speed, start, tone in walkers:
            if index < start:
                continue
            travelled = (index - start) * speed
            x = -2 * a + travelled if direction > 0 else width + 2 * a - travelled
            previous = x - direction * speed
            if min(previous, x) < width / 2 <= max(previous, x) and index > start:
                crossings.append(TrueCrossing(time_us, "in" if direction > 0 else "out"))
            if -a <= x <= width + a:
                if min(x + b, width) - max(x - b, 0) >= b:  # at least half the body in view
                    visible += 1
                cv2.ellipse(frame, (round(x), round(lane)), (b, a), 0, 0, 360, tone, -1, cv2.LINE_AA)
                cv2.circle(frame, (round(x), round(lane)), 8, tone * 0.6 + 20, -1, cv2.LINE_AA)
        counts.append(visible)
        frames.append((time_us, _finish(np.clip(frame, 0, 255).astype(np.uint8), rng, 0.0, 0.7, noise_sigma)))
    person_area = float(np.pi * a * b)
    return PortalScene(tuple(frames), tuple(counts), tuple(crossings), width / 2, person_area)

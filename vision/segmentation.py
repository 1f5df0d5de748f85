"""Foreground particles on a contrasting tray: background levelling, threshold, touching-particle split."""

from dataclasses import dataclass

import cv2
import numpy as np

BACKGROUND_FACTOR = 8  # background is estimated on an image reduced this many times
MIN_PARTICLE_PX = 6  # smaller blobs are sensor noise or dust
PIECE_SOLIDITY = 0.75  # split only into pieces that each look like one particle
CORE_FRACTION = 0.6  # share of the blob's greatest inner distance that marks a particle's core


@dataclass(frozen=True)
class Blob:
    """One particle in pixels: its outline, its pixel count and its minimum-area rectangle."""

    contour: np.ndarray
    area_px: float
    rect: tuple[tuple[float, float], tuple[float, float], float]
    clipped: bool


@dataclass(frozen=True, eq=False)
class Segmentation:
    mask: np.ndarray  # 255 where a particle is
    contrast: float  # particle brightness over tray brightness (1.0: nothing stands out)


def _tray_level(small: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Smooth tray brightness: a quadratic surface fitted to the pixels darker than Otsu's split.

    A fit (rather than a morphological filter) cannot mistake a large particle for tray.
    """
    split, _ = cv2.threshold(small[valid], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    tray = cv2.erode(((small < split) & valid).astype(np.uint8), np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(tray)
    if len(xs) < 50:
        return np.full(small.shape, max(float(np.median(small)), 1.0), dtype=np.float32)
    step = max(1, len(xs) // 20000)
    ys, xs = ys[::step], xs[::step]
    h, w = small.shape
    u, v = xs / w - 0.5, ys / h - 0.5
    design = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
    coef, *_ = np.linalg.lstsq(design, small[ys, xs].astype(np.float64), rcond=None)
    gu, gv = np.meshgrid(np.arange(w) / w - 0.5, np.arange(h) / h - 0.5)
    surface = (
        coef[0] + coef[1] * gu + coef[2] * gv + coef[3] * gu * gu + coef[4] * gu * gv + coef[5] * gv * gv
    )
    return np.maximum(surface, 1.0).astype(np.float32)


def foreground(gray: np.ndarray, lighter: bool, ignore: np.ndarray) -> Segmentation:
    """Binary mask of particle pixels, thresholded halfway between the local tray and particle levels.

    Illumination multiplies both levels alike, so the contrast ratio particle/tray is one number for the
    whole tray; the halfway threshold keeps blurred edges from biasing areas up or down. Pixels under
    `ignore` (the marker and its quiet zone) take no part in the statistics and are never foreground.
    """
    image = gray if lighter else cv2.bitwise_not(gray)
    small = cv2.resize(
        image, None, fx=1 / BACKGROUND_FACTOR, fy=1 / BACKGROUND_FACTOR, interpolation=cv2.INTER_AREA
    )
    small_ignore = cv2.resize(ignore, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    tray = _tray_level(small, small_ignore == 0)
    # Full-resolution samples at the centres of the reduced pixels, so they pair with the tray level.
    f = BACKGROUND_FACTOR
    samples = image[f // 2 :: f, f // 2 :: f][: small.shape[0], : small.shape[1]]
    rows, cols = samples.shape
    sampled = small_ignore[:rows, :cols] == 0
    ratio = samples[sampled].astype(np.float32) / tray[:rows, :cols][sampled]
    ratio8 = np.clip(ratio * 32.0, 0, 255).astype(np.uint8)
    split, _ = cv2.threshold(ratio8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = ratio[ratio8 > split]
    if bright.size == 0 or split <= 32:
        return Segmentation(np.zeros(gray.shape, dtype=np.uint8), 1.0)
    contrast = float(np.median(bright))
    threshold_small = np.clip(tray * ((1.0 + contrast) / 2.0), 0, 255).astype(np.uint8)
    threshold = cv2.resize(threshold_small, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    mask = cv2.compare(image, threshold, cv2.CMP_GT)
    mask[ignore > 0] = 0
    return Segmentation(mask, contrast)


def _pixel_count(contour: np.ndarray) -> float:
    # Pick's theorem on the boundary pixel centres: enclosed pixels = polygon area + boundary/2 + 1.
    return cv2.contourArea(contour) + len(contour) / 2.0 + 1.0


def _solidity(contour: np.ndarray, area_px: float) -> float:
    hull = cv2.convexHull(contour)
    return area_px / max(_pixel_count(hull), 1.0)


def _split(contour: np.ndarray) -> list[np.ndarray]:
    """Split one blob at the necks of its distance transform; [contour] when no safe split exists."""
    x, y, w, h = cv2.boundingRect(contour)
    pad = 2
    mask = np.zeros((h + 2 * pad, w + 2 * pad), dtype=np.uint8)
    cv2.drawContours(mask, [contour], -1, 255, cv2.FILLED, offset=(pad - x, pad - y))
    dist = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    cores = (dist > CORE_FRACTION * float(dist.max())).astype(np.uint8)
    n, _ = cv2.connectedComponents(cores)
    if n <= 2:
        return [contour]
    # Every blob pixel goes to its nearest core: the cut falls across the neck between them.
    _, nearest = cv2.distanceTransformWithLabels(1 - cores, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_CCOMP)
    pieces: list[np.ndarray] = []
    for label in np.unique(nearest[cores > 0]):
        piece = ((nearest == label) & (mask > 0)).astype(np.uint8)
        found, _ = cv2.findContours(piece, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if len(found) != 1:
            return [contour]
        outline = found[0]
        if _solidity(outline, _pixel_count(outline)) < PIECE_SOLIDITY:
            return [contour]
        pieces.append(outline + np.array([x - pad, y - pad], dtype=np.int32))
    return pieces


def blobs(mask: np.ndarray, cut_edges: np.ndarray) -> list[Blob]:
    """Particles in `mask`; a blob touching `cut_edges` (image border, masked zones) is marked clipped."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    found: list[Blob] = []
    for contour in contours:
        if len(contour) < 3:
            continue
        area = _pixel_count(contour)
        if area < MIN_PARTICLE_PX:
            continue
        pts = contour.reshape(-1, 2)
        clipped = bool(cut_edges[pts[:, 1], pts[:, 0]].any())
        found.append(Blob(contour, area, cv2.minAreaRect(contour), clipped))
    return found


def separate(blob: Blob) -> list[Blob]:
    """The particles a blob is made of when it is several touching ones, else [blob]."""
    if blob.clipped:
        return [blob]
    pieces = _split(blob.contour)
    if len(pieces) == 1:
        return [blob]
    return [Blob(piece, _pixel_count(piece), cv2.minAreaRect(piece), False) for piece in pieces]

"""What the empty tray looks like at every pixel, and how far each pixel of a photograph is from it.

The model is the tray's colour times a smooth illumination field, learned either from an empty-tray
frame taken by the same fixed camera (exact vignetting) or from the photograph itself: the tray's colour
from the ring of tray just outside the markers' quiet zones, the illumination from a robust fit over
every pixel that matches that colour. Its texture (noise, felt, JPEG) sets the two thresholds: below
`tray_level` a pixel is tray, above `particle_level` it is something else, in between it cannot be told.

The distance of a pixel from the model splits its colour difference in two: along the tray's own
colour (brighter or darker, as light and shadow change it) and across it (a different hue or
saturation). A shadow only darkens along the tray's colour, so in the default 'lighter' mode it is no
particle, while ink, coloured and dark paper differ across it and white paper along it. Both parts are
linear in how much of a pixel a particle covers, so half a particle's own level marks its edge without
bias from blur.
"""

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

Contrast = Literal["lighter", "darker", "either"]
MODEL_MAX_SIDE = 400  # the illumination field is fitted on a copy reduced to about this size
SAMPLES = 40_000
FIT_SAMPLES = 6_000  # pixels the illumination is fitted to, per pass (six coefficients)
MAX_RING_SPREAD = 0.12  # a tray is one colour: beside the markers it varies less than this


@dataclass(frozen=True, eq=False)
class TrayFit:
    distance: np.ndarray = field(repr=False)  # uint8, half grey levels from the tray model, full resolution
    tray_level: float  # at or below: tray
    particle_level: float  # above: particle
    tray_bgr: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tray_share: float = 0.0  # share of the reduced image that matched the tray colour
    problem: str = ""


def _basis(tray_bgr: np.ndarray) -> np.ndarray:
    """Rows: the unit vector of the tray's colour and two unit vectors across it."""
    along = tray_bgr.astype(np.float64) / max(float(np.linalg.norm(tray_bgr)), 1e-6)
    helper = np.array([1.0, 0.0, 0.0]) if abs(along[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    first = np.cross(along, helper)
    first /= np.linalg.norm(first)
    second = np.cross(along, first)
    return np.stack([along, first, second]).astype(np.float32)


def _distance(image: np.ndarray, tray_bgr: np.ndarray, brightness: np.ndarray, contrast: Contrast) -> np.ndarray:
    """Per pixel, in half grey levels (uint8): the excess along the tray colour (signed by `contrast`)
    plus the norm across it. `brightness` is the tray's projection on its own colour, halved (uint8).

    Integer arithmetic throughout (a 12 MP frame must take milliseconds): the projections are halved
    to fit a byte, and the norm across is the octagon approximation max + 0.41 min (within 4 %)."""
    basis = _basis(tray_bgr) * 0.5
    offsets = np.array([[0.0], [128.0], [128.0]], dtype=np.float32)
    projected = cv2.transform(image, np.hstack([basis, offsets]))
    along, first, second = cv2.split(projected)
    if contrast == "lighter":
        excess = cv2.subtract(along, brightness)
    elif contrast == "darker":
        excess = cv2.subtract(brightness, along)
    else:
        excess = cv2.absdiff(along, brightness)
    # Colour is noisier than brightness (JPEG keeps it at half resolution): smooth it a little more.
    a = cv2.absdiff(cv2.blur(first, (5, 5)), 128)
    b = cv2.absdiff(cv2.blur(second, (5, 5)), 128)
    across = cv2.addWeighted(cv2.max(a, b), 1.0, cv2.min(a, b), 0.41, 0.0)
    return cv2.add(excess, across)


def _quadratic(xs: np.ndarray, ys: np.ndarray, w: int, h: int) -> np.ndarray:
    u, v = xs / w - 0.5, ys / h - 0.5
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)


def _illumination(small: np.ndarray, tray_bgr: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, float]:
    """Smooth gain field g (small image's shape) with small ≈ g * tray colour on the tray; share matched."""
    h, w = valid.shape
    gain = np.ones((h, w), np.float32)
    ratio = small.astype(np.float32) / np.maximum(tray_bgr.astype(np.float32), 1.0)
    tolerance = 0.7  # the first pass accepts vignetting; later passes tighten to the fit's own spread
    matched = valid
    # The quadratic's terms as a row and a column: the field is evaluated by broadcasting, not as a
    # pixels x 6 design matrix (a matrix product that size costs more than the whole fit).
    u = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    v = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    for _ in range(4):
        # Tray colour in every channel (|log(ratio / gain)| < tolerance): a coloured or dark piece fails
        # at least one channel.
        low = cv2.merge([gain * np.float32(np.exp(-tolerance))] * 3)
        high = cv2.merge([gain * np.float32(np.exp(tolerance))] * 3)
        close = cv2.inRange(ratio, low, high) > 0
        matched = close & valid
        ys, xs = np.nonzero(matched)
        if len(xs) < 200:
            return gain, float(matched.mean())
        step = max(1, len(xs) // FIT_SAMPLES)
        ys, xs = ys[::step], xs[::step]
        target = np.log(np.maximum(ratio[ys, xs].mean(axis=1), 1e-3))
        design = _quadratic(xs.astype(np.float64), ys.astype(np.float64), w, h)
        # Normal equations: six unknowns (a threaded least-squares call costs more than the fit).
        coef = np.linalg.solve(design.T @ design + 1e-9 * np.eye(6), design.T @ target).astype(np.float32)
        c0, cu, cv, cuu, cuv, cvv = coef
        gain = np.exp(c0 + u * (cu + cuu * u) + v * (cv + cuv * u + cvv * v)).astype(np.float32)
        spread = float(np.std(target - design @ coef))
        tolerance = max(0.12, 4.0 * spread)
    return gain, float(matched.sum() / max(valid.sum(), 1))


def fit_tray(
    image: np.ndarray,
    ring: np.ndarray,
    ignore: np.ndarray,
    contrast: Contrast = "lighter",
    empty_tray: np.ndarray | None = None,
) -> TrayFit:
    """Model the tray in `image` (BGR uint8, already smoothed) and measure every pixel against it.

    `ring`: pixels known to be tray when nothing lies there (beside the markers); `ignore`: markers and
    their quiet zones. `empty_tray`: the same camera's picture of the empty tray, when the site has one.
    """
    h, w = image.shape[:2]
    factor = max(1, int(np.ceil(max(h, w) / MODEL_MAX_SIDE)))
    size = (max(1, w // factor), max(1, h // factor))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_ignore = cv2.resize(ignore, size, interpolation=cv2.INTER_NEAREST) > 0
    valid = ~small_ignore
    if empty_tray is not None:
        if empty_tray.shape != image.shape:
            return TrayFit(np.zeros((h, w), np.uint8), 0, 0, problem="empty-tray frame has another size")
        reference = cv2.resize(cv2.blur(empty_tray, (3, 3)), size, interpolation=cv2.INTER_AREA).astype(np.float32)
        # Exposure may drift between the two frames: one gain per channel, from the pixels that still match.
        rel = small.astype(np.float32) / np.maximum(reference, 1.0)
        close = np.all(np.abs(np.log(np.maximum(rel, 1e-3))) < 0.25, axis=2) & valid
        if close.sum() < 200:
            return TrayFit(np.zeros((h, w), np.uint8), 0, 0, problem="the tray does not match its empty-tray frame")
        gains = np.median(rel[close], axis=0)
        model_small = reference * gains
        share = float(close.sum() / max(valid.sum(), 1))
        tray_bgr = np.median(reference[close], axis=0) * gains
    else:
        small_ring = (cv2.resize(ring, size, interpolation=cv2.INTER_NEAREST) > 0) & valid
        if small_ring.sum() < 20:
            return TrayFit(np.zeros((h, w), np.uint8), 0, 0, problem="no tray visible beside the markers")
        ring_pixels = small[small_ring].astype(np.float32)
        tray_bgr = np.median(ring_pixels, axis=0)
        spread = np.median(np.abs(ring_pixels - tray_bgr), axis=0)
        if np.any(spread > np.maximum(MAX_RING_SPREAD * tray_bgr, 6.0)):
            return TrayFit(
                np.zeros((h, w), np.uint8), 0, 0, problem="no uniform tray beside the markers (cluttered view)"
            )
        gain, share = _illumination(small, tray_bgr, valid)
        model_small = gain[:, :, None] * tray_bgr[None, None, :]
    along = _basis(np.asarray(tray_bgr))[0]
    brightness_small = np.clip(model_small.astype(np.float32) @ along * 0.5, 0, 255).astype(np.uint8)
    brightness = cv2.resize(brightness_small, (w, h), interpolation=cv2.INTER_LINEAR)
    distance = _distance(image, np.asarray(tray_bgr), brightness, contrast)
    # The tray's own texture at full resolution, sampled where the reduced image matched the tray.
    small_distance = cv2.resize(distance, size, interpolation=cv2.INTER_AREA)
    quiet = (small_distance <= np.percentile(small_distance[valid], 50)) & valid
    ys, xs = np.nonzero(quiet)
    if len(xs) < 100:
        return TrayFit(distance, 0, 0, tuple(tray_bgr), share, problem="too little tray in view")
    pick = np.random.default_rng(0).choice(len(xs), size=min(SAMPLES, len(xs)), replace=False)
    sample = distance[
        np.minimum(ys[pick] * factor + factor // 2, h - 1), np.minimum(xs[pick] * factor + factor // 2, w - 1)
    ]
    tray_level = float(np.percentile(sample, 99.5)) + 1.0  # +1: a level of a byte
    particle_level = max(2.0 * tray_level, tray_level + 6.0)
    return TrayFit(distance, tray_level, particle_level, tuple(float(v) for v in tray_bgr), share)

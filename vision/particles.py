"""Shred particle size from a tray photograph, judged against a named security level.

The rule of destruction.md: every particle's area <= the level's maximum area and its width <= the
level's maximum width. Anything that stops the measurement from being trustworthy (no scale marker,
too coarse a resolution, particles cut off at the image edge) is 'cannot_verify', never 'pass'.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from vision.calibration import Calibration, MarkerSpec, calibrate
from vision.images import ImageInput, load_gray
from vision.segmentation import Blob, blobs, foreground, separate
from vision.shred_levels import LEVELS, SecurityLevel, find_level

Verdict = Literal["pass", "fail", "cannot_verify"]

# The level's width limit must span this many pixels: an edge is only known to about half a pixel, so
# at 8 px the width is certain to ~12 %.
MIN_PX_ACROSS_LIMIT = 8.0
MARKER_ZONE_MARGIN = 0.35  # marker sides of printed quiet zone excluded around the marker
MAX_FOREGROUND_SHARE = 0.6  # more "particle" than this means no contrasting tray is in view
# Particles must be this many times brighter than the tray (white paper on a black tray: 5-10x); a
# cluttered scene that merely contains a marker stays below it.
MIN_CONTRAST = 3.0


@dataclass(frozen=True)
class TraySetup:
    marker: MarkerSpec = field(default_factory=MarkerSpec)
    particles_lighter: bool = True  # light paper on a dark tray; False for dark media on a light tray


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
    offenders: int = 0
    clipped: int = 0
    mm_per_px: float = 0.0
    level_confirmed: bool = False  # False: the level's figures were not checked against the standard
    areas_mm2: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    widths_mm: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    lengths_mm: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    centres_mm: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    offender_outlines: tuple[np.ndarray, ...] = field(default=(), repr=False)
    marker_corners_px: np.ndarray | None = field(default=None, repr=False)

    def draw_evidence(self, image: np.ndarray) -> np.ndarray:
        """A BGR copy of `image` with offending particles outlined in red, the marker in blue, the verdict."""
        canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        thickness = max(2, canvas.shape[1] // 800)
        cv2.drawContours(canvas, list(self.offender_outlines), -1, (0, 0, 255), thickness)
        if self.marker_corners_px is not None:
            cv2.polylines(
                canvas, [np.round(self.marker_corners_px).astype(np.int32)], True, (255, 0, 0), thickness
            )
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


def _cannot(level: str, reason: str, calibration: Calibration | None = None) -> ParticleReport:
    mm = calibration.mm_per_px if calibration else 0.0
    corners = calibration.marker_corners_px if calibration else None
    return ParticleReport(
        "cannot_verify", f"cannot verify: {reason}", level, mm_per_px=mm, marker_corners_px=corners
    )


def _cut_edges(shape: tuple[int, int], marker_zone: np.ndarray) -> np.ndarray:
    edges = cv2.dilate(marker_zone, np.ones((3, 3), np.uint8))
    edges[0, :] = edges[-1, :] = 255
    edges[:, 0] = edges[:, -1] = 255
    return edges > 0


def _grown_rect(blob: Blob) -> tuple[tuple[float, float], tuple[float, float], float]:
    """The fitted rectangle grown evenly until its area matches the pixel count (never shrunk).

    The fit runs through boundary pixel centres, so on axis-aligned edges it falls up to a pixel short;
    the pixel count is unbiased, and for rectangular shreds the grown rectangle recovers both sides.
    """
    centre, (w, h), angle = blob.rect
    gap = w * h - blob.area_px
    grow = max(0.0, (-(w + h) + np.sqrt(max((w + h) ** 2 - 4 * gap, 0.0))) / 2)
    return centre, (w + grow, h + grow), angle


def _measure(found: list[Blob], calibration: Calibration) -> tuple[np.ndarray, ...]:
    """Areas, widths, lengths and centres in millimetres on the tray plane."""
    centres = np.array([b.rect[0] for b in found], dtype=np.float64)
    areas = np.array([b.area_px for b in found]) * calibration.area_scale(centres)
    boxes = np.stack([cv2.boxPoints(_grown_rect(b)) for b in found])
    corners = calibration.to_mm(boxes.reshape(-1, 2)).reshape(-1, 4, 2)
    edges = np.linalg.norm(corners - np.roll(corners, -1, axis=1), axis=2)  # edges 0-1, 1-2, 2-3, 3-0
    side_a = (edges[:, 0] + edges[:, 2]) / 2
    side_b = (edges[:, 1] + edges[:, 3]) / 2
    return areas, np.minimum(side_a, side_b), np.maximum(side_a, side_b), calibration.to_mm(centres)


def _offending(
    level: SecurityLevel, areas: np.ndarray, widths: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    bad = areas > (level.max_area_mm2 or np.inf)
    if level.max_width_mm is not None:
        bad |= widths > level.max_width_mm
    if level.max_length_mm is not None:
        bad |= lengths > level.max_length_mm
    return bad


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
    loaded = load_gray(image)
    if loaded.gray is None:
        return _cannot(spec.name, loaded.problem)
    gray = loaded.gray
    try:
        return _analyse(gray, spec, setup)
    except Exception as error:  # the controller's boundary: any fault is a 'cannot_verify', never a raise
        return _cannot(spec.name, f"analysis failed ({error})")


def _analyse(gray: np.ndarray, spec: SecurityLevel, setup: TraySetup) -> ParticleReport:
    calibration = calibrate(gray, setup.marker)
    if calibration.problem:
        return _cannot(spec.name, calibration.problem)
    smallest_limit = min(v for v in (spec.max_width_mm, np.sqrt(spec.max_area_mm2 or 0.0)) if v is not None)
    if smallest_limit / calibration.mm_per_px < MIN_PX_ACROSS_LIMIT:
        return _cannot(
            spec.name, f"resolution {calibration.mm_per_px:.3f} mm/px too coarse for {spec.name}", calibration
        )
    zone = calibration.marker_zone_mask(gray.shape, MARKER_ZONE_MARGIN)
    segmentation = foreground(gray, setup.particles_lighter, zone)
    mask = segmentation.mask
    if segmentation.contrast < MIN_CONTRAST or cv2.countNonZero(mask) > MAX_FOREGROUND_SHARE * mask.size:
        detail = f"particles {segmentation.contrast:.1f}x as bright as the background, {MIN_CONTRAST}x needed"
        return _cannot(spec.name, f"no contrasting tray in view ({detail})", calibration)
    found = blobs(mask, _cut_edges(gray.shape, zone))
    if not found:
        return _cannot(spec.name, "no particles found on the tray", calibration)
    areas, widths, lengths, centres = _measure(found, calibration)
    bad = _offending(spec, areas, widths, lengths)
    if bad.any():
        # An offender may be touching particles merged into one blob: separate those and measure again.
        found = [
            piece
            for blob, is_bad in zip(found, bad, strict=True)
            for piece in (separate(blob) if is_bad else [blob])
        ]
        areas, widths, lengths, centres = _measure(found, calibration)
        bad = _offending(spec, areas, widths, lengths)
    clipped = np.array([b.clipped for b in found])
    offenders = int(bad.sum())
    n_clipped = int((clipped & ~bad).sum())
    if offenders:
        verdict: Verdict = "fail"
        reason = f"{offenders} particle(s) exceed {spec.name}"
    elif n_clipped:
        verdict = "cannot_verify"
        reason = f"cannot verify: {n_clipped} particle(s) cut off at the image edge or marker"
    else:
        verdict, reason = "pass", f"all {len(found)} particles within {spec.name}"
    return ParticleReport(
        verdict,
        reason,
        spec.name,
        count=len(found),
        max_area_mm2=float(areas.max()),
        p95_area_mm2=float(np.percentile(areas, 95)),
        median_area_mm2=float(np.median(areas)),
        max_width_mm=float(widths.max()),
        max_length_mm=float(lengths.max()),
        offenders=offenders,
        clipped=int(clipped.sum()),
        mm_per_px=calibration.mm_per_px,
        level_confirmed=spec.confirmed,
        areas_mm2=areas,
        widths_mm=widths,
        lengths_mm=lengths,
        centres_mm=centres,
        offender_outlines=tuple(b.contour for b, is_bad in zip(found, bad, strict=True) if is_bad),
        marker_corners_px=calibration.marker_corners_px,
    )

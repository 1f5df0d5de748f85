"""Scale and perspective from one ArUco marker of known side length lying on the tray plane."""

from dataclasses import dataclass, field

import cv2
import numpy as np

DETECT_MAX_SIDE = 1280  # markers are found on a reduced copy, then corners refined at full resolution
MIN_MARKER_PX = 24.0


@dataclass(frozen=True)
class MarkerSpec:
    side_mm: float = 50.0
    dictionary: int = cv2.aruco.DICT_4X4_50
    marker_id: int | None = 0  # None: any marker of the dictionary


@dataclass(frozen=True, eq=False)
class Calibration:
    """Maps image pixels to millimetres on the marker's plane; `homography` is None when `problem` is set."""

    homography: np.ndarray | None = field(default=None, repr=False)
    marker_corners_px: np.ndarray | None = field(default=None, repr=False)
    mm_per_px: float = 0.0
    problem: str = ""

    def to_mm(self, points_px: np.ndarray) -> np.ndarray:
        assert self.homography is not None
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.homography).reshape(-1, 2)

    def area_scale(self, points_px: np.ndarray) -> np.ndarray:
        """mm² per pixel at each point: |det J| of the homography, |det H| / w³."""
        assert self.homography is not None
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        h = self.homography
        w = h[2, 0] * pts[:, 0] + h[2, 1] * pts[:, 1] + h[2, 2]
        return np.abs(np.linalg.det(h) / w**3)

    def marker_zone_mask(self, shape: tuple[int, int], margin: float) -> np.ndarray:
        """Mask of the marker grown by `margin` marker-sides on every edge (its printed quiet zone)."""
        assert self.marker_corners_px is not None
        corners = self.marker_corners_px.reshape(4, 2)
        centre = corners.mean(axis=0)
        grown = centre + (corners - centre) * (1.0 + 2.0 * margin)
        mask = np.zeros(shape, dtype=np.uint8)
        cv2.fillConvexPoly(mask, np.round(grown).astype(np.int32), 255)
        return mask


def _detect(gray: np.ndarray, spec: MarkerSpec) -> np.ndarray | None:
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.shape))
    small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(spec.dictionary))
    corners, ids, _ = detector.detectMarkers(small)
    if ids is None or len(ids) == 0:
        return None
    candidates = [
        c.reshape(4, 2)
        for c, marker_id in zip(corners, ids.ravel(), strict=True)
        if spec.marker_id is None or int(marker_id) == spec.marker_id
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda c: cv2.contourArea(c.astype(np.float32)))
    full = (best / scale).astype(np.float32)
    window = max(2, round(2.0 / scale))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 0.01)
    cv2.cornerSubPix(gray, full.reshape(-1, 1, 2), (window, window), (-1, -1), criteria)
    return full


def calibrate(gray: np.ndarray, spec: MarkerSpec = MarkerSpec()) -> Calibration:
    try:
        corners = _detect(gray, spec)
    except cv2.error as error:
        return Calibration(problem=f"marker detection failed ({error})")
    if corners is None:
        return Calibration(problem="no scale marker")
    sides = np.linalg.norm(corners - np.roll(corners, 1, axis=0), axis=1)
    if sides.min() < MIN_MARKER_PX:
        return Calibration(problem=f"scale marker too small ({sides.min():.0f} px a side)")
    s = spec.side_mm
    target = np.array([[0, 0], [s, 0], [s, s], [0, s]], dtype=np.float64)
    homography = cv2.getPerspectiveTransform(corners.astype(np.float32), target.astype(np.float32))
    partial = Calibration(homography=homography, marker_corners_px=corners)
    mm_per_px = float(np.sqrt(partial.area_scale(corners.mean(axis=0, keepdims=True))[0]))
    return Calibration(homography=homography, marker_corners_px=corners, mm_per_px=mm_per_px)

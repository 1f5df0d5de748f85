"""Scale and perspective across the tray from a board of ArUco markers at known places on the tray plane.

One homography is fitted to the corners of every marker found (least squares); its uncertainty at any
point of the tray comes from refitting with the corners jittered by their measured error, so a particle
far from the markers, or a board with only one marker visible, carries a larger scale uncertainty.
"""

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

DETECT_MAX_SIDE = 1000  # markers are found on a reduced copy, then corners refined at full resolution
MIN_MARKER_PX = 24.0
MIN_CORNER_SIGMA_PX = 0.25  # corner error assumed even when the fit is exact (one marker, no residual)
MAX_RESIDUAL_MM = 0.6  # a corner this far from where the board puts it: the board is not what we think
BOOTSTRAP = 24


@dataclass(frozen=True)
class BoardMarker:
    """One printed marker: id, side, and the position of its top-left corner on the tray (mm)."""

    marker_id: int
    side_mm: float
    x_mm: float = 0.0
    y_mm: float = 0.0

    def corners_mm(self) -> np.ndarray:
        x, y, s = self.x_mm, self.y_mm, self.side_mm
        return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], dtype=np.float64)


@dataclass(frozen=True)
class MarkerBoard:
    """The markers printed on a tray. `quiet_zone` is the white margin around each, in marker sides;
    that margin and the marker itself are not tray and take no part in the analysis."""

    markers: tuple[BoardMarker, ...] = (BoardMarker(0, 50.0),)
    dictionary: int = cv2.aruco.DICT_4X4_50
    quiet_zone: float = 0.35
    # The tray's own extent on the board (x0, y0, x1, y1 in mm); beyond it is no tray. None: the whole view.
    tray_mm: tuple[float, float, float, float] | None = None

    @classmethod
    def single(cls, side_mm: float = 50.0, marker_id: int = 0) -> "MarkerBoard":
        return cls((BoardMarker(marker_id, side_mm),))

    @classmethod
    def corners(
        cls, width_mm: float, height_mm: float, side_mm: float, inset_mm: float, quiet_zone: float = 0.35
    ) -> "MarkerBoard":
        """Markers 0..3 clockwise from the top-left corner of a tray of the given size."""
        far_x, far_y = width_mm - inset_mm - side_mm, height_mm - inset_mm - side_mm
        places = ((inset_mm, inset_mm), (far_x, inset_mm), (far_x, far_y), (inset_mm, far_y))
        markers = tuple(BoardMarker(i, side_mm, x, y) for i, (x, y) in enumerate(places))
        return cls(markers, quiet_zone=quiet_zone, tray_mm=(0.0, 0.0, width_mm, height_mm))

    def by_id(self) -> dict[int, BoardMarker]:
        return {m.marker_id: m for m in self.markers}


@dataclass(frozen=True, eq=False)
class Calibration:
    """Maps image pixels to millimetres on the board's plane; `homography` is None when `problem` is set."""

    homography: np.ndarray | None = field(default=None, repr=False)
    found: tuple[tuple[BoardMarker, np.ndarray], ...] = field(default=(), repr=False)  # marker, corners px
    board: MarkerBoard = field(default_factory=MarkerBoard)
    mm_per_px: float = 0.0  # at the centre of the markers found
    corner_sigma_px: float = 0.0
    residual_mm: float = 0.0
    problem: str = ""
    _jittered: tuple[np.ndarray, ...] = field(default=(), repr=False)

    @property
    def marker_corners_px(self) -> np.ndarray | None:
        return self.found[0][1] if self.found else None

    def scaled(self, factor: int) -> "Calibration":
        """The same calibration for the image reduced `factor` times (pixel (0, 0) of the reduction
        covers full pixels 0 .. factor - 1)."""
        assert self.homography is not None
        shift = (factor - 1) / 2
        up = np.array([[factor, 0.0, shift], [0.0, factor, shift], [0.0, 0.0, 1.0]])
        return replace(
            self,
            homography=self.homography @ up,
            found=tuple((m, (c - shift) / factor) for m, c in self.found),
            mm_per_px=self.mm_per_px * factor,
            corner_sigma_px=self.corner_sigma_px / factor,
            _jittered=tuple(h @ up for h in self._jittered),
        )

    def to_mm(self, points_px: np.ndarray) -> np.ndarray:
        assert self.homography is not None
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.homography).reshape(-1, 2)

    def area_scale(self, points_px: np.ndarray, homography: np.ndarray | None = None) -> np.ndarray:
        """mm² per pixel at each point: |det J| of the homography, |det H| / w³."""
        h = self.homography if homography is None else homography
        assert h is not None
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        w = h[2, 0] * pts[:, 0] + h[2, 1] * pts[:, 1] + h[2, 2]
        return np.abs(np.linalg.det(h) / w**3)

    def jacobians(self, points_px: np.ndarray) -> np.ndarray:
        """d(mm)/d(px) at each point, shape (n, 2, 2)."""
        h = self.homography
        assert h is not None
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        x, y = pts[:, 0], pts[:, 1]
        w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
        u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w
        v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w
        jac = np.empty((len(pts), 2, 2))
        jac[:, 0, 0] = (h[0, 0] - u * h[2, 0]) / w
        jac[:, 0, 1] = (h[0, 1] - u * h[2, 1]) / w
        jac[:, 1, 0] = (h[1, 0] - v * h[2, 0]) / w
        jac[:, 1, 1] = (h[1, 1] - v * h[2, 1]) / w
        return jac

    def scale_uncertainty(self, points_px: np.ndarray) -> np.ndarray:
        """Relative (1 sigma) uncertainty of the linear scale at each point, from the corner error."""
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        if not self._jittered or len(pts) == 0:
            return np.full(len(pts), 0.01)
        scales = np.stack([np.sqrt(self.area_scale(pts, h)) for h in self._jittered])
        return np.maximum(scales.std(axis=0) / scales.mean(axis=0), 1e-4)

    def marker_zone_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Every board marker (found or not, where the homography puts it) grown by its quiet zone,
        and whatever lies beyond the tray's extent."""
        assert self.homography is not None
        mask = np.zeros(shape, dtype=np.uint8)
        inverse = np.linalg.inv(self.homography)
        if self.board.tray_mm is not None:
            x0, y0, x1, y1 = self.board.tray_mm
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
            px = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), inverse).reshape(-1, 2)
            mask[:] = 255
            cv2.fillConvexPoly(mask, np.round(px).astype(np.int32), 0)
            mask = cv2.dilate(mask, np.ones((7, 7), np.uint8))  # the tray's rim blurs into the floor
        for marker in self.board.markers:
            corners = marker.corners_mm()
            centre = corners.mean(axis=0)
            grown = centre + (corners - centre) * (1.0 + 2.0 * self.board.quiet_zone)
            px = cv2.perspectiveTransform(grown.reshape(-1, 1, 2), inverse).reshape(-1, 2)
            cv2.fillConvexPoly(mask, np.round(px).astype(np.int32), 255)
        return mask

    def tray_ring_mask(self, shape: tuple[int, int], inner: float, outer: float) -> np.ndarray:
        """Tray just beyond each marker's quiet zone: between `inner` and `outer` marker sides out."""
        assert self.homography is not None
        inverse = np.linalg.inv(self.homography)
        ring = np.zeros(shape, dtype=np.uint8)
        for marker in self.board.markers:
            corners = marker.corners_mm()
            centre = corners.mean(axis=0)
            for grow, value in ((outer, 255), (inner, 0)):
                quad = centre + (corners - centre) * (1.0 + 2.0 * grow)
                px = cv2.perspectiveTransform(quad.reshape(-1, 1, 2), inverse).reshape(-1, 2)
                cv2.fillConvexPoly(ring, np.round(px).astype(np.int32), value)
        return ring


def _detect(gray: np.ndarray, board: MarkerBoard) -> list[tuple[BoardMarker, np.ndarray]]:
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.shape))
    small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(board.dictionary))
    corners, ids, _ = detector.detectMarkers(small)
    if ids is None or len(ids) == 0:
        return []
    known = board.by_id()
    best: dict[int, np.ndarray] = {}
    for c, marker_id in zip(corners, ids.ravel(), strict=True):
        quad = c.reshape(4, 2)
        if int(marker_id) in known and (
            int(marker_id) not in best or cv2.contourArea(quad) > cv2.contourArea(best[int(marker_id)])
        ):
            best[int(marker_id)] = quad
    found = []
    window = max(2, round(2.0 / scale))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 0.01)
    for marker_id, quad in sorted(best.items()):
        full = (quad / scale).astype(np.float32).reshape(-1, 1, 2)
        cv2.cornerSubPix(gray, full, (window, window), (-1, -1), criteria)
        found.append((known[marker_id], full.reshape(4, 2).astype(np.float64)))
    return found


def _fit(px: np.ndarray, mm: np.ndarray) -> np.ndarray:
    if len(px) == 4:
        return cv2.getPerspectiveTransform(px.astype(np.float32), mm.astype(np.float32)).astype(np.float64)
    h, _ = cv2.findHomography(px, mm, 0)
    return h


def calibrate(gray: np.ndarray, board: MarkerBoard = MarkerBoard()) -> Calibration:
    try:
        found = _detect(gray, board)
    except cv2.error as error:
        return Calibration(board=board, problem=f"marker detection failed ({error})")
    if not found:
        return Calibration(board=board, problem="no scale marker")
    sides = min(float(np.linalg.norm(c - np.roll(c, 1, axis=0), axis=1).min()) for _, c in found)
    if sides < MIN_MARKER_PX:
        return Calibration(board=board, problem=f"scale marker too small ({sides:.0f} px a side)")
    px = np.concatenate([c for _, c in found])
    mm = np.concatenate([m.corners_mm() for m, _ in found])
    homography = _fit(px, mm)
    if homography is None:
        return Calibration(board=board, problem="marker corners do not define a plane")
    mapped = cv2.perspectiveTransform(px.reshape(-1, 1, 2), homography).reshape(-1, 2)
    residual_mm = float(np.sqrt(np.mean(np.sum((mapped - mm) ** 2, axis=1))))
    if residual_mm > MAX_RESIDUAL_MM:
        return Calibration(
            board=board, problem=f"markers are not where the board puts them (corner error {residual_mm:.2f} mm)"
        )
    partial = Calibration(homography=homography, board=board)
    mm_per_px = float(np.sqrt(partial.area_scale(px.mean(axis=0, keepdims=True))[0]))
    dof = max(1, 2 * len(px) - 8)
    sigma = max(MIN_CORNER_SIGMA_PX, residual_mm / mm_per_px * np.sqrt(2 * len(px) / dof))
    rng = np.random.default_rng(0)  # deterministic: the same photograph always gets the same report
    jittered = []
    for _ in range(BOOTSTRAP):
        refit = _fit(px + rng.normal(0.0, sigma, px.shape), mm)
        if refit is not None:
            jittered.append(refit)
    return Calibration(
        homography=homography,
        found=tuple(found),
        board=board,
        mm_per_px=mm_per_px,
        corner_sigma_px=sigma,
        residual_mm=residual_mm,
        _jittered=tuple(jittered),
    )

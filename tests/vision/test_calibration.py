import cv2
import numpy as np
import pytest

from vision.calibration import MarkerBoard, calibrate
from vision.synthetic import shred_tray


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


@pytest.mark.parametrize("perspective", [0.0, 0.06])
def test_marker_plane_maps_back_to_millimetres(perspective: float) -> None:
    tray = shred_tray(seed=21, size_px=(2400, 1800), count=10, perspective=perspective)
    calibration = calibrate(_grey(tray.image), tray.board)
    assert not calibration.problem
    # Points across the whole tray, placed in millimetres, projected by the true camera, measured back.
    truth_mm = np.array([[0.0, 0.0], [150.0, 20.0], [60.0, 120.0], [200.0, 130.0]])
    pixels = cv2.perspectiveTransform(truth_mm.reshape(-1, 1, 2), tray.mm_to_px).reshape(-1, 2)
    measured = calibration.to_mm(pixels)
    assert np.abs(measured - truth_mm).max() < 0.3  # mm, up to 200 mm away from a 50 mm marker


def test_area_scale_is_the_local_jacobian() -> None:
    tray = shred_tray(seed=22, size_px=(2000, 1500), count=5, perspective=0.06)
    calibration = calibrate(_grey(tray.image), tray.board)
    point = np.array([[900.0, 700.0]])
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64) * 2.0 + point
    area_mm2 = cv2.contourArea(calibration.to_mm(square).astype(np.float32))
    assert calibration.area_scale(point + 1.0)[0] * 4.0 == pytest.approx(area_mm2, rel=0.01)


def test_wrong_marker_id_or_tiny_marker_is_a_problem() -> None:
    tray = shred_tray(seed=23, size_px=(1600, 1200), count=5)
    assert calibrate(_grey(tray.image), MarkerBoard.single(50.0, marker_id=7)).problem == "no scale marker"
    small = cv2.resize(tray.image, None, fx=0.045, fy=0.045, interpolation=cv2.INTER_AREA)
    assert calibrate(_grey(small), tray.board).problem != ""

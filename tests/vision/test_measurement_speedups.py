"""The faster forms of measurement steps give what the plain forms gave."""

import cv2
import numpy as np

from tests.vision import independent_corpus as corpus
from vision import segmentation
from vision.tray import _illumination


def test_band_concentration_equals_the_histogram_it_replaces() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        mask = np.zeros((60, 80), np.uint8)
        for _ in range(2):
            a, b = rng.integers(0, 60, 2), rng.integers(0, 60, 2)
            cv2.line(mask, (int(a[0]), int(a[1])), (int(b[0]) + 20, int(b[1])), 1, int(rng.integers(2, 9)))
        ys, xs = np.nonzero(mask)
        thetas = np.radians(np.arange(0.0, 180.0, 2.0))
        plain = []
        for theta in thetas:
            _, v = segmentation._along_across(xs, ys, theta)
            plain.append(float(np.sum(segmentation._histogram(v - np.floor(v.min())) ** 2)))
        fast = segmentation._concentration(xs.astype(np.float64), ys.astype(np.float64), thetas)
        np.testing.assert_allclose(fast, plain, rtol=1e-9)


def test_widest_disc_in_a_pieces_own_box_equals_the_whole_image_transform() -> None:
    lot = corpus.realistic_lot("P-5", 3, tray="blue")
    distance = cv2.cvtColor(lot.image, cv2.COLOR_BGR2GRAY)
    found = segmentation.components(cv2.subtract(distance, 60), 40.0, np.zeros(distance.shape, np.uint8), 1)
    assert found.n > 20
    whole = cv2.distanceTransform(found.counted, cv2.DIST_L2, 5)
    for i in range(found.n):
        peak = float(whole[found.labels == i + 1].max())
        assert segmentation.widest_px(found, i) == max(2.0 * peak - 1.0, 1.0)


def test_illumination_field_recovers_the_vignetting_of_the_tray() -> None:
    h, w = 300, 400
    u = (np.arange(w) / w - 0.5)[None, :]
    v = (np.arange(h) / h - 0.5)[:, None]
    true_gain = np.exp(-0.6 * (u * u + v * v) + 0.1 * u - 0.05 * v)
    tray_bgr = np.array([150.0, 92.0, 34.0], np.float32)
    noise = np.random.default_rng(0).normal(0, 1.5, (h, w, 3))
    image = np.clip(true_gain[:, :, None] * tray_bgr + noise, 0, 255).astype(np.uint8)
    image[100:150, 100:300] = (235, 238, 240)  # a piece of white paper: not tray, left out of the fit
    gain, share = _illumination(image, tray_bgr, np.ones((h, w), bool))
    assert 0.85 < share < 0.92
    np.testing.assert_allclose(gain, true_gain, rtol=0.02)

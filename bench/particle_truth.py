"""Particle measurements matched to what a generator drew: shared by the vision benchmarks."""

from dataclasses import dataclass

import numpy as np

from tests.vision import independent_corpus as corpus
from vision.calibration import BoardMarker, MarkerBoard
from vision.particles import ParticleReport

MATCH_MM = 1.0  # a measured particle whose centre lies this close to a true piece's centre is that piece


@dataclass(frozen=True)
class Matched:
    """Per true piece: whether a particle was measured at its centre, and that particle's area and
    reported 1-sigma area uncertainty (NaN where none was)."""

    true_mm2: np.ndarray
    found: np.ndarray
    measured_mm2: np.ndarray
    sigma_mm2: np.ndarray

    @property
    def error(self) -> np.ndarray:
        """Signed relative area error (measured / true - 1), NaN where not found."""
        return self.measured_mm2 / self.true_mm2 - 1

    @property
    def short(self) -> np.ndarray:
        """Measured short beyond twice its uncertainty: the true area lies above what the verdict allows
        for (the fail-closed failure: a piece this far over the limit could pass)."""
        return self.found & (self.true_mm2 > self.measured_mm2 + 2 * self.sigma_mm2)


def match(report: ParticleReport, centres_mm: np.ndarray, areas_mm2: np.ndarray) -> Matched:
    """The particle `report` measured nearest each true piece (centres and areas in board millimetres)."""
    n = len(areas_mm2)
    nan = np.full(n, np.nan)
    if report.count == 0 or n == 0:
        return Matched(np.asarray(areas_mm2, float), np.zeros(n, bool), nan, nan.copy())
    gaps = np.linalg.norm(np.asarray(centres_mm)[:, None, :] - report.centres_mm[None, :, :], axis=2)
    nearest = gaps.argmin(axis=1)
    found = gaps[np.arange(n), nearest] < MATCH_MM
    return Matched(
        np.asarray(areas_mm2, float),
        found,
        np.where(found, report.areas_mm2[nearest], np.nan),
        np.where(found, report.area_sigma_mm2[nearest], np.nan),
    )


def board_of(lot: corpus.Lot) -> MarkerBoard:
    """The product's marker board for an independent lot: its four markers, the whole frame as tray."""
    markers = tuple(BoardMarker(m.marker_id, m.side_mm, m.x_mm, m.y_mm) for m in lot.markers)
    size = (lot.image.shape[1] / lot.px_per_mm, lot.image.shape[0] / lot.px_per_mm)
    return MarkerBoard(markers, tray_mm=(0.0, 0.0, *size))

"""Particle analysis on trays from the independent generator (tests/vision/independent_corpus.py).

The adversarial lots are the failures that let an oversized piece through: each must never pass, and
the piece itself must be outlined on the evidence (as an offender or as a region that could not be
verified), not merely lost among other complaints.
"""

import cv2
import numpy as np
import pytest

from tests.vision import independent_corpus as corpus
from vision.calibration import BoardMarker, MarkerBoard
from vision.particles import ParticleReport, TraySetup, analyse
from vision.shred_levels import LEVELS


def board_of(lot: corpus.Lot) -> MarkerBoard:
    width_mm = lot.image.shape[1] / lot.px_per_mm
    height_mm = lot.image.shape[0] / lot.px_per_mm
    markers = tuple(BoardMarker(m.marker_id, m.side_mm, m.x_mm, m.y_mm) for m in lot.markers)
    return MarkerBoard(markers, tray_mm=(0.0, 0.0, width_mm, height_mm))


def flagged(report: ParticleReport, lot: corpus.Lot, piece: corpus.Piece) -> list[str]:
    """Which outlines on the evidence enclose the piece's centre."""
    centre = cv2.perspectiveTransform(np.array([[piece.centre_mm]], np.float64), lot.mm_to_px)[0, 0]
    point = (float(centre[0]), float(centre[1]))
    kinds = (("offender", report.offender_outlines), ("unverified", report.ambiguous_outlines))
    return [
        kind
        for kind, outlines in kinds
        if any(cv2.pointPolygonTest(o.reshape(-1, 1, 2).astype(np.float32), point, True) > -3 for o in outlines)
    ]


ADVERSARIAL = corpus.adversarial_lots(seed=3)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_lot_never_passes_and_its_piece_is_outlined(name: str) -> None:
    level, lot = ADVERSARIAL[name]
    report = analyse(lot.image, level, TraySetup(board_of(lot)))
    assert report.verdict != "pass", report.reason
    if name.startswith("near_"):
        # Paper of nearly the tray's colour: the lot can never pass; whether the faint piece itself is
        # outlined depends on how faint it is against the tray's texture.
        assert report.verdict == "cannot_verify" or report.offenders
        return
    assert flagged(report, lot, lot.pieces[0]), f"{name}: the adversarial piece is not outlined ({report.reason})"


def test_dark_paper_is_measured_not_taken_for_tray() -> None:
    level, lot = ADVERSARIAL["dark_blue_paper"]
    report = analyse(lot.image, level, TraySetup(board_of(lot)))
    assert report.verdict == "fail"
    assert report.max_area_mm2 == pytest.approx(lot.pieces[0].area_mm2, rel=0.08)
    assert report.max_width_mm == pytest.approx(10.0, rel=0.08)


def test_a_partly_cut_piece_is_measured_whole() -> None:
    level, lot = ADVERSARIAL["bridged_piece"]
    report = analyse(lot.image, level, TraySetup(board_of(lot)))
    assert "offender" in flagged(report, lot, lot.pieces[0])
    assert report.max_length_mm >= 8.5  # 9 mm end to end, not two 4.5 mm halves


def test_a_curled_strip_is_measured_along_its_axis() -> None:
    level, lot = ADVERSARIAL["curled_long_strip"]
    report = analyse(lot.image, level, TraySetup(board_of(lot)))
    assert "offender" in flagged(report, lot, lot.pieces[0])
    assert report.max_length_mm == pytest.approx(10.0, rel=0.1)


def test_one_oversized_strip_among_about_a_thousand_compliant_pieces() -> None:
    lot = corpus.realistic_lot(
        "NSA-02-01", 5, (3200, 2400), count=1500, extra=(corpus.ExtraPiece(0.9, 14.0, print="text"),)
    )
    assert len(lot.pieces) > 900
    report = analyse(lot.image, "NSA-02-01", TraySetup(board_of(lot)))
    assert report.verdict != "pass"
    assert "offender" in flagged(report, lot, lot.pieces[0])


@pytest.mark.parametrize(("level", "tray"), [("P-4", "blue"), ("P-5", "black"), ("P-7", "blue")])
def test_isolated_pieces_are_measured_to_a_few_percent(level: str, tray: str) -> None:
    lot = corpus.realistic_lot(level, 2, tray=tray)
    report = analyse(lot.image, level, TraySetup(board_of(lot)))
    alone = [p for p in lot.pieces if p.group < 0 and p.curl_deg == 0 and p.print != "text"]
    truth = np.array([p.centre_mm for p in alone])
    gaps = np.linalg.norm(truth[:, None, :] - report.centres_mm[None, :, :], axis=2)
    nearest = gaps.argmin(axis=1)
    found = gaps[np.arange(len(alone)), nearest] < 1.0
    assert found.mean() > 0.95
    errors = np.abs(report.areas_mm2[nearest[found]] / np.array([p.area_mm2 for p in alone])[found] - 1)
    assert np.median(errors) < 0.08


def test_every_particle_carries_an_uncertainty() -> None:
    lot = corpus.realistic_lot("P-4", 1)
    report = analyse(lot.image, "P-4", TraySetup(board_of(lot)))
    assert len(report.area_sigma_mm2) == report.count
    assert np.all(report.area_sigma_mm2 > 0)
    relative = report.area_sigma_mm2 / report.areas_mm2
    assert np.median(relative) < 0.25  # a few per cent from the edges, more where print meets the edge


def test_an_empty_tray_frame_gives_the_same_measurements() -> None:
    lot = corpus.make_lot(corpus.LotSpec(seed=4, count=40, touching_pairs=0, with_empty_tray=True, vignette=0.4))
    board = board_of(lot)
    learned = analyse(lot.image, "P-5", TraySetup(board))
    calibrated = analyse(lot.image, "P-5", TraySetup(board, empty_tray=lot.empty_tray))
    assert calibrated.count == learned.count
    assert np.median(np.abs(np.sort(calibrated.areas_mm2) / np.sort(learned.areas_mm2) - 1)) < 0.03


def _area_errors(report: ParticleReport, lot: corpus.Lot) -> tuple[np.ndarray, np.ndarray]:
    """Signed relative area error of each isolated piece (NaN where none was found at its centre),
    and each one's reported 1-sigma uncertainty relative to its true area."""
    alone = [p for p in lot.pieces if p.group < 0]
    truth = np.array([p.centre_mm for p in alone])
    areas = np.array([p.area_mm2 for p in alone])
    gaps = np.linalg.norm(truth[:, None, :] - report.centres_mm[None, :, :], axis=2)
    nearest = gaps.argmin(axis=1)
    found = gaps[np.arange(len(alone)), nearest] < 1.0
    errors = np.where(found, report.areas_mm2[nearest] / areas - 1, np.nan)
    return errors, report.area_sigma_mm2[nearest] / areas


@pytest.mark.parametrize(("level", "tray"), [("P-4", "black"), ("P-5", "blue"), ("P-7", "black")])
def test_unprinted_pieces_are_measured_to_five_percent(level: str, tray: str) -> None:
    # Plain paper on either tray: the area from the coverage of the edge pixels, unbiased under blur.
    lot = corpus.realistic_lot(level, 5, tray=tray, printed_share=0.0, photo_share=0.0)
    errors, sigmas = _area_errors(analyse(lot.image, level, TraySetup(board_of(lot))), lot)
    assert np.isfinite(errors).mean() > 0.97
    errors, sigmas = errors[np.isfinite(errors)], sigmas[np.isfinite(errors)]
    assert np.percentile(np.abs(errors), 95) < 0.05
    assert abs(np.mean(errors)) < 0.02
    assert np.mean(np.abs(errors) > 2 * sigmas) < 0.02  # the uncertainty covers the error


def test_printed_pieces_are_not_measured_much_smaller() -> None:
    # Print reaching a cut edge hides the edge there (ink on a black tray reads as tray); the straight
    # edge of its clean neighbours puts it back. What remains is a shortfall (about 4 % here, where
    # b83d1f9 left out 9 %; an edge that print covers over most of its length stays hidden), never an excess.
    lot = corpus.realistic_lot("P-5", 6, tray="black", printed_share=1.0, photo_share=0.0)
    errors, sigmas = _area_errors(analyse(lot.image, "P-5", TraySetup(board_of(lot))), lot)
    errors, sigmas = errors[np.isfinite(errors)], sigmas[np.isfinite(errors)]
    assert np.median(errors) > -0.06
    assert np.percentile(errors, 98) < 0.05
    assert np.mean(np.abs(errors) > 2 * sigmas) < 0.03


def test_pieces_whose_edges_print_crosses_are_measured_to_five_percent() -> None:
    # Lines of text cross a strip's edges every line or two, and where a line runs along an edge for a
    # while the paper inside the ink reads clean again while the edge has stepped inward: such a run is
    # found inward of the curve through the rest of the edge and put back on it. 06e1c43 measured 47 %
    # of these pieces more than 5 % small (p90 11 %); what remains is mostly text along most of an edge.
    lot = corpus.realistic_lot("P-5", 8, tray="black", printed_share=1.0, photo_share=0.0)
    errors, sigmas = _area_errors(analyse(lot.image, "P-5", TraySetup(board_of(lot))), lot)
    errors, sigmas = errors[np.isfinite(errors)], sigmas[np.isfinite(errors)]
    assert np.mean(errors < -0.05) < 0.25
    assert np.percentile(np.abs(errors), 90) < 0.08
    assert np.percentile(errors, 98) < 0.05  # restored edges never overshoot the paper
    assert np.mean(np.abs(errors) > 2 * sigmas) < 0.03


def test_print_reaching_an_edge_on_a_coloured_tray_is_measured_to_where_it_meets_the_tray() -> None:
    # On a coloured tray print stands out from the tray as a third colour: where it reaches a cut edge
    # the edge is where print meets tray, placed by the coverage of print across it. 6981d0f measured
    # these narrow printed strips 6.5 % small (median), 63 % of them more than 5 % small.
    lot = corpus.realistic_lot("P-7", 10, tray="blue", printed_share=1.0, photo_share=0.0)
    errors, sigmas = _area_errors(analyse(lot.image, "P-7", TraySetup(board_of(lot))), lot)
    assert np.isfinite(errors).mean() > 0.97
    errors, sigmas = errors[np.isfinite(errors)], sigmas[np.isfinite(errors)]
    assert np.median(errors) > -0.045
    assert np.mean(errors < -0.05) < 0.5
    assert np.mean(np.abs(errors) > 2 * sigmas) < 0.03  # the uncertainty still covers the error


def _true_and_allowed_area(
    level: str, seed: int, tray: str, near_mm: tuple[float, float], **options: object
) -> tuple[float, float]:
    """The true area of the lone text-printed piece of a compliant lot lying at `near_mm`, and the most the
    verdict allows it to be: its measured area plus twice its reported uncertainty."""
    lot = corpus.realistic_lot(level, seed, tray=tray, **options)
    piece = min(lot.pieces, key=lambda p: np.hypot(p.centre_mm[0] - near_mm[0], p.centre_mm[1] - near_mm[1]))
    assert piece.group < 0 and piece.print == "text"
    report = analyse(lot.image, level, TraySetup(board_of(lot)))
    gaps = np.linalg.norm(report.centres_mm - np.array(piece.centre_mm), axis=1)
    assert gaps.min() < 1.0, "the piece was not measured at all"
    i = int(gaps.argmin())
    return piece.area_mm2, float(report.areas_mm2[i] + 2 * report.area_sigma_mm2[i])


def test_a_strip_with_text_along_its_edge_on_black_felt_is_not_measured_short_beyond_its_uncertainty() -> None:
    """Ink along a cut edge reads as tray on black felt; the gaps between its words show where the paper
    ends, and the uncertainty covers what lies between (true 2.61 mm², measured 1.79 and + 2σ 2.42 before)."""
    # The compliant P-7 lot of bench/vision.py's quick run on black felt: a 0.72 x 3.6 mm strip lying alone,
    # a line of text along the whole of one long edge.
    true, allowed = _true_and_allowed_area("P-7", 1, "black", (41.6, 34.0))
    assert true <= allowed


# Other lone strips that bench/vision_size_causes.py found measured short beyond their uncertainty (before
# the allowance for paper hidden under print along an edge: what it was then in each comment).
@pytest.mark.parametrize(
    ("level", "seed", "tray", "near_mm", "options"),
    [
        # Ink stands out from the blue mat, yet a pastel strip whose text runs along half its edge was as short
        # (true 2.62 mm², + 2σ 2.49).
        pytest.param("P-7", 0, "blue", (40.2, 54.2), {}, id="p7_blue_mat"),
        # Dark red paper, text along its lower edge (true 2.61 mm², + 2σ 2.48).
        pytest.param("P-7", 3, "black", (47.4, 58.0), {}, id="p7_dark_paper"),
        # A P-5 strip (1.4 x 10.7 mm), a line of text along all of one long edge, in the lot without curled pieces
        # (true 15.11 mm², measured 10.71, + 2σ 13.91).
        pytest.param("P-5", 3, "black", (84.0, 77.3), {"curled_share": 0.0}, id="p5_black_felt"),
    ],
)
def test_other_strips_with_text_along_an_edge_are_not_measured_short_beyond_their_uncertainty(
    level: str, seed: int, tray: str, near_mm: tuple[float, float], options: dict[str, object]
) -> None:
    true, allowed = _true_and_allowed_area(level, seed, tray, near_mm, **options)
    assert true <= allowed


# The same compliant P-7 lots drawn with their text square to each piece, as on a sheet the shredder cut along its
# sides (`print_square_to_piece`; the corpus's own text runs along the image rows): three lone strips, a line of
# text along most of a long edge or lines across them, measured about 30 % short, beyond their uncertainty
# (bench/vision_size_causes.py's `print_square` column: P-7 p95 19.7 %, against 9.5 % as drawn). Not fixed yet:
# the fail-closed gap this documents is what the next work on print has to close.
@pytest.mark.xfail(strict=True, reason="text square to a strip, along its edge or across it, hides paper beyond "
                   "the hidden-paper allowance")
@pytest.mark.parametrize(
    ("seed", "tray", "near_mm"),
    [
        # A pastel strip on the blue mat, one line of text along its upper edge (true 2.66 mm², + 2σ 2.62).
        pytest.param(0, "blue", (60.6, 68.9), id="blue_mat"),
        # White paper on black felt (true 2.50 mm², + 2σ 2.49).
        pytest.param(1, "black", (47.2, 48.1), id="black_felt"),
        # Dark green paper on black felt, lines across it (true 2.81 mm², + 2σ 2.75).
        pytest.param(3, "black", (51.0, 30.0), id="dark_paper_lines_across"),
    ],
)
def test_strips_whose_text_runs_square_to_them_are_not_measured_short_beyond_their_uncertainty(
    seed: int, tray: str, near_mm: tuple[float, float]
) -> None:
    true, allowed = _true_and_allowed_area("P-7", seed, tray, near_mm, print_square_to_piece=True)
    assert true <= allowed


# What the pieces measured short beyond their uncertainty above came to: a false PASS, found by searching
# small lots on black felt with one oversized printed strip (about 1 lot in 400 at P-5 and in 800 at P-7;
# none in 400 on the blue mat). Text lines run across the image, so only a strip lying along them has one
# on its edge. What each was before the allowance for paper hidden under print, in its comment.
@pytest.mark.parametrize(
    ("level", "seed", "strip"),
    [
        # 5.23 mm² against 5: measured 4.17, + 2σ 4.83, pass.
        pytest.param("P-7", 67, corpus.ExtraPiece(0.85, 6.2, print="text"), id="p7"),
        # 31.50 mm² against 30: measured 24.43, + 2σ 29.59, pass.
        pytest.param("P-5", 251, corpus.ExtraPiece(1.7, 18.5, print="text"), id="p5"),
    ],
)
def test_a_strip_over_the_limit_with_text_along_its_edge_on_black_felt_does_not_pass(
    level: str, seed: int, strip: corpus.ExtraPiece
) -> None:
    lot = corpus.realistic_lot(
        level, seed, (960, 720), count=25, tray="black", extra=(strip,), touching_pairs=0, overlapping_pairs=0
    )
    assert lot.pieces[0].area_mm2 > LEVELS[level].max_area_mm2
    report = analyse(lot.image, level, TraySetup(board_of(lot)))
    assert report.verdict != "pass", report.reason

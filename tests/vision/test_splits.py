"""When touching pieces are measured apart, on both generators (`vision.synthetic` and the independent
corpus): two straight strips crossing (an X) are two pieces; strips meeting end to side (a T) may be
one folded piece and never pass, unless the stem touches the bar only at a corner, tray between; a line
of print across a piece never cuts it in two; splitting never hides a piece over the limit, nor a strip
folded flat into stretches that each look like a compliant piece."""

import cv2
import numpy as np
import pytest

from tests.vision import independent_corpus as corpus
from tests.vision.test_particles_independent import board_of, flagged
from vision import synthetic
from vision.particles import ParticleReport, TraySetup, analyse

FOLD_REASON = "could be one folded piece"


def test_compliant_strips_meeting_end_to_side_are_outlined_as_maybe_one_folded_piece() -> None:
    # A T contact is not proved two pieces: a strip with its middle stretch folded flat under another
    # shows the same outline from above. On vision.synthetic's T pairs the stem's end lies over the
    # bar's edge across its width (no tray between them): split, each pair would pass; it must give
    # cannot_verify, the pair outlined and the operator told to spread the pieces.
    tray = synthetic.shred_tray(seed=20, size_px=(2000, 1500), particle_mm=(1.5, 12.0), count=60, t_pairs=6)
    report = analyse(tray.image, "P-5", TraySetup(tray.board))
    assert report.verdict == "cannot_verify", report.reason
    assert FOLD_REASON in report.reason
    pairs = tray.particles[:12]  # the T pairs are placed first
    assert all(_outlined(report, tray.mm_to_px, p.centre_mm) for p in pairs)


def test_strips_touching_only_at_a_corner_pass_as_two_pieces() -> None:
    # A stem whose square end touches the bar at one corner, a wedge of tray between the rest of its end
    # and the bar's side: one folded or branched piece is paper across its whole width where it meets
    # the bar, so this is two pieces, measured apart. The crossing (an X) is two pieces too.
    lot = corpus.realistic_lot("P-5", 3, tray="black")  # pairs touching corner to side, at an angle
    groups = sorted({p.group for p in lot.pieces if p.group >= 0})
    assert len(groups) >= 2
    report = analyse(lot.image, "P-5", TraySetup(board_of(lot)))
    assert report.verdict == "pass", report.reason
    assert not any(flagged(report, lot, p) for p in lot.pieces)
    tray = synthetic.shred_tray(seed=23, size_px=(2000, 1500), particle_mm=(1.5, 12.0), count=60, corner_pairs=2)
    report = analyse(tray.image, "P-5", TraySetup(tray.board))
    assert report.verdict == "pass", report.reason
    assert report.count == len(tray.particles)  # each pair measured as two pieces


# One strip folded into a T: along, up the stem and back down under itself, along again (square), and
# the same with the stem at 60 degrees. Every stretch is within NSA/CSS 02-01 (1 x 5 mm), the strip
# (11 mm) is not; where the stem meets the bar it is paper across its whole width, no tray between.
T_FOLDS = {
    "t_fold_square": synthetic.FoldedStrip(0.75, ((2.0, 0.0), (3.5, 90.0), (3.5, 180.0), (2.0, 90.0))),
    "t_fold_oblique": synthetic.FoldedStrip(0.75, ((2.0, 0.0), (3.5, 60.0), (3.5, 180.0), (2.0, 120.0))),
}


def _folded_t(name: str, seed: int, tray: str, paper: str = "white") -> tuple[corpus.Lot, ParticleReport]:
    """An NSA 02-01 lot of the independent corpus with the T fold `name` among its pieces, and its report."""
    fold = T_FOLDS[name]
    lot = corpus.realistic_lot(
        "NSA-02-01",
        seed,
        tray=tray,
        touching_pairs=0,
        overlapping_pairs=0,
        extra=(corpus.ExtraPiece(fold.width_mm, fold.stretches[0][0], paper=paper, folds=fold.stretches[1:]),),
    )
    return lot, analyse(lot.image, "NSA-02-01", TraySetup(board_of(lot)))


@pytest.mark.parametrize("name", sorted(T_FOLDS))
def test_one_piece_folded_into_a_t_never_passes(name: str) -> None:
    fold = T_FOLDS[name]
    for seed in (0, 1):
        lot, report = _folded_t(name, seed, "black")
        assert report.verdict != "pass", (name, seed, report.reason)
        assert _outlined(report, lot.mm_to_px, lot.pieces[0].centre_mm), (name, seed, report.reason)
        tray = synthetic.shred_tray(
            seed=40 + seed, size_px=(2000, 1500), particle_mm=(0.75, 4.0), count=200, folded=[fold]
        )
        report = analyse(tray.image, "NSA-02-01", TraySetup(tray.board))
        assert report.verdict != "pass", (name, seed, report.reason)


def test_an_oversized_strip_touching_another_still_fails() -> None:
    # 1.5 x 22 mm: 33 mm², over P-5's 30 mm² whether measured alone or with the piece it touches.
    lot = corpus.realistic_lot("P-5", 1, tray="black", cut=corpus.Cut(1.5, 22.0, 0.02), count=20)
    assert analyse(lot.image, "P-5", TraySetup(board_of(lot))).verdict == "fail"
    tray = synthetic.shred_tray(
        seed=21, size_px=(2000, 1500), particle_mm=(1.5, 22.0), size_jitter=0.02, count=0, t_pairs=4
    )
    assert analyse(tray.image, "P-5", TraySetup(tray.board)).verdict == "fail"


def test_a_printed_line_across_a_piece_never_splits_it() -> None:
    # A 0.9 x 9 mm strip (NSA/CSS 02-01: 5 mm at most) with print across it, on a black tray where ink
    # reads as tray: it must be measured whole, never as compliant halves.
    lot = corpus.realistic_lot("NSA-02-01", 3, tray="black", extra=(corpus.ExtraPiece(0.9, 9.0, print="text"),))
    report = analyse(lot.image, "NSA-02-01", TraySetup(board_of(lot)))
    assert report.verdict != "pass"
    assert flagged(report, lot, lot.pieces[0])
    tray = synthetic.shred_tray(
        seed=22, size_px=(2000, 1500), particle_mm=(0.75, 4.0), count=200, oversized_mm=[(0.9, 9.0)]
    )
    piece = tray.particles[0]
    image = tray.image.copy()
    # A line of ink (tray-dark, 0.25 mm) across the strip's middle.
    across = np.radians(piece.angle_deg + 90)
    ends_mm = np.array(
        [[piece.centre_mm[0] + s * np.cos(across), piece.centre_mm[1] + s * np.sin(across)] for s in (-1, 1)]
    )
    ends = cv2.perspectiveTransform(ends_mm[None], tray.mm_to_px)[0]
    cv2.line(image, tuple(int(v) for v in ends[0]), tuple(int(v) for v in ends[1]), (38, 42, 35), 3, cv2.LINE_AA)
    report = analyse(image, "NSA-02-01", TraySetup(tray.board))
    assert report.verdict == "fail", report.reason
    assert report.max_length_mm >= 8.5


def _outlined(report: ParticleReport, mm_to_px: np.ndarray, centre_mm: tuple[float, float]) -> bool:
    """Whether an outline on the evidence (offender, unverified or too near the limit to pass) encloses
    this point of the tray."""
    centre = cv2.perspectiveTransform(np.array([[centre_mm]], np.float64), mm_to_px)[0, 0]
    point = (float(centre[0]), float(centre[1]))
    outlines = (*report.offender_outlines, *report.ambiguous_outlines, *report.near_limit_outlines)
    return any(cv2.pointPolygonTest(o.reshape(-1, 1, 2).astype(np.float32), point, True) > -3 for o in outlines)


@pytest.mark.parametrize("name", sorted(synthetic.FOLDS))
def test_a_strip_folded_twice_is_never_split_into_passing_stretches(name: str) -> None:
    # Every stretch of these folded strips is within NSA/CSS 02-01 (1 x 5 mm) on its own; the strip is
    # not. Two straight stretches at an angle are what two_strips splits: a Z folded back across itself
    # must not be taken for two pieces meeting (it was: 0.7 x 8.1 mm passed as two 3.6 mm strips).
    fold = synthetic.FOLDS[name]
    for seed in (0, 1):
        stretches = fold.stretches
        lot = corpus.realistic_lot(
            "NSA-02-01",
            seed,
            tray="black",
            touching_pairs=0,  # nothing else on the tray to refuse the lot: the fold alone decides
            overlapping_pairs=0,
            extra=(corpus.ExtraPiece(fold.width_mm, stretches[0][0], folds=stretches[1:]),),
        )
        report = analyse(lot.image, "NSA-02-01", TraySetup(board_of(lot)))
        assert report.verdict != "pass", (name, seed, report.reason)
        assert flagged(report, lot, lot.pieces[0]), (name, seed, report.reason)
        tray = synthetic.shred_tray(
            seed=40 + seed, size_px=(2000, 1500), particle_mm=(0.75, 4.0), count=200, folded=[fold]
        )
        report = analyse(tray.image, "NSA-02-01", TraySetup(tray.board))
        assert report.verdict != "pass", (name, seed, report.reason)


def test_a_z_folded_back_on_the_synthetic_tray_never_passes() -> None:
    # On vision.synthetic's flat rendering (one tone, no shade at the folds) the Z folded back across
    # itself shows as a T of its two long stretches: it must not pass as two pieces.
    tray = synthetic.shred_tray(
        seed=41, size_px=(2000, 1500), particle_mm=(0.75, 4.0), count=200, folded=[synthetic.FOLDS["z_fold_crossing"]]
    )
    report = analyse(tray.image, "NSA-02-01", TraySetup(tray.board))
    assert report.verdict != "pass", report.reason


def _dimmed(image: np.ndarray, mm_to_px: np.ndarray, piece: synthetic.TrueParticle, share: float) -> np.ndarray:
    """A synthetic tray's image with one piece of darker paper: its brightness above the tray's cut to `share`
    (it lies on top where it meets another, as a stem resting on a bar)."""
    c, s = np.cos(np.radians(piece.angle_deg)), np.sin(np.radians(piece.angle_deg))
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * (piece.length_mm / 2, piece.width_mm / 2)
    corners = half @ np.array([[c, s], [-s, c]]) + piece.centre_mm
    quad = cv2.perspectiveTransform(corners[None].astype(np.float64), mm_to_px)[0]
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(quad).astype(np.int32)], 1)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0  # and its blurred rim
    out = image.astype(np.float32)
    out[mask] = synthetic.TRAY_GREY + (out[mask] - synthetic.TRAY_GREY) * share
    return np.clip(out, 0, 255).astype(np.uint8)


def test_a_stem_of_darker_paper_touching_a_bar_at_a_corner_is_measured_as_two_pieces() -> None:
    # The corner test reads paper and tray at half the region's level, which is the union's: a stem of
    # darker paper than the bar fell below it whole, read as tray, its end nowhere, and the pair was held
    # as maybe one folded piece. Now at half the dimmer paper's level: the wedge of tray shows.
    lot = corpus.realistic_lot("P-5", 1, tray="black")  # group 0: a white bar, a dark stem at its side
    pair = [p for p in lot.pieces if p.group == 0]
    assert sorted(p.paper for p in pair) == ["dark", "white"]
    report = analyse(lot.image, "P-5", TraySetup(board_of(lot)))
    assert not any(flagged(report, lot, p) for p in pair), report.reason
    tray = synthetic.shred_tray(seed=23, size_px=(2000, 1500), particle_mm=(1.5, 12.0), count=60, corner_pairs=2)
    image = tray.image
    for stem in (tray.particles[1], tray.particles[3]):  # the second of each pair, placed first
        image = _dimmed(image, tray.mm_to_px, stem, 0.35)
    report = analyse(image, "P-5", TraySetup(tray.board))
    assert report.verdict == "pass", report.reason
    assert report.count == len(tray.particles)


def test_a_darker_stem_resting_across_the_bar_edge_or_a_dark_folded_t_still_never_passes() -> None:
    # The neighbours: vision.synthetic's T pairs (the stem's end over the bar's edge) with stems of darker
    # paper are still held as maybe one folded piece; a strip of dark paper folded into a T never passes.
    tray = synthetic.shred_tray(seed=20, size_px=(2000, 1500), particle_mm=(1.5, 12.0), count=60, t_pairs=6)
    image = tray.image
    for stem in tray.particles[1:12:2]:
        image = _dimmed(image, tray.mm_to_px, stem, 0.35)
    report = analyse(image, "P-5", TraySetup(tray.board))
    assert report.verdict == "cannot_verify", report.reason
    assert FOLD_REASON in report.reason
    assert all(_outlined(report, tray.mm_to_px, p.centre_mm) for p in tray.particles[:12])
    for name in sorted(T_FOLDS):
        for seed in (0, 1):
            lot, report = _folded_t(name, seed, "blue", paper="dark")
            assert report.verdict != "pass", (name, seed, report.reason)
            assert _outlined(report, lot.mm_to_px, lot.pieces[0].centre_mm), (name, seed, report.reason)

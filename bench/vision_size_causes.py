"""What makes the particle size error: the same compliant lots rendered with one cause taken away at a time.

`bench/vision.py` reports the area error p95 over isolated pieces of compliant lots. Here each lot of the
independent generator (tests/vision/independent_corpus.py) is drawn again with the same pieces in the same
places but without read/shot noise and JPEG, without print, without both, without curl, with its text square to
each piece (as on a sheet cut along its sides; the generator's own text runs along the image rows), and (full
run) with nothing but ragged edges, blur and perspective ('ideal'); the synthetic generator (vision/synthetic.py,
which draws neither print nor JPEG) without noise, perspective, shadows, lighting gradient, and none of them.
For each level and factor: the isolated pieces and how many were not matched to a measured particle, the
median signed error (bias), median and p95 of |measured - true| / true, p95 on each tray colour (trays
alternate blue mat and black felt by seed, as in bench/vision.py), and how many pieces were measured short
beyond their uncertainty (true area > measured + 2 sigma: a piece that far over the limit could pass, the
fail-closed figure) with the worst such excess. The independent as-is renders are also broken down by piece
(text, no print, photo, curled). `--oversized N`: N small lots a level on black felt, each with one printed
strip about 5 % over the area limit: how many pass (must be 0) and in how many the strip is measured short
beyond 2 sigma. Prints a table, then one JSON line.
Usage: python bench/vision_size_causes.py [--quick] [--json PATH] [--shorts] [--oversized N]
(--shorts: each piece measured short beyond its uncertainty, on stderr)
"""

import argparse
import itertools
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.particle_truth import Matched, board_of, match
from tests.vision import independent_corpus as corpus
from vision import synthetic
from vision.particles import TraySetup, analyse

LEVELS = ("P-4", "P-5", "P-7")
TRAY_OF_SEED = ("blue", "black")
NO_PRINT = {"printed_share": 0.0, "photo_share": 0.0}
NO_NOISE_JPEG = {"noise": 0.0, "shot_noise": 0.0, "jpeg": 0}
# Each factor: what `realistic_lot` is given on top of the lot's own settings.
INDEPENDENT_FACTORS: dict[str, dict[str, object]] = {
    "as_is": {},
    "no_noise_jpeg": NO_NOISE_JPEG,
    "no_print": NO_PRINT,
    "no_print_noise_jpeg": {**NO_PRINT, **NO_NOISE_JPEG},
    "no_curl": {"curled_share": 0.0},
    # Text square to each piece, as on a sheet cut along its sides (the generator's own text runs along the image
    # rows, so on a piece at an angle its lines cross the cut edges at that angle).
    "print_square": {"print_square_to_piece": True},
}
# Full run only: nothing left but the pieces' ragged edges, blur and the perspective of the camera.
IDEAL_INDEPENDENT = {**NO_PRINT, **NO_NOISE_JPEG, "curled_share": 0.0, "vignette": 0.0, "dark_share": 0.0}
SYNTHETIC_FACTORS: dict[str, dict[str, object]] = {
    "as_is": {},
    "no_noise": {"noise_sigma": 0.0},
    "no_perspective": {"perspective": 0.0},
    "no_shadows": {"shadows": False},
    "no_gradient": {"gradient": 0.0},
    "ideal": {"noise_sigma": 0.0, "perspective": 0.0, "gradient": 0.0, "shadows": False},
}
# --oversized: one printed strip about 5 % over the level's area limit (width within it) in a small lot on black
# felt, where a line of text along its edge reads as tray. How often does the lot pass?
OVERSIZED = {
    "P-4": corpus.ExtraPiece(5.0, 33.6, print="text"),  # 168 mm² against 160
    "P-5": corpus.ExtraPiece(1.7, 18.5, print="text"),  # 31.5 against 30
    "P-7": corpus.ExtraPiece(0.85, 6.2, print="text"),  # 5.27 against 5
}
TOUCH_MM = 0.5  # synthetic pieces whose outlines come this close are a touching pair, not isolated


@dataclass(frozen=True)
class Truth:
    """Isolated pieces of one render with what they are (print kind, curl), in board millimetres."""

    centres_mm: np.ndarray
    areas_mm2: np.ndarray
    kinds: tuple[str, ...]  # 'text', 'none', 'photo'; 'plain' for the synthetic generator
    curled: np.ndarray


@dataclass(frozen=True)
class Short:
    """A piece measured short beyond twice its uncertainty."""

    where: str
    centre_mm: tuple[float, float]
    kind: str
    true_mm2: float
    measured_mm2: float
    upper_mm2: float


@dataclass
class Tally:
    """Matched pieces of one (corpus, level, factor) cell, over all its lots."""

    true: int = 0
    errors: list[float] = field(default_factory=list)  # |relative error| (%) of each matched piece
    signed: list[float] = field(default_factory=list)  # the same with its sign (+: measured large)
    errors_by_tray: dict[str, list[float]] = field(default_factory=dict)
    shorts: list[Short] = field(default_factory=list)

    def add(self, matched: Matched, keep: np.ndarray, tray: str, where: str, truth: Truth) -> None:
        self.true += int(keep.sum())
        found = keep & matched.found
        relative = (np.abs(matched.error[found]) * 100).tolist()
        self.errors += relative
        self.signed += (matched.error[found] * 100).tolist()
        self.errors_by_tray.setdefault(tray, []).extend(relative)
        for i in np.flatnonzero(keep & matched.short):
            centre = (round(float(truth.centres_mm[i, 0]), 1), round(float(truth.centres_mm[i, 1]), 1))
            upper = float(matched.measured_mm2[i] + 2 * matched.sigma_mm2[i])
            self.shorts.append(
                Short(where, centre, truth.kinds[i], float(matched.true_mm2[i]), float(matched.measured_mm2[i]), upper)
            )

    def figures(self) -> dict[str, float]:
        errors, by_tray, shorts = self.errors, self.errors_by_tray, self.shorts
        p95 = float(np.percentile(errors, 95)) if errors else float("nan")
        out = {
            "pieces": float(self.true),
            "missed": float(self.true - len(errors)),
            "median_pct": float(np.median(errors)) if errors else float("nan"),
            "bias_pct": float(np.median(self.signed)) if errors else float("nan"),
            "p95_pct": p95,
            "short_2sigma": float(len(shorts)),
            # How far over its allowance the worst short piece is: a piece that much over the limit could pass.
            "worst_excess_pct": max((100 * (s.true_mm2 / s.upper_mm2 - 1) for s in shorts), default=0.0),
        }
        for tray in TRAY_OF_SEED:
            if by_tray.get(tray):
                out[f"p95_pct_{tray}"] = float(np.percentile(by_tray[tray], 95))
        return out


def _isolated_synthetic(particles: tuple[synthetic.TrueParticle, ...]) -> np.ndarray:
    """Which drawn rectangles lie clear of every other by TOUCH_MM (the generator does not say)."""
    rects = [
        ((p.centre_mm[0], p.centre_mm[1]), (p.length_mm + TOUCH_MM, p.width_mm + TOUCH_MM), p.angle_deg)
        for p in particles
    ]
    centres = np.array([p.centre_mm for p in particles])
    reach = np.array([np.hypot(p.length_mm, p.width_mm) / 2 + TOUCH_MM for p in particles])
    alone = np.ones(len(particles), bool)
    for i in range(len(particles)):
        near = np.flatnonzero(np.linalg.norm(centres - centres[i], axis=1) < reach + reach[i])
        for j in near[near != i]:
            kind, _ = cv2.rotatedRectangleIntersection(rects[i], rects[j])
            if kind != cv2.INTERSECT_NONE:
                alone[i] = False
                break
    return alone


def _independent(quick: bool) -> Iterator[tuple[str, str, str, str, TraySetup, np.ndarray, Truth]]:
    """(level, factor, tray, name, setup, image, truth) for every independent render."""
    factors = dict(INDEPENDENT_FACTORS)
    if not quick:
        factors["ideal"] = IDEAL_INDEPENDENT
    for level in LEVELS:
        for seed in range(2 if quick else 4):
            tray = TRAY_OF_SEED[seed % 2]
            for factor, options in factors.items():
                lot = corpus.realistic_lot(level, seed, tray=tray, **options)
                alone = [p for p in lot.pieces if p.group < 0]
                truth = Truth(
                    np.array([p.centre_mm for p in alone]),
                    np.array([p.area_mm2 for p in alone]),
                    tuple(p.print for p in alone),
                    np.array([p.curl_deg > 0 for p in alone]),
                )
                yield level, factor, tray, f"{level} seed {seed} {tray}", TraySetup(board_of(lot)), lot.image, truth


def _synthetic(quick: bool) -> Iterator[tuple[str, str, str, str, TraySetup, np.ndarray, Truth]]:
    """The same for the synthetic generator: each level's cut at the independent lots' scale, on bench/vision.py's
    12 MP tray (a 2 MP one leaves too little room beside its 50 mm marker), lots otherwise set as bench/vision.py's."""
    size = (4000, 3000)
    for level in LEVELS:
        cut, px_per_mm = corpus.LEVEL_CUTS[level]
        tray_mm2 = size[0] * size[1] / px_per_mm**2
        for seed in range(2 if quick else 6):
            lot_options: dict[str, object] = {
                "seed": 10 + seed,
                "size_px": size,
                "px_per_mm": px_per_mm,
                "particle_mm": (cut.width_mm, cut.length_mm),
                "count": int(0.12 * tray_mm2 / (cut.width_mm * cut.length_mm)),
                "t_pairs": 5 * (seed % 2),
                "perspective": 0.04 * (seed % 2),
                "blur_px": 0.8 + 0.2 * (seed % 3),
            }
            for factor, options in SYNTHETIC_FACTORS.items():
                tray = synthetic.shred_tray(**{**lot_options, **options})  # type: ignore[arg-type]
                alone = _isolated_synthetic(tray.particles)
                kept = [p for p, a in zip(tray.particles, alone, strict=True) if a]
                truth = Truth(
                    np.array([p.centre_mm for p in kept]),
                    np.array([p.area_mm2 for p in kept]),
                    ("plain",) * len(kept),
                    np.zeros(len(kept), bool),
                )
                yield level, factor, "grey", f"{level} seed {10 + seed}", TraySetup(tray.board), tray.image, truth


PIECE_KINDS: dict[str, Callable[[Truth], np.ndarray]] = {
    "text": lambda t: np.array([k == "text" for k in t.kinds]) & ~t.curled,
    "no_print": lambda t: np.array([k == "none" for k in t.kinds]) & ~t.curled,
    "photo": lambda t: np.array([k == "photo" for k in t.kinds]),
    "curled": lambda t: t.curled,
}


def run(quick: bool, shorts: bool) -> dict[tuple[str, str, str], Tally]:
    cells: dict[tuple[str, str, str], Tally] = {}
    for name, renders in (("independent", _independent(quick)), ("synthetic", _synthetic(quick))):
        for level, factor, tray, where, setup, image, truth in renders:
            matched = match(analyse(image, level, setup), truth.centres_mm, truth.areas_mm2)
            label = f"{name} {where} {factor}"
            cells.setdefault((name, level, factor), Tally()).add(
                matched, np.ones(len(truth.areas_mm2), bool), tray, label, truth
            )
            if factor == "as_is" and name == "independent":
                for kind, which in PIECE_KINDS.items():
                    cells.setdefault((name, level, f"as_is[{kind}]"), Tally()).add(
                        matched, which(truth), tray, label, truth
                    )
    if shorts:
        for (_, _, factor), tally in cells.items():
            if "[" in factor:
                continue  # the same pieces as their as_is cell
            for s in tally.shorts:
                print(
                    f"{s.where}: {s.kind} piece at {s.centre_mm} mm: true {s.true_mm2:.2f} mm², measured"
                    f" {s.measured_mm2:.2f}, measured + 2σ {s.upper_mm2:.2f}",
                    file=sys.stderr,
                )
    return cells


def oversized(lots: int) -> dict[str, float]:
    """False passes among `lots` small lots a level, each with one OVERSIZED strip, its text along the image rows
    and again square to the pieces ('square' in the keys); the seeds on stderr."""
    figures: dict[str, float] = {}
    for (level, strip), square in itertools.product(OVERSIZED.items(), (False, True)):
        name = f"{level}{'_square' if square else ''}"
        passed, short, placed = [], 0, 0
        for seed in range(lots):
            try:
                lot = corpus.realistic_lot(
                    level,
                    seed,
                    (960, 720),
                    count=25,
                    tray="black",
                    extra=(strip,),
                    touching_pairs=0,
                    overlapping_pairs=0,
                    print_square_to_piece=square,
                )
            except RuntimeError:  # no room for the strip on this tray
                continue
            placed += 1
            report = analyse(lot.image, level, TraySetup(board_of(lot)))
            piece = lot.pieces[0]
            short += int(match(report, np.array([piece.centre_mm]), np.array([piece.area_mm2])).short[0])
            if report.verdict == "pass":
                passed.append(seed)
        print(f"oversized {name}: {len(passed)} of {placed} lots pass (seeds {passed})", file=sys.stderr)
        figures |= {
            f"oversized_{name}_lots": float(placed),
            f"oversized_{name}_false_pass": float(len(passed)),
            f"oversized_{name}_short_2sigma": float(short),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="2 lots a level and factor (else 4 independent, 6 synthetic, and 'ideal')"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--shorts", action="store_true", help="each piece measured short beyond 2σ (stderr)")
    parser.add_argument("--oversized", type=int, default=0, metavar="N", help="also N lots a level with a strip over")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    cells = run(args.quick, args.shorts)
    header = f"{'corpus':12} {'level':5} {'factor':20} {'pieces':>6} {'missed':>6} {'bias%':>6} {'median%':>7}"
    print(header + f" {'p95%':>6} {'p95 blue':>8} {'p95 blk':>8} {'short>2σ':>8} {'worst+%':>7}")
    figures: dict[str, float] = {}
    for (name, level, factor), tally in cells.items():
        f = tally.figures()
        tray_cols = f"{f.get('p95_pct_blue', float('nan')):8.1f} {f.get('p95_pct_black', float('nan')):8.1f}"
        print(
            f"{name:12} {level:5} {factor:20} {f['pieces']:6.0f} {f['missed']:6.0f} {f['bias_pct']:6.2f}"
            f" {f['median_pct']:7.2f}"
            f" {f['p95_pct']:6.2f} {tray_cols} {f['short_2sigma']:8.0f} {f['worst_excess_pct']:7.1f}"
        )
        for key, value in f.items():
            if np.isfinite(value):  # a cell without pieces of a kind has no error to report
                figures[f"size_{name}_{level}_{factor}_{key}"] = round(value, 3)
    if args.oversized:
        found = oversized(args.oversized)
        for name in (f"{level}{square}" for level in OVERSIZED for square in ("", "_square")):
            print(
                f"oversized {name}: {found[f'oversized_{name}_false_pass']:.0f} false PASS,"
                f" strip short beyond 2σ in {found[f'oversized_{name}_short_2sigma']:.0f}"
                f" of {found[f'oversized_{name}_lots']:.0f} lots"
            )
        figures |= found
    line = json.dumps(figures)
    if args.json:
        args.json.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

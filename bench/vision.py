"""Vision benchmark on two image generators that share no code: `vision.synthetic` (the product's own)
and `tests/vision/independent_corpus.py` (written apart from it). A figure holds only if it holds on both.

Particles: false PASS over the adversarial lots (must be 0), area error p95 over isolated pieces of
compliant lots, share of compliant lots judged 'pass', time per 12 MP frame on one core against a
plain grey+Otsu pass over the same frame. Within one re-image (as the destruction station offers it): a lot
whose first frame is 'cannot_verify' gets a second frame of the same lot with its touching pieces spread
apart (the same generator, the same pieces), judged with `judge_frames` (the first frame's report reused);
the share of compliant lots passing so, and false PASS over the adversarial lots spread the same way (must be 0).
Labels: decode rate and wrong decodes over the degradations,
a covered target beside a neighbour (must be 'not found'), time per 2 MP frame against OpenCV's
QRCodeDetector on the same photos. People: frames counted exactly and sequences whose crossings are
right. Prints a table, then one JSON line.
Usage: python bench/vision.py [--quick] [--only particles|labels|people] [--reasons] [--json PATH]
(--reasons: each compliant particle lot's verdict and reason on stderr)
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.particle_truth import board_of, match
from tests.vision import independent_corpus as corpus
from vision import synthetic
from vision.labels import LabelData, compare, decode_payload, read_label, render_label
from vision.particles import ParticleReport, TraySetup, analyse, judge_frames
from vision.people import PeopleConfig, PeopleCounter, PortalLine

ITEM = LabelData("ITEM-0042", "REG/2026/17", "secret", "10 years from 2026-01-01")
NEIGHBOUR = LabelData("ITEM-0043", "REG/2026/18", "secret", "10 years from 2026-01-01")


def _median_ms(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _errors(report: ParticleReport, truth_mm: np.ndarray, areas: np.ndarray) -> list[float]:
    """Relative area error (%) of each true piece; a piece not found counts as wholly wrong."""
    matched = match(report, truth_mm, areas)
    return np.where(matched.found, np.abs(matched.error) * 100, 100.0).tolist()


def particles(quick: bool, reasons: bool = False) -> dict[str, float]:
    figures: dict[str, float] = {}
    # Speed: one 12 MP frame from each generator, one core.
    big = corpus.realistic_lot("P-5", 11, (4000, 3000), count=400 if quick else 1500)
    tray = synthetic.shred_tray(seed=1, size_px=(4000, 3000), particle_mm=(2.0, 14.0), count=800, touching_pairs=10)
    runs = 3 if quick else 7
    setup_big = TraySetup(board_of(big))
    figures["particle_ms_12mp_independent"] = _median_ms(lambda: analyse(big.image, "P-5", setup_big), runs)
    figures["particle_ms_12mp_synthetic"] = _median_ms(lambda: analyse(tray.image, "P-5", TraySetup(tray.board)), runs)

    def reference() -> None:
        grey = cv2.cvtColor(big.image, cv2.COLOR_BGR2GRAY)
        cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)

    figures["particle_reference_ms"] = _median_ms(reference, runs)

    # Adversarial lots: none may pass, alone or with a second frame of the lot spread apart.
    false_pass = reimaged_pass = 0
    seeds = (0,) if quick else (0, 1, 2)
    adversarial = 0
    for seed in seeds:
        spread_lots = corpus.adversarial_lots(seed=seed, spread=True)
        for name, (level, lot) in corpus.adversarial_lots(seed=seed).items():
            setup = TraySetup(board_of(lot))
            first = analyse(lot.image, level, setup)
            false_pass += first.verdict == "pass"
            again = judge_frames([first, analyse(spread_lots[name][1].image, level, setup)], level)
            reimaged_pass += again.verdict == "pass"
            adversarial += 1
    size = (2400, 1800) if quick else (4000, 3000)
    oversized = corpus.thousands_with_one_oversized(seed=0, size_px=size)
    oversized_spread = corpus.thousands_with_one_oversized(seed=0, size_px=size, spread=True)
    oversized_setup = TraySetup(board_of(oversized))
    first = analyse(oversized.image, "NSA-02-01", oversized_setup)
    false_pass += first.verdict == "pass"
    again = judge_frames([first, analyse(oversized_spread.image, "NSA-02-01", oversized_setup)], "NSA-02-01")
    reimaged_pass += again.verdict == "pass"

    def synthetic_lot(level: str, **options: object) -> tuple[int, int]:
        """(passes alone, passes with a second frame spread apart) for one synthetic adversarial lot."""
        tray = synthetic.shred_tray(**options)  # type: ignore[arg-type]
        spread = synthetic.shred_tray(**options, spread=True)  # type: ignore[arg-type]
        setup = TraySetup(tray.board)
        first = analyse(tray.image, level, setup)
        again = judge_frames([first, analyse(spread.image, level, setup)], level)
        return first.verdict == "pass", again.verdict == "pass"

    common = {"seed": 7, "size_px": (4000, 3000), "particle_mm": (0.8, 4.5), "count": 2500}
    synthetic_lots = [
        ("P-7", {**common, "oversized_mm": [(0.9, 14.0)]}),
        (
            "P-5",
            {"seed": 4, "size_px": (1600, 1200), "particle_mm": (1.5, 12.0), "count": 40, "oversized_mm": [(3.0, 6.0)]},
        ),
    ]
    for seed in seeds:
        for fold in synthetic.FOLDS.values():  # strips folded flat: no stretch may pass on its own
            synthetic_lots.append(
                (
                    "NSA-02-01",
                    {
                        "seed": 40 + seed,
                        "size_px": (2000, 1500),
                        "particle_mm": (0.75, 4.0),
                        "count": 200,
                        "folded": [fold],
                    },
                )
            )
    synthetic_pass = synthetic_reimaged_pass = 0
    for level, options in synthetic_lots:
        alone, reimaged = synthetic_lot(level, **options)
        synthetic_pass += alone
        synthetic_reimaged_pass += reimaged
    figures["particle_false_pass_independent"] = false_pass
    figures["particle_adversarial_lots_independent"] = adversarial + 1
    figures["particle_false_pass_synthetic"] = synthetic_pass
    figures["particle_adversarial_lots_synthetic"] = len(synthetic_lots)
    figures["particle_false_pass_reimage_independent"] = reimaged_pass
    figures["particle_false_pass_reimage_synthetic"] = synthetic_reimaged_pass

    # Compliant realistic lots: size error and share judged 'pass'.
    independent_errors: list[float] = []
    passed = lots = reimaged = passed_reimaged = 0
    for level in ("P-4", "P-5", "P-7"):
        for seed, tray_kind in ((0, "blue"), (1, "black"), (2, "blue"), (3, "black"))[: 2 if quick else 4]:
            lot = corpus.realistic_lot(level, seed, tray=tray_kind)
            report = analyse(lot.image, level, TraySetup(board_of(lot)))
            if reasons:
                print(
                    f"independent {level} seed {seed} {tray_kind}: {report.verdict}: {report.reason}", file=sys.stderr
                )
            passed += report.verdict == "pass"
            lots += 1
            lot_verdict = report.verdict
            if report.verdict == "cannot_verify":  # the operator spreads the pieces; the station images again
                spread = corpus.realistic_lot(level, seed, tray=tray_kind, spread=True)
                again = judge_frames([report, analyse(spread.image, level, TraySetup(board_of(lot)))], level)
                if reasons:
                    print(f"  after one re-image: {again.verdict}: {again.reason}", file=sys.stderr)
                reimaged += 1
                lot_verdict = again.verdict
            passed_reimaged += lot_verdict == "pass"
            alone = [p for p in lot.pieces if p.group < 0]
            independent_errors += _errors(
                report, np.array([p.centre_mm for p in alone]), np.array([p.area_mm2 for p in alone])
            )
    figures["particle_size_err_p95_pct_independent"] = float(np.percentile(independent_errors, 95))
    figures["particle_compliant_pass_independent"] = passed / lots
    figures["particle_compliant_pass_reimage_independent"] = passed_reimaged / lots
    figures["particle_compliant_reimaged_independent"] = reimaged
    figures["particle_compliant_lots_independent"] = lots
    synthetic_errors: list[float] = []
    passed = lots = reimaged = passed_reimaged = 0
    for seed in range(2 if quick else 6):
        options = {
            "seed": 10 + seed,
            "size_px": (4000, 3000),
            "particle_mm": (1.5, 12.0),  # 18 mm², 1.5 mm: comfortably inside P-5 (30 mm², 2 mm)
            "count": 400,
            # Pieces touching as they fall: at an angle, the corner of one against the side of another.
            # (Not `touching_pairs`: parallel pieces meeting exactly corner to corner, which a real tray
            # seldom shows and which are measured as their union by design; see tests/vision/test_particles.py.)
            "t_pairs": 5 * (seed % 2),
            "perspective": 0.04 * (seed % 2),
            "blur_px": 0.8 + 0.2 * (seed % 3),
        }
        sample = synthetic.shred_tray(**options)  # type: ignore[arg-type]
        report = analyse(sample.image, "P-5", TraySetup(sample.board))
        if reasons:
            print(f"synthetic P-5 seed {10 + seed}: {report.verdict}: {report.reason}", file=sys.stderr)
        passed += report.verdict == "pass"
        lots += 1
        lot_verdict = report.verdict
        if report.verdict == "cannot_verify":
            spread = synthetic.shred_tray(**options, spread=True)  # type: ignore[arg-type]
            again = judge_frames([report, analyse(spread.image, "P-5", TraySetup(sample.board))], "P-5")
            if reasons:
                print(f"  after one re-image: {again.verdict}: {again.reason}", file=sys.stderr)
            reimaged += 1
            lot_verdict = again.verdict
        passed_reimaged += lot_verdict == "pass"
        synthetic_errors += _errors(
            report, np.array([p.centre_mm for p in sample.particles]), np.array([p.area_mm2 for p in sample.particles])
        )
    figures["particle_size_err_p95_pct_synthetic"] = float(np.percentile(synthetic_errors, 95))
    figures["particle_compliant_pass_synthetic"] = passed / lots
    figures["particle_compliant_pass_reimage_synthetic"] = passed_reimaged / lots
    figures["particle_compliant_reimaged_synthetic"] = reimaged
    figures["particle_compliant_lots_synthetic"] = lots
    return figures


def labels(quick: bool) -> dict[str, float]:
    label = cv2.imdecode(np.frombuffer(render_label(ITEM), np.uint8), cv2.IMREAD_GRAYSCALE)
    dm_only = label.copy()
    dm_only[:, :560] = 255
    neighbour = cv2.imdecode(np.frombuffer(render_label(NEIGHBOUR), np.uint8), cv2.IMREAD_GRAYSCALE)
    per = 5 if quick else 25
    photos: list[np.ndarray] = []
    for degradation in (*corpus.DEGRADATIONS, "datamatrix"):
        for seed in range(per):
            source = dm_only if degradation == "datamatrix" else label
            photos.append(
                corpus.label_shot(source, "clean" if degradation == "datamatrix" else degradation, seed).image
            )
    synthetic_photos = [
        synthetic.label_photo(
            ITEM,
            seed=s,
            perspective=0.04 + 0.02 * (s % 5),
            blur_px=0.6 + 0.2 * (s % 4),
            noise_sigma=3 + s % 4,
            occlusion=0.4 if s % 3 == 0 else 0.0,
            thumb=s % 5 == 2,
            glare=60.0 + 30 * (s % 4),
            symbology="datamatrix" if s % 4 == 1 else "qr",
        ).image
        for s in range(30 if quick else 120)
    ]
    figures: dict[str, float] = {}
    detector = cv2.QRCodeDetector()
    for name, images in (("independent", photos), ("synthetic", synthetic_photos)):
        agreed = wrong = 0
        ours_ms, theirs_ms, theirs = [], [], 0
        for image in images:
            start = time.perf_counter()
            read = read_label(image)
            ours_ms.append((time.perf_counter() - start) * 1000)
            outcome = compare(read, ITEM).outcome
            agreed += outcome == "agrees"
            wrong += outcome == "disagrees"
            grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            start = time.perf_counter()
            text, _, _ = detector.detectAndDecode(grey)
            theirs_ms.append((time.perf_counter() - start) * 1000)
            theirs += decode_payload(text) == ITEM
        figures[f"label_decode_rate_{name}"] = agreed / len(images)
        figures[f"label_wrong_decodes_{name}"] = wrong
        figures[f"label_ms_2mp_{name}"] = statistics.median(ours_ms)
        figures[f"opencv_label_decode_rate_{name}"] = theirs / len(images)
        figures[f"opencv_label_ms_2mp_{name}"] = statistics.median(theirs_ms)
    mistaken = 0
    for seed in range(per):
        shot = corpus.label_shot(label, "target_covered", seed, neighbour=neighbour)
        mistaken += compare(read_label(shot.image), ITEM).outcome in ("agrees", "disagrees")
    figures["label_neighbour_taken_for_target"] = mistaken
    return figures


def people(quick: bool) -> dict[str, float]:
    exact = frames = right = sequences = 0
    for name in corpus.PORTAL_SCENES:
        for seed in range(1 if quick else 4):
            seq = corpus.portal_sequence(name, seed)
            height, width = seq.frames[0][1].shape[:2]
            r = seq.person_radius_px
            zone = ((r, 0.0), (width - r, 0.0), (width - r, float(height)), (r, float(height)))
            config = PeopleConfig(
                PortalLine((seq.line_x, height), (seq.line_x, 0)), 2.4 * r * r, zone=zone, max_step_px=3 * r
            )
            counter = PeopleCounter(config)
            crossings = []
            for (time_us, frame), truth in zip(seq.frames, seq.people_per_frame, strict=True):
                result = counter.update(time_us, frame)
                if result.problem == "learning background":
                    continue
                frames += 1
                exact += result.people == truth
                crossings += result.crossings
            entered = sum(c.direction == "in" for c in crossings)
            right += (entered, len(crossings) - entered) == (seq.crossings_in, seq.crossings_out)
            sequences += 1
    figures = {"people_exact_independent": exact / frames, "people_crossings_independent": right / sequences}
    exact = frames = right = sequences = 0
    for seed in range(10 if quick else 40):
        scene = synthetic.portal_scene(seed=seed, people=seed % 5, formation=("lanes", "abreast", "tailgate")[seed % 3])
        height = scene.frames[0][1].shape[0]
        counter = PeopleCounter(
            PeopleConfig(PortalLine((scene.line_x, height), (scene.line_x, 0)), scene.person_area_px)
        )
        crossings = []
        for (time_us, frame), truth in zip(scene.frames, scene.people_per_frame, strict=True):
            result = counter.update(time_us, frame)
            if result.problem:
                continue
            frames += 1
            exact += result.people == truth
            crossings += result.crossings
        right += sorted(c.direction for c in crossings) == sorted(c.direction for c in scene.crossings)
        sequences += 1
    figures["people_exact_synthetic"] = exact / frames
    figures["people_crossings_synthetic"] = right / sequences
    return figures


TARGETS = {
    "particle_ms_12mp_independent": "<= 200",
    "particle_ms_12mp_synthetic": "<= 200",
    "particle_false_pass_independent": "= 0",
    "particle_false_pass_synthetic": "= 0",
    "particle_size_err_p95_pct_independent": "<= 5",
    "particle_size_err_p95_pct_synthetic": "<= 5",
    "particle_compliant_pass_independent": ">= 0.90",
    "particle_compliant_pass_synthetic": ">= 0.90",
    "particle_false_pass_reimage_independent": "= 0",
    "particle_false_pass_reimage_synthetic": "= 0",
    "label_decode_rate_independent": ">= 0.99",
    "label_decode_rate_synthetic": ">= 0.99",
    "label_wrong_decodes_independent": "= 0",
    "label_wrong_decodes_synthetic": "= 0",
    "label_neighbour_taken_for_target": "= 0",
    "label_ms_2mp_independent": "<= 30",
    "label_ms_2mp_synthetic": "<= 30",
    "people_exact_independent": ">= 0.95",
    "people_exact_synthetic": ">= 0.95",
    "people_crossings_independent": ">= 0.95",
    "people_crossings_synthetic": ">= 0.95",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=("particles", "labels", "people"), help="run one part")
    parser.add_argument("--reasons", action="store_true", help="print each compliant lot's verdict (stderr)")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # the target is one core
    parts = {"particles": particles, "labels": labels, "people": people}
    figures: dict[str, float] = {}
    for name, part in parts.items():
        if args.only in (None, name):
            figures.update(particles(args.quick, args.reasons) if part is particles else part(args.quick))
    print(f"{'figure':40} {'value':>10}  target")
    for name, value in figures.items():
        print(f"{name:40} {value:10.3f}  {TARGETS.get(name, '')}")
    if "particle_reference_ms" in figures:
        ratio = figures["particle_ms_12mp_independent"] / figures["particle_reference_ms"]
        print(f"{'particle 12 MP vs grey+Otsu':40} {ratio:9.1f}x")
    line = json.dumps({k: round(float(v), 4) for k, v in figures.items()})
    if args.json:
        args.json.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

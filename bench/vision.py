"""Vision benchmark: particle analysis, label reading, people counting on synthetic data with truth.

Prints a table, then one JSON line. Speed figures are medians; each comes with a reference measured in
the same run (a plain grey+Otsu pass over the same 12 MP frame; OpenCV's QRCodeDetector on the same
label photos). Usage: python bench/vision.py [--quick] [--json PATH]
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

from vision.labels import LabelData, decode_payload, read_label
from vision.particles import analyse
from vision.people import PeopleConfig, PeopleCounter, PortalLine
from vision.synthetic import label_photo, portal_scene, shred_tray


def _median_ms(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def particles(quick: bool) -> dict[str, float]:
    tray = shred_tray(seed=1, size_px=(4000, 3000), particle_mm=(2.0, 14.0), count=800, touching_pairs=10)
    runs = 3 if quick else 9
    ms = _median_ms(lambda: analyse(tray.image, "P-5"), runs)

    def reference() -> None:
        grey = cv2.cvtColor(tray.image, cv2.COLOR_BGR2GRAY)
        cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)

    ref_ms = _median_ms(reference, runs)
    errors = []
    for seed in range(2 if quick else 6):
        sample = shred_tray(
            seed=10 + seed,
            size_px=(4000, 3000),
            particle_mm=(2.0, 14.0),
            count=400,
            touching_pairs=5,
            perspective=0.04 * (seed % 2),
            blur_px=0.8 + 0.2 * (seed % 3),
        )
        report = analyse(sample.image, "P-5")
        truth = np.array([p.centre_mm for p in sample.particles])
        gaps = np.linalg.norm(truth[:, None, :] - report.centres_mm[None, :, :], axis=2)
        nearest = gaps.argmin(axis=1)
        true_area = np.array([p.area_mm2 for p in sample.particles])
        found = gaps[np.arange(len(truth)), nearest] < 1.5
        errors.extend(np.abs(report.areas_mm2[nearest[found]] - true_area[found]) / true_area[found] * 100)
        errors.extend([100.0] * int((~found).sum()))  # a missed particle counts as wholly wrong
    return {
        "particle_ms_12mp": ms,
        "particle_reference_ms": ref_ms,
        "particle_size_err_pct": float(np.mean(errors)),
    }


def labels(quick: bool) -> dict[str, float]:
    data = LabelData("ITEM-0042", "REG/2026/17", "secret", "10 years from 2026-01-01")
    count = 30 if quick else 200
    photos = [
        label_photo(
            data,
            seed=s,
            perspective=0.04 + 0.02 * (s % 5),
            blur_px=0.6 + 0.2 * (s % 4),
            noise_sigma=3 + s % 4,
            occlusion=0.4 if s % 3 == 0 else 0.0,
            thumb=s % 5 == 2,
            glare=60.0 + 30 * (s % 4),
        ).image
        for s in range(count)
    ]
    ours, theirs, ours_ms, theirs_ms = 0, 0, [], []
    detector = cv2.QRCodeDetector()
    for image in photos:
        start = time.perf_counter()
        read = read_label(image)
        ours_ms.append((time.perf_counter() - start) * 1000)
        ours += read.status == "decoded" and read.data == data
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        start = time.perf_counter()
        text, _, _ = detector.detectAndDecode(grey)
        theirs_ms.append((time.perf_counter() - start) * 1000)
        theirs += decode_payload(text) == data
    return {
        "label_decode_rate": ours / count,
        "label_ms_2mp": statistics.median(ours_ms),
        "opencv_label_decode_rate": theirs / count,
        "opencv_label_ms_2mp": statistics.median(theirs_ms),
    }


def people(quick: bool) -> dict[str, float]:
    exact = total = 0
    for seed in range(10 if quick else 40):
        scene = portal_scene(seed=seed, people=seed % 5, formation=("lanes", "abreast", "tailgate")[seed % 3])
        height = scene.frames[0][1].shape[0]
        line = PortalLine((scene.line_x, height), (scene.line_x, 0))
        counter = PeopleCounter(PeopleConfig(line, scene.person_area_px))
        for (time_us, frame), truth in zip(scene.frames, scene.people_per_frame, strict=True):
            result = counter.update(time_us, frame)
            if not result.problem:
                total += 1
                exact += result.people == truth
    return {"people_count_accuracy": exact / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # the target is one core
    figures = {**particles(args.quick), **labels(args.quick), **people(args.quick)}
    targets = {
        "particle_ms_12mp": "<= 200",
        "particle_size_err_pct": "<= 5",
        "label_decode_rate": ">= 0.99",
        "label_ms_2mp": "<= 30",
        "people_count_accuracy": ">= 0.95",
    }
    print(f"{'figure':28} {'value':>12}  target")
    for name, value in figures.items():
        print(f"{name:28} {value:12.3f}  {targets.get(name, '')}")
    ratio = figures["particle_ms_12mp"] / figures["particle_reference_ms"]
    print(f"{'particle vs grey+Otsu':28} {ratio:11.1f}x")
    line = json.dumps({k: round(v, 4) for k, v in figures.items()})
    if args.json:
        args.json.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

from dataclasses import replace

import numpy as np
import pytest

from vision.people import PeopleConfig, PeopleCounter, PortalLine, count_crossings
from vision.synthetic import PortalScene, portal_scene


def _config(scene: PortalScene) -> PeopleConfig:
    height = scene.frames[0][1].shape[0]
    # Drawn bottom to top, so its right-hand side is the right half of the image: 'in' is left to right.
    return PeopleConfig(PortalLine((scene.line_x, height), (scene.line_x, 0)), scene.person_area_px)


@pytest.mark.parametrize("people", range(5))
def test_crossings_per_direction_with_timestamps(people: int) -> None:
    scene = portal_scene(seed=100 + people, people=people)
    crossings = count_crossings(scene.frames, _config(scene))
    assert sorted(c.direction for c in crossings) == sorted(c.direction for c in scene.crossings)
    frame_us = scene.frames[1][0] - scene.frames[0][0]
    for truth in scene.crossings:
        nearest = min(abs(c.time_us - truth.time_us) for c in crossings if c.direction == truth.direction)
        assert nearest <= 2 * frame_us


def test_people_in_view_are_counted_on_nearly_every_frame() -> None:
    exact = total = 0
    for seed in range(10):
        scene = portal_scene(seed=seed, people=seed % 5)
        counter = PeopleCounter(_config(scene))
        for (time_us, frame), truth in zip(scene.frames, scene.people_per_frame, strict=True):
            result = counter.update(time_us, frame)
            if not result.problem:
                total += 1
                exact += result.people == truth
    assert total > 700
    assert exact / total >= 0.95


def test_unusable_frames_are_reported_not_raised() -> None:
    scene = portal_scene(seed=1, people=1)
    counter = PeopleCounter(_config(scene))
    assert counter.update(0, np.zeros((0, 0), np.uint8)).problem == "unusable frame"
    assert counter.update(1, np.zeros((10, 10), np.float32)).problem == "unusable frame"
    assert counter.update(2, scene.frames[0][1]).problem == "learning background"


@pytest.mark.parametrize("formation", ["abreast", "tailgate"])
def test_a_pair_walking_together_is_two_crossings(formation: str) -> None:
    exact = 0
    for seed in range(10):
        scene = portal_scene(seed=seed, people=2, formation=formation)
        crossings = count_crossings(scene.frames, _config(scene))
        exact += sorted(c.direction for c in crossings) == sorted(c.direction for c in scene.crossings)
        assert len(scene.crossings) == 2
    assert exact >= 9


def test_only_people_inside_the_zone_are_counted() -> None:
    scene = portal_scene(seed=3, people=3)
    width = scene.frames[0][1].shape[1]
    height = scene.frames[0][1].shape[0]
    left_half = ((0.0, 0.0), (width / 2, 0.0), (width / 2, height), (0.0, height))
    whole, left = PeopleCounter(_config(scene)), PeopleCounter(replace(_config(scene), zone=left_half))
    counts = [(whole.update(t, f).people, left.update(t, f).people) for t, f in scene.frames]
    assert all(part <= total for total, part in counts)
    assert any(0 < part < total for total, part in counts)


def test_a_lighting_change_is_reported_and_the_background_relearned() -> None:
    scene = portal_scene(seed=4, people=1, frame_count=60)
    counter = PeopleCounter(_config(scene))
    results = []
    for index, (time_us, frame) in enumerate(scene.frames):
        lit = frame if index < 20 else np.clip(frame.astype(np.int16) + 70, 0, 255).astype(np.uint8)
        results.append(counter.update(time_us, lit))
    assert "whole scene changed" in results[20].problem
    assert results[21].problem == "learning background"
    assert not results[-1].problem
    assert counter.update(0, np.zeros((60, 80, 3), np.uint8)).problem.startswith("frame size changed")
    assert counter.update(0, np.zeros((60, 80, 2), np.uint8)).problem == "unusable frame"

import threading
from pathlib import Path

import cv2
import numpy as np

from vision.camera import CameraSource, HealthEvent


def _write_clip(path: Path, frames: int = 8) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()


def _drain(source: CameraSource) -> list[HealthEvent]:
    events = []
    while not source.health.empty():
        events.append(source.health.get_nowait())
    return events


def test_file_frames_arrive_in_order_and_the_clip_reopens(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    _write_clip(clip)
    with CameraSource(clip, reconnect_delay_s=0.01) as source:
        first = source.wait_frame(0)
        assert first is not None and first.image.shape == (48, 64, 3)
        later = source.wait_frame(first.seq + 12)  # beyond one pass of the 8-frame clip
        assert later is not None and later.seq > first.seq + 12
        assert later.time_us >= first.time_us
    kinds = [e.kind for e in _drain(source)]
    assert kinds[0] == "connected"
    assert "lost" in kinds
    assert kinds[-1] == "stopped"
    assert not any(t.name.startswith("camera-") for t in threading.enumerate())


def test_missing_source_keeps_retrying_until_it_appears(tmp_path: Path) -> None:
    clip = tmp_path / "late.avi"
    with CameraSource(clip, reconnect_delay_s=0.01) as source:
        assert source.wait_frame(0, timeout_s=0.2) is None
        assert source.latest() is None
        _write_clip(clip)
        assert source.wait_frame(0, timeout_s=10) is not None
    kinds = [e.kind for e in _drain(source)]
    assert kinds[0] == "reconnecting"
    assert "connected" in kinds


def test_status_reports_frames_and_age(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    _write_clip(clip)
    source = CameraSource(clip, reconnect_delay_s=0.01)
    before = source.status()
    assert (before.connected, before.frames, before.last_frame_age_s) == (False, 0, None)
    with source:
        assert source.wait_frame(0) is not None
        status = source.status()
    assert status.frames >= 1
    assert status.last_frame_age_s is not None and status.last_frame_age_s >= 0

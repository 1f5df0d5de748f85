"""The register reaches the edge: a snapshot update arrives at a connected edge and is kept on disk; the edge
reports how old its snapshot is and how long it has been out of touch; bad snapshots are refused."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from multisite.register import (
    CentreRegister,
    EdgeRegister,
    RegisterChange,
    RegisterError,
    Snapshot,
    SnapshotCache,
    SnapshotHead,
    now_us,
)
from tests.multisite.conftest import wait_until


def test_snapshot_update_reaches_a_connected_edge_and_is_kept_on_disk(topology, tmp_path: Path) -> None:
    top = topology("site-a")
    arrived: list[tuple[float, int]] = []
    changed = threading.Event()
    with CentreRegister(top.hub.url, beat_s=0.2) as register:
        register.publish_snapshot("site-a", 1, now_us(), b"v1")
        with EdgeRegister(
            top.leaves["site-a"].url,
            "site-a",
            tmp_path / "cache",
            on_snapshot=lambda s: arrived.append((time.monotonic(), s.head.version)),
            on_change=lambda c: changed.set(),
        ) as edge:
            wait_until(lambda: arrived and arrived[-1][1] == 1, what="v1")
            sent = time.monotonic()
            register.put_change(RegisterChange("all", "badge_revoked", "B7", now_us()))
            register.publish_snapshot("site-a", 2, now_us(), b"v2" * 300_000)  # several Object Store chunks
            wait_until(lambda: arrived[-1][1] == 2, 10, "v2")
            assert changed.wait(5)
            print(f"snapshot v2 reached the edge {arrived[-1][0] - sent:.3f} s after it was sent")
            status = edge.status()
            assert status.version == status.newest_version == 2
            assert 0 <= status.age_s < 60 and status.unknown_for_s < 60
            register.publish_snapshot("site-a", 1, now_us(), b"older")  # a stale head does not roll back
            time.sleep(0.5)
            assert edge.snapshot is not None and edge.snapshot.head.version == 2
    cached = SnapshotCache(tmp_path / "cache").load()
    assert cached is not None and cached.head.version == 2 and cached.blob == b"v2" * 300_000


def test_edge_with_no_snapshot_reports_it_and_never_synced(topology, tmp_path: Path) -> None:
    top = topology("site-a")
    top.cut("site-a")
    with EdgeRegister(top.leaves["site-a"].url, "site-a", tmp_path / "cache") as edge:
        assert edge.wait_initial()
        status = edge.status()
        assert status.version == 0 and status.age_s == float("inf") and status.unknown_for_s == float("inf")


def test_snapshot_age_grows_while_cut_off(topology, tmp_path: Path) -> None:
    top = topology("site-a")
    with CentreRegister(top.hub.url, beat_s=0.1) as register:
        register.publish_snapshot("site-a", 1, now_us(), b"v1")
        with EdgeRegister(top.leaves["site-a"].url, "site-a", tmp_path / "cache") as edge:
            wait_until(lambda: edge.status().unknown_for_s < 0.5 and edge.snapshot is not None, what="in sync")
            top.cut("site-a")
            first = edge.status().unknown_for_s
            time.sleep(1.0)
            assert edge.status().unknown_for_s >= first + 0.9, "the window of unknown changes grows while cut"
            top.heal("site-a")
            wait_until(lambda: edge.status().unknown_for_s < 0.5, 15, "back in sync")


def test_cache_refuses_a_blob_that_does_not_match_its_head(tmp_path: Path) -> None:
    cache = SnapshotCache(tmp_path)
    head = SnapshotHead("site-a", 3, 0, 2, "0" * 64)
    cache.store(Snapshot(head, b"ab"))
    assert cache.load() is None
    assert list(tmp_path.glob("*.tmp")) == []


def test_change_names_are_checked() -> None:
    with pytest.raises(RegisterError, match="subject"):
        RegisterChange("all", "badge_revoked", "B 7", 0).check()
    with pytest.raises(RegisterError, match="kind"):
        RegisterChange("all", "badge.revoked", "B7", 0).check()


def test_edge_follows_again_after_its_leaf_server_was_killed(topology, tmp_path: Path) -> None:
    top = topology("site-a")
    leaf = top.leaves["site-a"]
    with CentreRegister(top.hub.url, beat_s=0.2) as register:
        register.publish_snapshot("site-a", 1, now_us(), b"v1")
        with EdgeRegister(leaf.url, "site-a", tmp_path / "cache") as edge:
            wait_until(lambda: edge.snapshot is not None, what="v1")
            leaf.kill()
            leaf.start()
            top.hub.wait_leaf_connections(1)
            register.publish_snapshot("site-a", 2, now_us(), b"v2")
            wait_until(lambda: edge.snapshot is not None and edge.snapshot.head.version == 2, 40, "v2 after restart")

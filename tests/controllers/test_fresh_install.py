"""The README's main command on a machine that never ran it: `custodian demo` with an empty Numba cache, so
every kernel is compiled during the run. Each scenario must come out as on a warm machine; a first run
once refused the approved carry-out (its decision waited for the compiler) and kept a door locked through
the fire release (a compile starved the panel lines)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OUTCOMES = [
    "archive door opened: True; main exit opened: True",  # approved carry-out
    "archive door opened: False",  # unapproved secret item
    "door opened: False",  # top secret, one badge
    "door opened: True",  # top secret, two badges
    "door opened: False",  # tailgating
    "S-2026-002/1: destroyed (verified destruction)",
    "all doors released during the alarm: True",
    "door opened while the reader was away: False",
]


@pytest.mark.slow
def test_the_demo_on_a_fresh_install_comes_out_as_on_a_warm_one(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    run = subprocess.run(
        [str(Path(sys.executable).parent / "custodian"), "demo", "--headless", "--duration", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    outcomes = [line.strip().removeprefix("-> ") for line in run.stdout.splitlines() if line.strip().startswith("->")]
    assert outcomes == OUTCOMES, run.stdout

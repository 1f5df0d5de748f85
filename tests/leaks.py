"""Leak guard for every test (autouse from tests/conftest.py): threads, asyncio tasks, open fds, listening ports."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator

import pytest

GRACE_S = 3.0  # threads and sockets being torn down get this long to finish before counting as leaked


def _fds() -> dict[int, str]:
    found: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the fd listdir itself used, already closed
    return found


def _listening_inodes() -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    cols = line.split()
                    if cols[3] == "0A":  # TCP_LISTEN
                        inodes.add(cols[9])
        except FileNotFoundError:
            continue
    return inodes


def _pending_tasks() -> list[asyncio.Task[object]]:
    # asyncio keeps a weak set of every task it created; pending ones outlive their test.
    registry = getattr(asyncio.tasks, "_all_tasks", None) or set()
    tasks: list[asyncio.Task[object]] = []
    for task in list(registry):
        if not task.done():
            try:
                running = not task.get_loop().is_closed()
            except RuntimeError:
                running = False
            if running:
                tasks.append(task)
    return tasks


def _leaks(threads_before: set[threading.Thread], fds_before: dict[int, str]) -> list[str]:
    problems: list[str] = []
    threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    problems += [f"thread left running: {t.name}" for t in threads]
    fds = {fd: target for fd, target in _fds().items() if fds_before.get(fd) != target}
    listening = _listening_inodes()
    for fd, target in sorted(fds.items()):
        inode = target.removeprefix("socket:[").removesuffix("]")
        kind = "listening port" if target.startswith("socket:") and inode in listening else "open fd"
        problems.append(f"{kind} left open: fd {fd} -> {target}")
    problems += [f"asyncio task left pending: {t!r}" for t in _pending_tasks()]
    return problems


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    yield
    deadline = time.monotonic() + GRACE_S
    problems = _leaks(threads_before, fds_before)
    while problems and time.monotonic() < deadline:
        time.sleep(0.05)
        problems = _leaks(threads_before, fds_before)
    if problems:
        pytest.fail("test leaked resources:\n  " + "\n  ".join(problems), pytrace=False)

"""Periodic journal anchors: the running site writes the journal's head to a folder outside the database
(`registry.anchors.write_anchor`), so a truncated or rewritten journal fails `custodian journal verify
--anchor FOLDER` and shows on the auditor's page.

A failure to write (folder unwritable, database away, a journal that no longer holds the last anchor) raises
an alarm on the live bus and in the log, and the site keeps running: anchoring is evidence, not a gate on
doors. The next interval tries again; a tampered journal keeps alarming at every interval.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from controllers.bus import LiveBus, LiveKind, Severity
from registry import anchors

log = logging.getLogger(__name__)
DEFAULT_INTERVAL_S = 300.0


@dataclass(frozen=True, slots=True)
class AnchorSettings:
    directory: Path
    interval_s: float = DEFAULT_INTERVAL_S

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise ValueError("the anchor interval must be a positive number of seconds")


class AnchorWriter:
    """A thread that anchors the journal every `interval_s`, and once more when stopped."""

    def __init__(self, factory: sessionmaker[Session], bus: LiveBus, settings: AnchorSettings) -> None:
        self.factory = factory
        self.bus = bus
        self.settings = settings
        self.written = 0  # anchors that moved the head forward or confirmed it
        self.failures = 0
        self.last: anchors.Anchor | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AnchorWriter:
        self._thread = threading.Thread(target=self._loop, name="journal-anchors", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """After the recorder delivered what it accepted: the final anchor covers the whole run."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.write_once()

    def write_once(self) -> anchors.Anchor | None:
        try:
            with self.factory() as session:
                anchor = anchors.write_anchor(session, self.settings.directory)
        except anchors.JournalTampered as exc:
            self._alarm("JOURNAL DOES NOT MATCH ITS ANCHORS", exc.problem)
        except Exception as exc:  # unwritable folder, database away: alarm, retry at the next interval
            self._alarm("journal anchor not written", f"{type(exc).__name__}: {exc}")
        else:
            self.written += 1
            self.last = anchor
            return anchor
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.write_once()
            self._stop.wait(self.settings.interval_s)

    def _alarm(self, title: str, detail: str) -> None:
        self.failures += 1
        log.error("%s (%s): %s", title, self.settings.directory, detail)
        self.bus.publish(
            LiveKind.ALARM,
            Severity.CRITICAL,
            time.time_ns() // 1000,
            "journal",
            title,
            (("folder", str(self.settings.directory)), ("detail", detail)),
        )

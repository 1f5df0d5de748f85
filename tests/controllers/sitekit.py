"""A small site whose hardware lives in the test process, for tests that run `custodian run` as a subprocess
and kill it: the door panels (OSDP on ptys, Secure Channel) and portal readers (LLRP on loopback) outlive
the site process, as real hardware does, so what a door was told to do is seen from outside.

Also here: traffic through those simulators (people badging with items, strangers' tags), an independent
reader of the local log written from its documented format (`controllers/outbox.py`), and the facts the
tests check in the register.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from firmware_bridge.osdp.driver import DEFAULT_STALE_WINDOW_S
from firmware_bridge.osdp.simulator import PanelBus, PanelSimulator
from firmware_bridge.osdp.vocabulary import OutputCode
from firmware_bridge.rfid.llrp_simulator import LlrpSimulator, WalkStep
from registry import journal
from registry.models import AcceptedRecord, Approval, DeadLetter, Item, JournalEntry

CUSTODIAN = Path(sys.executable).with_name("custodian")
PORTALS = {"lab-door": 1, "main-exit": 2}  # portal -> panel address
ANN, BEN = "30001", "30002"  # ann may carry the K items out (approval A-ANN); ben is not cleared for them
ITEMS = {f"K-{n}": f"E2801170000002000000{n:04X}" for n in range(1, 5)}

SITE = """
[site]
name = "Kill Test"

[[venues]]
code = "lab"
name = "Lab"
ceiling = "secret"
storage = true

[[venues]]
code = "corridor"
name = "Corridor"
ceiling = "secret"

[[portals]]
code = "lab-door"
name = "Lab door"
inside = "lab"
outside = "corridor"

[[portals]]
code = "main-exit"
name = "Main exit"
inside = "corridor"
outside = "outside"
x_m = 20.0
{devices}
[[people]]
username = "ann"
clearance = "secret"
roles = ["custodian"]
badges = ["{ann}"]

[[people]]
username = "ben"
clearance = "confidential"
roles = ["custodian"]
badges = ["{ben}"]

[[people]]
username = "paul"
clearance = "secret"
roles = ["approver"]
badges = ["30003"]
{items}
[[approvals]]
ref = "A-ANN"
kind = "carry_out"
requester = "ann"
approvers = ["paul"]
items = [{item_refs}]
people = ["ann"]
valid_from = 2020-01-01T00:00:00Z
valid_until = 2099-01-01T00:00:00Z
uses = 1000000
"""
DEVICE = """
[[devices]]
name = "{portal}-panel"
kind = "osdp_panel"
portal = "{portal}"
transport = "{tty}"
address = {address}
scbk_env = "CUSTODIAN_SCBK_{env}"
strike_ms = 400

[[devices]]
name = "{portal}-reader"
kind = "llrp_reader"
portal = "{portal}"
host = "127.0.0.1"
port = {port}
antennas = [{{ number = 1, side = "inside" }}, {{ number = 2, side = "outside" }}]
"""
ITEM = """
[[items]]
register_number = "{ref}"
title = "Kill test item {ref}"
kind = "paper"
level = "secret"
period_start = 2026-01-01
period_months = 120
originating_unit = "Test unit"
epc = "{epc}"
venue = "{venue}"
scope_people = ["ann"]
"""


@dataclass
class Hardware:
    """The panels and readers of the kill-test site, started in this process."""

    keys: dict[str, bytes] = field(default_factory=dict)
    buses: dict[str, PanelBus] = field(default_factory=dict)
    panels: dict[str, PanelSimulator] = field(default_factory=dict)
    readers: dict[str, LlrpSimulator] = field(default_factory=dict)

    @classmethod
    def start(cls) -> Hardware:
        hw = cls()
        try:
            for portal, address in PORTALS.items():
                key = secrets.token_bytes(16)
                panel = PanelSimulator(address, key)
                hw.keys[portal], hw.panels[portal] = key, panel
                hw.buses[portal] = PanelBus([panel]).start()
                hw.readers[portal] = LlrpSimulator(antennas=2).start()
        except BaseException:
            hw.stop()
            raise
        return hw

    def stop(self) -> None:
        for bus in self.buses.values():
            bus.close()
        for reader in self.readers.values():
            reader.stop()

    def site_file(self, path: Path) -> Path:
        devices = "".join(
            DEVICE.format(
                portal=portal, tty=self.buses[portal].path, address=address, env=_env(portal),
                port=self.readers[portal].port,
            )
            for portal, address in PORTALS.items()
        )
        items = "".join(ITEM.format(ref=ref, epc=epc, venue="corridor") for ref, epc in ITEMS.items())
        refs = ", ".join(f'"{ref}"' for ref in ITEMS)
        path.write_text(SITE.format(devices=devices, items=items, item_refs=refs, ann=ANN, ben=BEN))
        return path

    def environment(self) -> dict[str, str]:
        return {**os.environ, **{f"CUSTODIAN_SCBK_{_env(p)}": key.hex() for p, key in self.keys.items()}}

    def ready(self, since: dict[str, int], timeout_s: float = 20.0) -> bool:
        """Every panel in Secure Channel and every reader connected again since `since` (connection counts)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(p.secure for p in self.panels.values()) and all(
                r.connections > since.get(n, 0) for n, r in self.readers.items()
            ):
                time.sleep(DEFAULT_STALE_WINDOW_S)  # a card within this window of coming online counts as late
                return True
            time.sleep(0.05)
        return False

    def connections(self) -> dict[str, int]:
        return {name: reader.connections for name, reader in self.readers.items()}

    def strikes(self) -> dict[str, int]:
        """Door releases each panel was commanded (timed strike pulses seen on the wire)."""
        return {
            portal: sum(
                1 for c in panel.commands if c.kind == "output" and c.field("control_code") == OutputCode.TEMPORARY_ON
            )
            for portal, panel in self.panels.items()
        }


def _env(portal: str) -> str:
    return portal.upper().replace("-", "_")


class Traffic:
    """People at both doors, all the time, whether or not the site is up (panels and readers buffer)."""

    def __init__(self, hw: Hardware, seed: int) -> None:
        self.hw = hw
        self.random = random.Random(seed)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(portal, seed + n), name=f"traffic-{portal}", daemon=True)
            for n, portal in enumerate(PORTALS)
        ]
        self.attempts = 0

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(10)

    def walk(self, portal: str, epcs: list[str], antenna: int, reads: int, period_s: float = 0.05) -> None:
        steps = [WalkStep(period_s * k, epc, antenna, -50) for epc in epcs for k in range(reads)]
        self.hw.readers[portal].walk_from_now(steps)

    def _run(self, portal: str, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            epcs = rng.sample(list(ITEMS.values()), rng.randint(0, 2))
            badge = ANN if rng.random() < 0.75 else BEN
            self.walk(portal, epcs, antenna=1, reads=8)  # walk up to the door: inside antenna
            if rng.random() < 0.3:  # a stranger's tag: an "unregistered tag" alarm record
                self.walk(portal, [f"E28011700000FFFF{rng.getrandbits(32):08X}"], antenna=1, reads=3)
            time.sleep(0.2)
            self.hw.panels[portal].present_card(f"{int(badge):08x}", 32)
            self.attempts += 1
            if self._stop.wait(0.5):
                return
            self.walk(portal, epcs, antenna=2, reads=4)  # through the door (if it opened): outside antenna
            if self._stop.wait(0.3) or not epcs:
                continue
            self.walk(portal, epcs, antenna=2, reads=4)  # and back in
            self._stop.wait(0.25)
            self.walk(portal, epcs, antenna=1, reads=4)
            self._stop.wait(0.3)


# ---- the site process ----
@dataclass
class SiteProcess:
    proc: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def start(cls, hw: Hardware, site_file: Path, url: str, state: Path, n: int) -> SiteProcess:
        command = ["run", str(site_file), "--db", url, "--state", str(state), "--port", "0"]
        return cls.command(command, state.parent / f"run-{n}.out", hw.environment())

    @classmethod
    def command(cls, arguments: list[str], out: Path, env: dict[str, str] | None = None) -> SiteProcess:
        """`custodian <arguments>`, its output (stdout and stderr) written to `out`."""
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                [str(CUSTODIAN), *arguments], stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return cls(proc, out)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, needle: str, idle_s: float = 30.0) -> bool:
        """Whether the process printed `needle` (see `wait_until`)."""
        return self.wait_until(lambda: needle in self.text(), idle_s)

    def wait_until(
        self, condition: Callable[[], bool], idle_s: float = 30.0, limit_s: float = 240.0, poll_s: float = 0.02
    ) -> bool:
        """Poll `condition` until it holds or the process ends. Gives up only when the process made no
        progress (no CPU time used, no output) for `idle_s`, or after `limit_s` in all: a loaded machine
        slows a start-up down, it does not stall it."""
        started = last_progress = time.monotonic()
        progress = self._progress()
        while True:
            if condition():
                return True
            if self.proc.poll() is not None:
                return condition()
            now = time.monotonic()
            if (seen := self._progress()) != progress:
                progress, last_progress = seen, now
            if now - last_progress > idle_s or now - started > limit_s:
                return False
            time.sleep(poll_s)

    def _progress(self) -> tuple[int, int]:
        """(CPU clock ticks of the process, all threads; bytes it printed)."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = int(stat[11]) + int(stat[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            ticks = -1
        try:
            size = self.out.stat().st_size
        except OSError:
            size = -1
        return ticks, size

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM; the exit code. A process still stopping after `timeout_s` is killed and the test fails with
        what it printed (a stop that takes long prints every thread's stack, `custodian.run.SLOW_STOP_S`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"not stopped {timeout_s:g} s after SIGTERM; it printed:\n{self.text()}") from None


# ---- the local log, read from its documented format (independently of controllers.outbox) ----
@dataclass(frozen=True, slots=True)
class LoggedRecord:
    record_id: str
    kind: str
    action: str
    payload: dict[str, object]


def read_local_log(directory: Path) -> dict[str, LoggedRecord]:
    """Every intact frame in the segments of `directory`, by record id. Damaged bytes are skipped."""
    found: dict[str, LoggedRecord] = {}
    for path in sorted(directory.glob("seg-*.log")):
        data = path.read_bytes()
        pos = 0
        if data[:4] == b"\xc5~L1" and len(data) >= 12:
            pos = 12 + struct.unpack_from("<I", data, 4)[0]
        while pos + 12 <= len(data):
            magic, length, crc = struct.unpack_from("<4sII", data, pos)
            body = data[pos + 12 : pos + 12 + length]
            if magic != b"\xc5~R1" or len(body) != length or zlib.crc32(data[pos + 4 : pos + 8] + body) != crc:
                pos = data.find(b"\xc5~R1", pos + 1)
                if pos == -1:
                    break
                continue
            lengths = struct.unpack_from("<4H", body, 9)  # after u64 seq and u8 flags
            strings, at = [], 17
            for n in lengths:
                strings.append(body[at : at + n].decode())
                at += n
            payload = json.loads(body[at:])
            found[payload["record"]] = LoggedRecord(payload["record"], strings[0], strings[2], payload)
            pos += 12 + length
    return found


# ---- what the register says ----
@dataclass
class RegisterFacts:
    ledger: set[str]
    dead_letters: int
    journal_records: Counter[str]  # record id -> journal entries carrying it
    allowed: Counter[str]  # portal -> allowed exit decisions
    uses: dict[int, tuple[int, int]]  # approval id -> (uses spent, its approval.used entries)
    approvals_in_decisions: Counter[int]  # approval id -> allowed decisions that relied on it (not refused)
    item_venues: dict[int, int | None]
    last_moves: dict[int, int | None]  # item id -> venue of its last journaled crossing (not refused)
    chain_ok: bool

    @classmethod
    def read(cls, session: Session) -> RegisterFacts:
        ledger = {f"{r.site}/{r.node}/{r.seq}" for r in session.execute(select(AcceptedRecord)).scalars()}
        dead = len(session.execute(select(DeadLetter.id)).all())
        journal_records: Counter[str] = Counter()
        allowed: Counter[str] = Counter()
        used_entries: Counter[str] = Counter()
        relied: Counter[int] = Counter()
        moves: dict[int, int | None] = {}
        for entry in session.execute(select(JournalEntry).order_by(JournalEntry.seq)).scalars():
            payload = json.loads(entry.payload)
            if "record" in payload and entry.action != "record.dead_letter":
                journal_records[payload["record"]] += 1
            if entry.action == "exit.decision" and payload["allow"]:
                allowed[payload["portal"]] += 1
                if "effect_refused" not in payload:
                    relied.update(payload["approvals"])
            elif entry.action == "approval.used":
                used_entries[entry.subject.removeprefix("approval:")] += 1
            elif entry.action == "movement.crossed" and "refused" not in payload:
                moves[payload["item_id"]] = payload["to_venue_id"]
        uses = {
            a.id: (a.uses_total - a.uses_left, used_entries[a.ref]) for a in session.execute(select(Approval)).scalars()
        }
        venues = {i.id: i.venue_id for i in session.execute(select(Item)).scalars()}
        return cls(
            ledger, dead, journal_records, allowed, uses, relied, venues, moves, journal.verify(session).ok
        )
